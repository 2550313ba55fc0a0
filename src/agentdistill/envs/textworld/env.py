"""``TextWorldEnv``: any TextWorld game (a ``.z8`` with the ``.json`` TextWorld writes beside it).

    env = TextWorldEnv(games="games/")          # a folder, a glob, or a comma-separated list
    obs = env.reset(env.task_ids("test")[0])
    thought, action = env.expert_step()

A transcript (ALFWorld format; a game made by ``agentdistill make-games --env textworld``)::

    -= Cookhouse =-
    You're now in a cookhouse.
    You don't like doors? Why not try going south, that entranceway is unguarded.
    There is a glass on the floor.

    Your task is to: Welcome to another exciting session of TextWorld! First of all, venture south. ...
    > think: To solve the task, I need to go south, then go east, then close coffer.
    OK.
    > go south
    -= Spare Room =-
    ...

The ALFWorld format fits because ALFWorld *is* TextWorld: one command per line, the game's answer
below it, ``think:`` turns answered ``OK.``, and the models trained on one read the other. The
expert follows the engine's plan from the current state (``policy_commands``, the game's
walkthrough when there is none) and thinks once, stating the plan. Success is winning the game;
``reward`` (the report's score) is the game's score as a fraction of its maximum. Splits:
``games.find_games``.
"""

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from agentdistill.envs.textworld.engine import GameEnv, GameEpisode, clean_feedback
from agentdistill.envs.textworld.games import GameSet, expand, find_games
from agentdistill.errors import ConfigError, require_extra

MAX_STEPS = 50
PATTERNS = ("*.z8", "*.z5", "*.ulx")
CHALLENGES = ("simple", "coin_collector", "treasure_hunter", "cooking")
HOW_TO_GET = "; make some with `agentdistill make-games --env textworld --out games --count 20`"

INSTRUCTION = """Interact with a text game to solve a task. Each turn, write exactly one command, such as:
go north / go south / go east / go west / look / inventory / examine X / take X / take X from Y / drop X /
put X on Y / insert X into Y / open X / close X / unlock X with Y / lock X with Y / eat X
(cooking games add: cook X with Y / slice X with Y / dice X with Y / chop X with Y / prepare meal),
where X and Y are things you have seen. A turn may instead be "think: ..." to reason; it is answered "OK." and
does not count as a step. You have 50 steps."""


@functools.lru_cache(maxsize=64)
def _cached_games(spec: str, seed: int, stamp: tuple[float, ...]) -> GameSet:
    games = find_games(spec, PATTERNS, seed, "textworld", how_to_get=HOW_TO_GET)
    missing = [p for p in games.files.values() if not p.with_suffix(".json").is_file()]
    if missing:
        raise ConfigError(
            f"textworld: {len(missing)} game(s) have no .json beside them, e.g. {missing[0]}; TextWorld writes it "
            "with the game (tw-make, agentdistill make-games) and the task and the expert need it"
        )
    if any(p.suffix == ".ulx" for p in games.files.values()):
        raise ConfigError("textworld: .ulx (Glulx) games need textworld<1.7; recompile them as .z8 (tw-make)")
    return games


def textworld_games(spec: str, seed: int = 0) -> GameSet:
    """The games ``spec`` names, split (``games.find_games``); cached until a named folder or file changes."""
    stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in expand(spec))
    return _cached_games(spec, seed, stamp)


@functools.lru_cache(maxsize=8192)
def _meta(path: Path) -> dict[str, Any]:
    data = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    meta = data.get("metadata") or {}
    prefix = str(meta.get("uuid", "")).removeprefix("tw-").split("-")[0]
    return {
        "objective": (data.get("objective") or "").strip(),
        "walkthrough": list(meta.get("walkthrough") or []),
        "task_type": prefix if prefix in CHALLENGES else "custom",
    }


class TextWorldEnv(GameEnv):
    """TextWorld games as tasks (see the module docstring).

    Args:
        games: the games: a folder (searched recursively), a file, a glob, or several, comma-separated.
        seed: seed of the split when the games are not in train/dev/test folders.
    """

    name: ClassVar[str] = "textworld"
    format: ClassVar[str] = "alfworld"
    max_steps: ClassVar[int] = MAX_STEPS
    task_types: ClassVar[tuple[str, ...]] = ("custom", *CHALLENGES)

    def __init__(self, games: str | None = None, seed: int = 0) -> None:
        if not games:
            raise ConfigError(f"textworld needs games: pass --games DIR_OR_GLOB (.z8 files){HOW_TO_GET}")
        self.textworld = require_extra("textworld", "textworld", "--env textworld")
        self.games = textworld_games(games, seed)
        self.seed = seed

    def result(self) -> dict[str, Any]:
        """``{"success": won, "reward": score / max score, "steps"}``."""
        return super().result()

    def task_type(self, task_id: str) -> str:
        """The TextWorld challenge the game was made with, or ``custom``."""
        return _meta(self.games.path(task_id, "textworld"))["task_type"]

    def task_text(self, task_id: str) -> str:
        """The game's objective."""
        return _meta(self.games.path(task_id, "textworld"))["objective"]

    def instruction(self) -> str:
        return INSTRUCTION

    def reset(self, task_id: str) -> str:
        """Start the game; returns the first room's description and "Your task is to: <objective>"."""
        path = self._game(task_id)
        tw = self.textworld
        infos = tw.EnvInfos(
            description=True, admissible_commands=True, policy_commands=True, won=True, lost=True, score=True,
            max_score=True,
        )  # fmt: skip
        game = tw.start(str(path), infos)
        state = game.reset()
        meta = _meta(path)
        self._play(GameEpisode(game, state, MAX_STEPS, fallback_plan=meta["walkthrough"]))
        return f"{clean_feedback(state['description'])}\n\nYour task is to: {meta['objective']}"
