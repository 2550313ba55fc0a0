"""The protocol of an agent environment, shared by the embedded simulators and real-benchmark adapters.

One env object runs one episode at a time; the agent makes one object per parallel episode.
Task sets are fixed by the constructor's ``seed``. The text protocol (what ``reset``/``step``
return, what ``step`` accepts) is the same whatever the backend, so trajectories never depend
on it.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class StepResult:
    observation: str
    reward: float
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


class AgentEnv(Protocol):
    name: ClassVar[str]
    format: ClassVar[str]  # text format of its transcripts: "alfworld" | "webshop" | "react"
    max_steps: ClassVar[int]  # actions per episode before it is cut (a failure)
    task_types: ClassVar[tuple[str, ...]]

    def splits(self) -> dict[str, int]:
        """Split name -> number of tasks, e.g. ``{"train": 3000, "dev": 100, "test": 134}``."""
        ...

    def task_ids(self, split: str) -> list[str]:
        """The fixed, ordered task ids of a split; raises ``ConfigError`` for an unknown split."""
        ...

    def task_type(self, task_id: str) -> str: ...

    def task_text(self, task_id: str) -> str:
        """The task as the first observation states it (a trajectory's ``task``), e.g. the question."""
        ...

    def instruction(self) -> str:
        """The fixed instruction that opens every prompt of this env (no task-specific text)."""
        ...

    def reset(self, task_id: str) -> str:
        """Start ``task_id``; returns the first observation, which contains the task text."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply one action (text). Invalid actions give the benchmark's invalid-action observation."""
        ...

    def expert_step(self) -> tuple[str | None, str]:
        """The oracle's ``(thought or None, action)`` for the current state."""
        ...

    def result(self) -> dict[str, Any]:
        """Outcome so far: ``{"success": bool, "reward": float, ...env extras (score, em, f1)}``."""
        ...
