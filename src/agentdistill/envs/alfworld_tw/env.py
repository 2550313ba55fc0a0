"""``AlfworldTWEnv`` (``--env alfworld-tw``): the real ALFWorld engine from the ``alfworld`` package.

    env = AlfworldTWEnv()                       # the games under $ALFWORLD_DATA (alfworld-download)
    env = AlfworldTWEnv(games="games/alf")      # or any folder of games (agentdistill make-games --env alfworld-tw)
    obs = env.reset(env.task_ids("test")[0])

Games are ALFWorld's ``game.tw-pddl`` files, played by TextWorld's PDDL engine behind the package's
demangler and infos wrappers (``engine.start_game``), with the games ``AlfredTWEnv`` keeps: those
marked solvable, without movable receptacles or sliced objects. On ALFWorld's data, ``test`` is
``valid_unseen`` (the 134 games of ``eval_out_of_distribution``, the ReAct evaluation), ``dev`` is
``valid_seen`` and ``train`` is ``train`` (``textworld.games.find_games``).

The text protocol is the embedded ``alfworld`` env's: the first observation is the room and
``Your task is to: ...`` (the engine's welcome banner dropped, as the ReAct harness drops it),
``think:`` turns are answered ``OK.``, and the env speaks ReAct's ``put X in/on Y`` (``grammar="put"``)
or the engine's own ``move X to Y`` (``grammar="move"``); it accepts both either way. The expert is
ALFWorld's planner (``policy_commands``), asked only when ``expert_step`` is called. Task types are
the embedded env's names for ALFWorld's six.
"""

import functools
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from agentdistill.envs.alfworld.env import INSTRUCTION
from agentdistill.envs.alfworld.tasks import TASK_TYPES
from agentdistill.envs.alfworld_tw.engine import start_game, to_engine, to_speech
from agentdistill.envs.base import StepResult
from agentdistill.envs.textworld.engine import GameEnv, GameEpisode, clean_feedback
from agentdistill.envs.textworld.games import GameSet, expand, find_games
from agentdistill.errors import ConfigError, require_extra

MAX_STEPS = 50
GAME_FILE = "game.tw-pddl"
# ALFWorld's task type names (its folder prefixes) -> the embedded env's
LONG_TYPES = {
    "pick_and_place_simple": "pick_and_place",
    "look_at_obj_in_light": "look_at_obj_in_light",
    "pick_clean_then_place_in_recep": "pick_clean_then_place",
    "pick_heat_then_place_in_recep": "pick_heat_then_place",
    "pick_cool_then_place_in_recep": "pick_cool_then_place",
    "pick_two_obj_and_place": "pick_two_obj",
}
HOW_TO_GET = (
    "; download ALFWorld's games (`alfworld-download`, then `export ALFWORLD_DATA=...`) or make some with "
    "`agentdistill make-games --env alfworld-tw --out games/alf --count 60`"
)
_SOLVABLE = re.compile(r'"solvable":\s*true')
_TASK = re.compile(r"Your task is to: ([^\"\\]*)")


def _keep(path: Path) -> bool:
    """The games ``AlfredTWEnv.collect_game_files`` keeps."""
    if "movable" in str(path) or "Sliced" in str(path):
        return False
    return _SOLVABLE.search(path.read_text(encoding="utf-8")) is not None


@functools.lru_cache(maxsize=16)
def _cached_games(spec: str, seed: int, stamp: tuple[float, ...]) -> GameSet:
    return find_games(spec, ("*.tw-pddl",), seed, "alfworld-tw", GAME_FILE, HOW_TO_GET, keep=_keep)


def alfworld_games(spec: str, seed: int = 0) -> GameSet:
    """The games ``spec`` names, split (``games.find_games``); cached until a named folder or file changes."""
    stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in expand(spec))
    return _cached_games(spec, seed, stamp)


@functools.lru_cache(maxsize=4096)
def _meta(path: Path) -> dict[str, Any]:
    game = json.loads(path.read_text(encoding="utf-8"))
    task = _TASK.search(game.get("grammar", ""))
    long = next((t for t in LONG_TYPES if t in path.as_posix()), None)
    if long is None and "agentdistill" in game:
        long = game["agentdistill"].get("task_type")
    if long is None and (traj := path.with_name("traj_data.json")).is_file():
        long = json.loads(traj.read_text(encoding="utf-8")).get("task_type")
    return {
        "task": task.group(1).strip() if task else "",
        "task_type": LONG_TYPES.get(long or "", "unknown"),
        "walkthrough": list(game.get("walkthrough") or []),
    }


