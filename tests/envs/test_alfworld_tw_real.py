"""ALFWorld on its own engine: generate one game of each of the six task types offline from the installed
package, win them with the planner expert (through ``collect``) and with a scripted policy in both
grammars, and find a game laid out as ALFWorld's data under ``$ALFWORLD_DATA``. Needs ``agentdistill[alfworld]``."""

import json
import shutil

import pytest

pytest.importorskip("alfworld")
pytest.importorskip("fast_downward")

from agentdistill.agent import run_episodes  # noqa: E402
from agentdistill.cli import main  # noqa: E402
from agentdistill.envs import make_env  # noqa: E402
from agentdistill.envs.alfworld.tasks import TASK_TYPES  # noqa: E402
from agentdistill.formats import get_format  # noqa: E402
from agentdistill.metrics import summarize_by_type  # noqa: E402
from agentdistill.testing import ScriptedPolicy  # noqa: E402
from agentdistill.trajectory import read_trajectories  # noqa: E402

pytestmark = pytest.mark.real_env


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    out = tmp_path_factory.mktemp("alf") / "games"
    assert main(["make-games", "--env", "alfworld-tw", "--out", str(out), "--count", "6", "--seed", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def expert(games, tmp_path_factory):
    out = tmp_path_factory.mktemp("alf") / "expert.jsonl"
    argv = ["collect", "--env", "alfworld-tw", "--games", str(games), "--split", "all", "--out", str(out)]
    assert main(argv) == 0
    return read_trajectories(out)


def test_generated_games_cover_the_six_types_and_the_planner_wins_them(games, expert):
    assert [t.id for t in expert] == [f"game-{i:04d}" for i in range(6)]
    assert [t.task_type for t in expert] == list(TASK_TYPES)  # drawn in turn
    assert all(t.success and t.reward == 1.0 for t in expert)
    for t in expert:
        game = json.loads((games / t.id / "game.tw-pddl").read_text())
        assert game["solvable"] and len(t.steps) == len(game["walkthrough"])  # the plan from the start holds
        assert (games / t.id / "traj_data.json").is_file()
        assert t.prompt.rstrip().endswith(f"Your task is to: {t.task}")
        assert t.steps[0].thought.startswith("To solve the task, I need to go to ")
    actions = [s.action for t in expert for s in t.steps]
    assert any(a.startswith("put ") and " in/on " in a for a in actions)  # ReAct's grammar, not the engine's
    assert not any(a.startswith("move ") for a in actions)


def test_scripted_policy_wins_per_type_through_the_agent_loop(games, expert):
    fmt = get_format("alfworld")
    texts = [fmt.render(t.prompt, t.steps)[0] for t in expert]
    records = run_episodes("alfworld-tw", [t.id for t in expert], ScriptedPolicy(texts), {"games": str(games)})
    assert [r.trajectory.steps for r in records] == [t.steps for t in expert]
    m = summarize_by_type(records, 50)
    assert m["overall"]["success_rate"] == 100.0 and m["overall"]["invalid_rate"] == 0.0
    assert sorted(m["by_type"]) == sorted(TASK_TYPES)
    assert all(v["success_rate"] == 100.0 and v["episodes"] == 1 for v in m["by_type"].values())


def test_both_grammars_play_the_same_game(games, expert):
    traj = expert[0]  # pick_and_place: ends with a put
    env = make_env("alfworld-tw", games=str(games))
    env_move = type(env)(games=str(games), grammar="move")
    assert "move O to R" in env_move.instruction() and "put O in/on R" in env.instruction()
    env_move.reset(traj.id)
    for step in traj.steps:
        res = env_move.step(step.action.replace(" in/on ", " to ").replace("put ", "move ", 1))
    assert res.done and res.info["won"] and res.observation.startswith("You move the ")
    env.reset(traj.id)
    assert env.step("dance").observation == "Nothing happens."
    assert env.step("dance").info["invalid"]
    assert env.result() == {"success": False, "reward": 0.0, "steps": 2}


def test_alfworld_data_layout_under_the_env_variable(games, expert, tmp_path, monkeypatch):
    trial = tmp_path / "json_2.1.1" / "valid_unseen" / "pick_and_place_simple-CD-None-Dresser-318" / "trial_T1"
    shutil.copytree(games / "game-0000", trial)
    skipped = tmp_path / "json_2.1.1" / "valid_unseen" / "pick_and_place_with_movable_recep-CD-Bowl-Dresser-318" / "t"
    shutil.copytree(games / "game-0000", skipped)  # ALFWorld leaves movable receptacles out
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    env = make_env("alfworld-tw")
    (tid,) = env.task_ids("test")
    assert tid == "json_2.1.1/valid_unseen/pick_and_place_simple-CD-None-Dresser-318/trial_T1"
    assert env.splits() == {"train": 0, "dev": 0, "test": 1, "all": 1}
    assert (env.task_type(tid), env.task_text(tid)) == ("pick_and_place", expert[0].task)
    out = tmp_path / "t.jsonl"
    assert main(["collect", "--env", "alfworld-tw", "--split", "test", "--out", str(out)]) == 0
    (traj,) = read_trajectories(out)
    assert traj.success and [s.action for s in traj.steps] == [s.action for s in expert[0].steps]
