"""One TextWorld game in progress, in the ALFWorld text protocol: what both TextWorld-engine envs share.

``GameEpisode`` turns the engine's raw output into the observations a transcript holds (prompt,
status line and blank lines removed, ``think:`` answered ``OK.``), counts steps against the cap,
flags commands outside the game's admissible ones as invalid, and plays the expert from the
engine's own plan (``policy_commands``: the shortest command list that wins from the current state).
"""

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from agentdistill.envs.base import StepResult
from agentdistill.envs.textworld.games import GameSet

NOTHING_HAPPENS = "Nothing happens."
MAX_COMMAND = 200
_META = {"quit", "q", "restart", "restore", "save", "undo", "script", "unscript", "transcript", "noscript"}
_RESTART = re.compile(r"would you like to restart", re.IGNORECASE)


def clean_feedback(text: str) -> str:
    """The game's answer without the interpreter's ``>`` prompt, status line and blank lines.

    Every line is stripped; the text stops at the first line that starts with ``>`` (the prompt, after
    which Jericho prints the status bar), so no observation line can read as a command of the format.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(">"):
            break
        if line and not _RESTART.search(line):
            lines.append(line)
    return "\n".join(lines)


def safe_command(action: str) -> str:
    """A command the interpreter can take whatever a model wrote: printable ASCII only, no backslash, at most
    ``MAX_COMMAND`` characters. A NUL kills the z-machine interpreter (segfault), a character of several
    bytes cut by its input buffer breaks its output's decoding, and ``\\help``-style lines are frotz's own
    meta-commands, not the game's; no game command needs any of them."""
    kept = "".join(ch for ch in action if ch.isascii() and ch.isprintable() and ch != "\\")
    return kept.strip()[:MAX_COMMAND]


def plan_thought(plan: Sequence[str], first: bool) -> str:
    """The expert's reasoning for a plan, e.g. "To solve the task, I need to go east, then take key."."""
    steps = ", then ".join(plan)
    return f"To solve the task, I need to {steps}." if first else f"Now I need to {steps}."


class GameEpisode:
    """A started TextWorld environment (``textworld.start``/``reset`` already called) as an episode.

    Args:
        game: the TextWorld environment; closed when the episode ends.
        state: the ``GameState`` its ``reset`` returned.
        max_steps: commands before the episode is cut.
        observe: turns a ``GameState`` into the observation text (default: its cleaned feedback).
        fallback_plan: the expert's commands when the engine gives no plan (the game's walkthrough).
        replan: computes the engine's plan for the current state when the game was started without
            ``policy_commands`` (planning can cost more than a step; only an expert pays for it, and only
            at the start and after a command that left its plan).
    """

    def __init__(
        self,
        game: Any,
        state: Any,
        max_steps: int,
        observe: Callable[[Any], str] | None = None,
        fallback_plan: Sequence[str] = (),
        replan: Callable[[], list[str]] | None = None,
    ) -> None:
        self.game, self.state, self.max_steps = game, state, max_steps
        self.observe = observe or (lambda s: clean_feedback(s.feedback))
        self.fallback_plan = list(fallback_plan)
        self.replan = replan
        self.steps = 0
        self.announced: list[str] | None = None  # the rest of the plan the expert last stated
        self.expected: str | None = None  # the command the expert last gave
        self.last_action: str | None = None  # the command last sent to the game

    @property
    def won(self) -> bool:
        return bool(self.state.get("won"))

    @property
    def done(self) -> bool:
        return self.won or bool(self.state.get("lost")) or self.steps >= self.max_steps

    def step(self, action: str) -> StepResult:
        action = safe_command(action)
        if action.lower().startswith("think:"):
            return StepResult("OK.", 0.0, self.done, {"think": True})
        if self.done:
            return StepResult(NOTHING_HAPPENS, self.reward(), True, {"invalid": True, "won": self.won})
        admissible = self.state.get("admissible_commands")
        invalid = admissible is not None and action.lower() not in {c.lower() for c in admissible}
        self.steps += 1
        self.last_action = action.lower()
        if action.lower().split(" ")[0] in _META:  # the interpreter's own commands: not part of a task
            return StepResult(NOTHING_HAPPENS, self.reward(), self.done, {"invalid": True, "won": False})
        self.state, _, _ = self.game.step(action)
        obs = self.observe(self.state) or NOTHING_HAPPENS
        if self.done:
            self.close()
        info = {"invalid": invalid, "won": self.won, "steps": self.steps}
        return StepResult(obs, self.reward(), self.done, info)

    def expert_step(self) -> tuple[str | None, str]:
        """The next command of the engine's plan, with a thought when the plan is new or has changed."""
        plan = self.state.get("policy_commands")
        if plan is None and self.announced and self.last_action == self.expected:
            plan = self.announced  # the engine is deterministic: a plan followed step by step stays valid
        elif plan is None and self.replan is not None:
            plan = self.replan()
        plan = list(plan or [])
        if not plan:
            plan = self.fallback_plan[self.steps :] or ["look"]
        thought = None
        if plan != self.announced:
            thought = plan_thought(plan, first=self.announced is None)
        self.announced, self.expected = plan[1:], plan[0].lower()
        return thought, plan[0]

    def reward(self) -> float:
        """The score so far as a fraction of the game's maximum (1.0 once won)."""
        if self.won:
            return 1.0
        top = self.state.get("max_score") or 0
        return float(self.state.get("score") or 0) / top if top else 0.0

    def result(self) -> dict[str, Any]:
        return {"success": self.won, "reward": self.reward(), "steps": self.steps}

    def close(self) -> None:
        if self.game is not None:
            self.game.close()
            self.game = None


class GameEnv:
    """What the envs over game files share: tasks are the games of ``self.games`` (split by
    ``games.find_games``), and ``step``, ``expert_step`` and ``result`` go to the ``GameEpisode``
    that ``reset`` started (``_play``)."""

    name: ClassVar[str]
    games: GameSet
    _episode: GameEpisode | None = None

    def splits(self) -> dict[str, int]:
        """Split name -> number of games (``train``, ``dev``, ``test`` and ``all``)."""
        return {s: len(ids) for s, ids in self.games.split_ids.items()}

    def task_ids(self, split: str) -> list[str]:
        return self.games.ids(split, self.name)

    def _game(self, task_id: str) -> Path:
        """The game file of ``task_id``; the episode in progress is closed (its interpreter ended)."""
        if self._episode is not None:
            self._episode.close()
            self._episode = None
        return self.games.path(task_id, self.name)

    def _play(self, episode: GameEpisode) -> None:
        self._episode = episode

    def step(self, action: str) -> StepResult:
        """Apply one command: ``think: ...`` is answered "OK."; the game answers any other."""
        return self._started().step(action)

    def expert_step(self) -> tuple[str | None, str]:
        return self._started().expert_step()

    def result(self) -> dict[str, Any]:
        return self._started().result()

    def _started(self) -> GameEpisode:
        if self._episode is None:
            raise RuntimeError("call reset(task_id) before step()")
        return self._episode
