"""TextWorld end to end on its real engine: generate three games offline, collect the expert through the CLI,
replay it through the agent loop, evaluate a tiny random model. Needs ``agentdistill[textworld]``."""

import json

import pytest

pytest.importorskip("textworld")

from agentdistill.agent import run_episodes  # noqa: E402
from agentdistill.cli import main  # noqa: E402
from agentdistill.envs import make_env  # noqa: E402
from agentdistill.formats import get_format  # noqa: E402
from agentdistill.testing import ScriptedPolicy  # noqa: E402
from agentdistill.trajectory import read_trajectories  # noqa: E402

pytestmark = pytest.mark.real_env
MAKE = ["make-games", "--env", "textworld", "--count", "3", "--seed", "0", "--world_size", "3", "--quest_length", "3"]


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    out = tmp_path_factory.mktemp("tw") / "games"
    assert main([*MAKE, "--out", str(out)]) == 0
    return out


def test_make_games_is_seeded_and_resumable(games, capsys):
    assert sorted(p.name for p in games.glob("*.z8")) == ["game-0000.z8", "game-0001.z8", "game-0002.z8"]
    walks = [
        json.loads(p.with_suffix(".json").read_text())["metadata"]["walkthrough"] for p in sorted(games.glob("*.z8"))
    ]
    assert all(1 <= len(w) <= 3 for w in walks)
    before = {p.name: p.stat().st_mtime for p in games.glob("game-*")}
    assert main([*MAKE, "--out", str(games)]) == 0  # complete: nothing is remade
    assert {p.name: p.stat().st_mtime for p in games.glob("game-*")} == before
    assert main([*MAKE[:-1], "4", "--out", str(games)]) == 2
    assert "holds games made with other options" in capsys.readouterr().err


def test_expert_wins_every_game_through_collect(games, tmp_path):
    out = tmp_path / "tw.jsonl"
    assert main(["collect", "--env", "textworld", "--games", str(games), "--split", "all", "--out", str(out)]) == 0
    trajs = read_trajectories(out)
    assert [t.id for t in trajs] == ["game-0000", "game-0001", "game-0002"]
    assert all(t.success and t.reward == 1.0 and t.task_type == "custom" for t in trajs)
    assert all(t.steps[0].thought.startswith("To solve the task, I need to ") for t in trajs)
    assert all(s.thought is None for t in trajs for s in t.steps[1:])  # the plan holds: one thought
    assert all("Your task is to: " in t.prompt and t.task in t.prompt for t in trajs)
    # the agent loop replaying the expert's transcripts reproduces them on the engine
    fmt = get_format("alfworld")
    texts = [fmt.render(t.prompt, t.steps)[0] for t in trajs]
    records = run_episodes("textworld", [t.id for t in trajs], ScriptedPolicy(texts), {"games": str(games)})
    assert [r.trajectory.steps for r in records] == [t.steps for t in trajs]
    assert all(r.success and r.invalid == 0 for r in records)


def test_splits_and_invalid_commands(games):
    env = make_env("textworld", games=str(games))
    assert env.splits() == {"train": 1, "dev": 1, "test": 1, "all": 3}
    env.reset(env.task_ids("test")[0])
    res = env.step("dance with the walls")
    assert res.info["invalid"] and not res.done and res.observation
    assert env.result() == {"success": False, "reward": 0.0, "steps": 1}


def test_evaluate_tiny_random_model(games, tiny_pair, tmp_path):
    teacher_dir, _ = tiny_pair
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--model", str(teacher_dir), "--env", "textworld", "--games", str(games), "--split", "test"]
    assert main([*argv, "--max_steps", "3", "--max_new_tokens", "8", "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads(out.read_text())["overall"]
    assert m["episodes"] == 1 and m["success_rate"] == 0.0 and m["steps"] == 3.0


def test_run_the_whole_pipeline_on_games(games, tmp_path):
    """``agentdistill run --envs textworld --games DIR``: the embedded teacher learns from the engine's expert,
    collects, the students distil, everyone is evaluated on the test game, and the report has its rows."""
    run = tmp_path / "run"
    assert main(["run", "--preset", "smoke", "--envs", "textworld", "--games", str(games), "--out", str(run)]) == 0
    expert = list(read_trajectories(run / "teacher" / "expert" / "textworld.jsonl"))
    assert len(expert) == 1 and expert[0].success  # the one train game, won by the planner
    result = json.loads((run / "results.json").read_text())
    assert result["envs"] == ["textworld"]
    rows = {r["label"]: r for r in result["tables"]["textworld"]}
    assert set(rows) == {"teacher", "sft", "token-kd", "sad"}
    assert all(r["success_ci"]["episodes"] == 1 for r in rows.values())  # the one test game
    assert f"games: {games}" in (run / "run.yaml").read_text()