class AlfworldTWEnv(GameEnv):
    """ALFWorld's games on its own engine (see the module docstring).

    Args:
        games: the games: a folder (searched recursively), a glob, or a comma-separated list; default
            ``$ALFWORLD_DATA``.
        seed: seed of the split when the games are not in train/dev/test (valid_seen/valid_unseen) folders.
        grammar: ``put`` (ReAct's "put X in/on Y", the default) or ``move`` (the engine's "move X to Y").
    """

    name: ClassVar[str] = "alfworld-tw"
    format: ClassVar[str] = "alfworld"
    max_steps: ClassVar[int] = MAX_STEPS
    task_types: ClassVar[tuple[str, ...]] = TASK_TYPES

    def __init__(self, games: str | None = None, seed: int = 0, grammar: Literal["put", "move"] = "put") -> None:
        games = games or os.environ.get("ALFWORLD_DATA")
        if not games:
            raise ConfigError(f"alfworld-tw needs games: pass --games DIR or set $ALFWORLD_DATA{HOW_TO_GET}")
        if grammar not in ("put", "move"):
            raise ConfigError(f"alfworld-tw grammar {grammar!r}: choose put (ReAct's) or move (the engine's)")
        require_extra("alfworld.agents.environment.alfred_tw_env", "alfworld", "--env alfworld-tw")
        require_extra("fast_downward", "alfworld", "--env alfworld-tw (its planner)")
        self.games = alfworld_games(games, seed)
        self.seed, self.grammar = seed, grammar

    def task_type(self, task_id: str) -> str:
        """One of ``task_types`` (the embedded env's names), or ``unknown``."""
        return _meta(self.games.path(task_id, "alfworld-tw"))["task_type"]

    def task_text(self, task_id: str) -> str:
        """The goal as the game states it, e.g. "put a clean mug in coffeemachine."."""
        return _meta(self.games.path(task_id, "alfworld-tw"))["task"]

    def instruction(self) -> str:
        """The embedded env's instruction (same commands), in this env's grammar."""
        return INSTRUCTION if self.grammar == "put" else INSTRUCTION.replace("put O in/on R", "move O to R")

    def reset(self, task_id: str) -> str:
        """Start the game; returns the room and "Your task is to: ..." (without the engine's welcome line)."""
        path = self._game(task_id)
        game = start_game(str(path), policy=False)
        state = game.reset()

        def replan() -> list[str]:
            # the planner from the current state, once: what PddlEnv computes for ``policy_commands`` at every
            # step when asked to (it has no public call for one plan)
            pddl = game.unwrapped
            return list(pddl._pddl_state.replan(pddl._entity_infos))

        grammar = self.grammar
        self._play(
            GameEpisode(
                game,
                state,
                MAX_STEPS,
                observe=lambda s: to_speech(clean_feedback(s.feedback), grammar),
                fallback_plan=_meta(path)["walkthrough"],
                replan=replan,
            )
        )
        parts = [p.strip() for p in state.feedback.split("\n\n") if p.strip()]
        return "\n\n".join(p for p in parts if not p.startswith("-= Welcome"))

    def step(self, action: str) -> StepResult:
        """Apply one command in either grammar; ``think: ...`` is answered "OK."."""
        return super().step(to_engine(action))

    def expert_step(self) -> tuple[str | None, str]:
        """The planner's next command (and its plan as a thought when the plan is new or changed)."""
        thought, action = super().expert_step()
        if thought is not None:
            thought = to_speech_plan(thought, self.grammar)
        return thought, to_speech(action, self.grammar)

    def result(self) -> dict[str, Any]:
        """``{"success": won, "reward": 1.0 if won, "steps"}``."""
        return super().result()


def to_speech_plan(thought: str, grammar: str) -> str:
    """A plan thought in the env's grammar: every "move X to Y" in it said as the env says commands."""
    if grammar == "move":
        return thought
    return re.sub(r"\bmove (.+?) to (.+?)(?=, then |\.$)", r"put \1 in/on \2", thought)
