"""The real-engine envs' own logic, without the engines: game discovery and splits, feedback cleaning, the
episode and expert over a fake game, the two ALFWorld grammars, and the one-line errors (missing games,
missing package). The engines themselves: test_textworld_real.py, test_alfworld_tw_real.py."""

import json
import re
import sys

import pytest

from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.envs.alfworld_tw.engine import to_engine, to_speech
from agentdistill.envs.alfworld_tw.env import alfworld_games, to_speech_plan
from agentdistill.envs.textworld.engine import GameEpisode, clean_feedback, safe_command
from agentdistill.envs.textworld.env import textworld_games
from agentdistill.envs.textworld.games import find_games
from agentdistill.errors import ConfigError, MissingExtraError


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")


def test_hash_split_is_deterministic_disjoint_and_sized(tmp_path):
    _touch(tmp_path, *(f"g{i:02d}.z8" for i in range(25)))
    games = find_games(str(tmp_path), ("*.z8",), 0, "textworld")
    sizes = {s: len(ids) for s, ids in games.split_ids.items()}
    assert sizes == {"train": 19, "dev": 3, "test": 3, "all": 25}
    parts = [set(games.split_ids[s]) for s in ("train", "dev", "test")]
    assert set().union(*parts) == set(games.split_ids["all"]) and sum(map(len, parts)) == 25
    assert games.split_ids == find_games(str(tmp_path / "*.z8"), ("*.z8",), 0, "textworld").split_ids
    assert games.split_ids["test"] != find_games(str(tmp_path), ("*.z8",), 1, "textworld").split_ids["test"]
    assert games.path("g07", "textworld") == (tmp_path / "g07.z8").resolve()


@pytest.mark.parametrize(("n", "test"), [(1, 1), (2, 2), (3, 1)])
def test_a_set_of_one_or_two_games_is_all_test(tmp_path, n, test):
    _touch(tmp_path, *(f"g{i}.z8" for i in range(n)))
    games = find_games(str(tmp_path), ("*.z8",), 0, "textworld")
    assert len(games.split_ids["test"]) == test
    assert len(games.split_ids["all"]) == n


def test_split_folders_win_and_alfworld_ids_drop_the_game_file(tmp_path):
    _touch(
        tmp_path / "json_2.1.1",
        "train/pick_and_place_simple-Mug-None-Desk-308/trial_1/game.tw-pddl",
        "valid_seen/look_at_obj_in_light-CD-None-DeskLamp-301/trial_2/game.tw-pddl",
        "valid_unseen/pick_two_obj_and_place-Book-None-Bed-324/trial_3/game.tw-pddl",
        "elsewhere/x/game.tw-pddl",
    )
    games = find_games(str(tmp_path), ("*.tw-pddl",), 0, "alfworld-tw", fixed_name="game.tw-pddl")
    assert games.split_ids["train"] == ("json_2.1.1/train/pick_and_place_simple-Mug-None-Desk-308/trial_1",)
    assert games.split_ids["dev"] == ("json_2.1.1/valid_seen/look_at_obj_in_light-CD-None-DeskLamp-301/trial_2",)
    assert games.split_ids["test"] == ("json_2.1.1/valid_unseen/pick_two_obj_and_place-Book-None-Bed-324/trial_3",)
    assert "json_2.1.1/elsewhere/x" in games.split_ids["all"] and len(games.split_ids["all"]) == 4
    # the folder --games names counts: the valid_unseen folder alone is all test
    only = find_games(str(tmp_path / "json_2.1.1" / "valid_unseen"), ("*.tw-pddl",), 0, "x", "game.tw-pddl")
    assert only.split_ids["test"] == ("pick_two_obj_and_place-Book-None-Bed-324/trial_3",)


def test_alfworld_games_keeps_what_alfred_tw_env_keeps_and_reads_task_types(tmp_path):
    game = {"grammar": '{"task": [{"rhs": "Your task is to: put a cd in dresser."}]}', "solvable": True}
    base = tmp_path / "json_2.1.1" / "valid_unseen"
    for name, data in [
        ("pick_and_place_simple-CD-None-Dresser-318/trial_1", game),
        ("pick_and_place_simple-CD-None-Dresser-318/trial_2", {**game, "solvable": False}),
        ("pick_and_place_with_movable_recep-CD-Bowl-Dresser-318/trial_3", game),
        ("pick_heat_then_place_in_recep-AppleSliced-None-Fridge-1/trial_4", game),
    ]:
        (base / name).mkdir(parents=True)
        (base / name / "game.tw-pddl").write_text(json.dumps(data))
    games = alfworld_games(str(tmp_path))
    assert games.split_ids["test"] == ("json_2.1.1/valid_unseen/pick_and_place_simple-CD-None-Dresser-318/trial_1",)
    from agentdistill.envs.alfworld_tw.env import _meta

    meta = _meta(games.path(games.split_ids["test"][0], "alfworld-tw"))
    assert (meta["task"], meta["task_type"]) == ("put a cd in dresser.", "pick_and_place")


def test_missing_games_and_bad_paths_are_one_line_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="textworld needs games: pass --games"):
        make_env("textworld")
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"set \$ALFWORLD_DATA.*alfworld-download"):
        make_env("alfworld-tw")
    with pytest.raises(ConfigError, match="does not exist"):
        textworld_games(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"no game \(\*\.z8, \*\.z5, \*\.ulx\) found.*make-games"):
        textworld_games(str(tmp_path))
    _touch(tmp_path, "g.z8")
    with pytest.raises(ConfigError, match="have no .json beside them"):
        textworld_games(str(tmp_path))


def test_missing_package_names_the_extra(tmp_path, monkeypatch, capsys):
    _touch(tmp_path, "g.z8", "g.json")
    monkeypatch.setitem(sys.modules, "textworld", None)  # as if not installed
    with pytest.raises(
        MissingExtraError, match=r"--env textworld needs `textworld`.*pip install 'agentdistill\[textworld\]'"
    ):
        make_env("textworld", games=str(tmp_path))
    assert main(["make-games", "--out", str(tmp_path / "new"), "--count", "2"]) == 2
    assert not (tmp_path / "new").exists()  # nothing made before the check
    for name in ("alfworld", "alfworld.gen.constants", "alfworld.agents.environment.alfred_tw_env"):
        monkeypatch.setitem(sys.modules, name, None)  # even where another test imported them
    with pytest.raises(MissingExtraError, match=r"pip install 'agentdistill\[alfworld\]'"):
        make_env("alfworld-tw", games=str(tmp_path))
    assert main(["make-games", "--env", "alfworld-tw", "--out", str(tmp_path / "new"), "--count", "2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: make-games --env textworld needs `textworld`; install it with `pip install 'agentdistill[textworld]'`",
        "error: make-games --env alfworld-tw needs `alfworld`; install it with `pip install 'agentdistill[alfworld]'`",
    ]


def test_cli_games_flag_only_for_game_envs(tmp_path, capsys):
    assert main(["collect", "--env", "hotpotqa", "--games", "x", "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "--games is only for --env textworld or alfworld-tw; got --env hotpotqa" in capsys.readouterr().err
    assert main(["collect", "--env", "textworld", "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "textworld needs games" in capsys.readouterr().err
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "hotpotqa" in out and "textworld    not ready: textworld needs games" in out


JERICHO_FEEDBACK = (
    "\n\n-= Spare Room =-\nYou are in a spare room.\n\n\n\nThere is an exit to the east.\n\n\n\n"
    ">                                                       -= Spare Room =-0/3"
)
JERICHO_END = (
    "\nYou close the coffer.\n\n\nYour score has just gone up by one point.\n\n\n"
    "                          *** The End ***\n\nYou scored 1 out of a possible 1, in 6 turns.\n\n\n"
    "Would you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command?\n>          -= Studio =-0/5"
)


def test_safe_command_keeps_what_the_interpreter_can_take():
    assert safe_command(" take\x00 key\\help\n") == "take keyhelp"
    assert safe_command("é😀" + "x" * 300) == "x" * 200


def test_clean_feedback_drops_prompt_status_and_blank_lines():
    assert (
        clean_feedback(JERICHO_FEEDBACK) == "-= Spare Room =-\nYou are in a spare room.\nThere is an exit to the east."
    )
    assert clean_feedback(JERICHO_END) == (
        "You close the coffer.\nYour score has just gone up by one point.\n*** The End ***\n"
        "You scored 1 out of a possible 1, in 6 turns."
    )


class FakeGame:
    """Two rooms, west (the start) and east; ``take key`` in the east wins. ``policy_commands`` is the shortest plan."""

    def __init__(self, with_policy=True):
        self.with_policy, self.room, self.won, self.closed, self.moves = with_policy, "west", False, False, 0

    def state(self):
        plan = [] if self.won else ["take key"] if self.room == "east" else ["go east", "take key"]
        s = {"admissible_commands": ["go east", "go west", "take key", "look"], "won": self.won, "lost": False}
        s |= {"score": int(self.won), "max_score": 1}
        if self.with_policy:
            s["policy_commands"] = plan
        return type("State", (dict,), {"feedback": f"\n\nYou did {self.moves} thing(s).\n>  status"})(s)

    def step(self, command):
        self.moves += 1
        command = command.lower()
        if command in ("go east", "go west"):
            self.room = command.split()[1]
        elif command == "take key" and self.room == "east":
            self.won = True
        return self.state(), 0, False

    def close(self):
        self.closed = True


def test_game_episode_steps_thinks_flags_invalid_and_ends():
    game = FakeGame()
    ep = GameEpisode(game, game.state(), max_steps=5)
    assert ep.step("think: go east first") == ep.step("think: again")  # answered OK., not counted
    assert ep.step("think: x").observation == "OK." and ep.steps == 0
    res = ep.step("dance")
    assert (res.observation, res.info["invalid"], res.done, ep.steps) == ("You did 1 thing(s).", True, False, 1)
    assert ep.step("quit").observation == "Nothing happens." and game.moves == 1  # never sent
    assert ep.step("Go\x00 East\\").info["invalid"] is False  # the engine's case does not matter; NUL, \\ dropped
    res = ep.step("take key")
    assert res.done and res.reward == 1.0 and res.info["won"] and game.closed
    assert ep.step("look").observation == "Nothing happens."
    assert ep.result() == {"success": True, "reward": 1.0, "steps": 4}


def test_expert_states_its_plan_once_and_again_only_when_it_changes():
    game = FakeGame()
    ep = GameEpisode(game, game.state(), max_steps=10)
    assert ep.expert_step() == ("To solve the task, I need to go east, then take key.", "go east")
    ep.step("go east")
    ep.step("go west")  # a detour: the plan changes
    assert ep.expert_step() == ("Now I need to go east, then take key.", "go east")
    ep.step("go east")
    assert ep.expert_step() == (None, "take key")


def test_expert_plans_lazily_when_the_game_has_no_policy():
    game, calls = FakeGame(with_policy=False), []

    def replan():
        calls.append(1)
        return ["go east", "take key"]

    ep = GameEpisode(game, game.state(), max_steps=10, replan=replan)
    ep.step("look")
    assert calls == []  # stepping never plans
    assert ep.expert_step() == ("To solve the task, I need to go east, then take key.", "go east")
    assert calls == [1]
    ep.step("Go East")
    assert ep.expert_step() == (None, "take key") and calls == [1]  # on its plan: no planning
    ep.step("go west")
    ep.expert_step()
    assert calls == [1, 1]  # off it: plans again
    walk = GameEpisode(FakeGame(with_policy=False), FakeGame(False).state(), 10, fallback_plan=["go east", "take key"])
    assert walk.expert_step()[1] == "go east"


@pytest.mark.parametrize(
    ("said", "engine"),
    [
        ("put mug 1 in/on coffeemachine 1", "move mug 1 to coffeemachine 1"),
        ("put mug 1 in coffeemachine 1", "move mug 1 to coffeemachine 1"),
        ("put  Mug 1 on countertop 2 ", "move mug 1 to countertop 2"),
        ("move mug 1 to countertop 2", "move mug 1 to countertop 2"),
        ("take mug 1 from countertop 1", "take mug 1 from countertop 1"),
    ],
)
def test_both_grammars_map_to_the_engine(said, engine):
    assert to_engine(said) == engine


def test_engine_text_in_react_grammar():
    assert to_speech("move mug 1 to coffeemachine 1", "put") == "put mug 1 in/on coffeemachine 1"
    assert (
        to_speech("You move the mug 1 to the coffeemachine 1.", "put")
        == "You put the mug 1 in/on the coffeemachine 1."
    )
    assert to_speech("move mug 1 to coffeemachine 1", "move") == "move mug 1 to coffeemachine 1"
    plan = "To solve the task, I need to take mug 1 from desk 1, then move mug 1 to shelf 2, then move cd 1 to bed 1."
    assert to_speech_plan(plan, "put") == (
        "To solve the task, I need to take mug 1 from desk 1, then put mug 1 in/on shelf 2, then put cd 1 in/on bed 1."
    )


def test_run_config_of_the_game_envs(tmp_path, capsys):
    """``run`` takes the game envs with ``games`` (top-level, like data or webshop_url), passes it to their
    stages only, and refuses what cannot work in one line, before any stage."""
    from agentdistill.runconfig import CollectArgs, EvalArgs, load_run_config, stage_args

    cfg = load_run_config("smoke", sets=["envs=[textworld, alfworld-tw, hotpotqa]", "games=g/"])
    for env in ("textworld", "alfworld-tw"):
        assert cfg.env_options(env) == {"env_seed": 0, "games": "g/"}
        kw = stage_args(EvalArgs, cfg.evaluate, env=env, **cfg.env_options(env)).env_kwargs()
        assert kw == {"seed": 0, "games": "g/"}
    assert cfg.env_options("hotpotqa") == {"env_seed": 0, "data": None, "questions": None, "wiki": None}
    for sets, message in (
        (["games=g/"], "`games` is for the textworld or alfworld-tw env, which is not in envs ['hotpotqa']"),
        (["envs=[textworld]"], "envs has textworld; set its games: --games DIR"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_run_config("smoke", sets=sets)
    with pytest.raises(ConfigError, match="train_size 9: textworld does not generate its train tasks"):
        CollectArgs(env="textworld", games="g/", train_size=9).env_kwargs()
    assert CollectArgs(env="alfworld", train_size=9).env_kwargs() == {"seed": 0, "train_size": 9}

    _touch(tmp_path / "games", *(f"g{i}.z8" for i in range(3)))
    for argv, message in (
        (["--envs", "textworld"], "error: preset smoke: envs has textworld; set its games"),
        (["--envs", "textworld", "--games", str(tmp_path / "games"), "--set", "teacher.train_size=50"],
         "error: train_size 50: textworld does not generate its train tasks"),
    ):  # fmt: skip
        out = tmp_path / "run"
        assert main(["run", "--preset", "smoke", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
        assert not (out / "run.yaml").exists()
