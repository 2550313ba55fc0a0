"""``AlfWorldEnv``: the embedded ALFWorld behind the ``AgentEnv`` protocol.

    env = AlfWorldEnv(seed=0)
    obs = env.reset(env.task_ids("test")[0])
    thought, action = env.expert_step()
    result = env.step(action)  # StepResult(observation, reward, done, info)

Tasks are fixed by the seed and cached, so building many env objects is cheap. Each task's object
placement is drawn so that the transcript-only expert solves it within ``max_steps``.
"""

import functools
from typing import Any, ClassVar

from agentdistill.envs.alfworld.expert import Expert
from agentdistill.envs.alfworld.tasks import (
    SPLIT_SIZES,
    TASK_TYPES,
    TaskSpec,
    extra_train_spec,
    goal_reached,
    place_objects,
    split_specs,
    task_specs,
)
from agentdistill.envs.alfworld.world import NOTHING_HAPPENS, World
from agentdistill.envs.base import StepResult
from agentdistill.errors import ConfigError

MAX_STEPS = 50

INSTRUCTION = """Interact with a household to solve a task. Each turn, write exactly one command. The commands are:
go to X / open X / close X / take O from R / put O in/on R / heat O with microwave 1 / cool O with fridge 1 /
clean O with sinkbasin 1 / use desklamp 1 / examine X / inventory / look
where X, O and R are numbered names you have seen, such as "cabinet 1" or "mug 2". You can carry one object at
a time and act only on the receptacle you are at; open a closed receptacle to see inside it. A turn may instead
be "think: ..." to reason; it is answered "OK." and does not count as a step. A command that cannot be carried
out is answered "Nothing happens.". You have 50 steps."""


def _first_observation(spec: TaskSpec, world: World) -> str:
    return f"{world.intro()}\n\nYour task is to: {spec.text}"


def _spec(seed: int, task_id: str) -> TaskSpec:
    parts = task_id.split("-")
    specs = task_specs(seed)
    if len(parts) != 3 or parts[0] != "alfworld" or parts[1] not in specs or not parts[2].isdigit():
        raise ConfigError(f"unknown alfworld task id {task_id!r}; expected e.g. 'alfworld-test-0007'")
    index = int(parts[2])
    if parts[1] == "train" and index >= len(specs["train"]):
        return extra_train_spec(seed, index)  # a task of a larger train split (train_size)
    if index >= len(specs[parts[1]]):
        raise ConfigError(f"task id {task_id!r} is out of range: split {parts[1]!r} has {len(specs[parts[1]])} tasks")
    return specs[parts[1]][index]


def _expert_steps(spec: TaskSpec, contents: dict[str, tuple[str, ...]]) -> int | None:
    """Actions the expert needs on this placement, or ``None`` if it fails within ``MAX_STEPS``."""
    world = World(spec.layout, contents)
    expert = Expert(_first_observation(spec, world), spec.task_id)
    for step in range(1, MAX_STEPS + 1):
        _, action = expert.act()
        obs, _ = world.act(action)
        expert.observe(action, obs)
        if goal_reached(spec, world):
            return step
    return None


@functools.lru_cache(maxsize=8192)
def _placement(seed: int, task_id: str) -> tuple[TaskSpec, dict[str, tuple[str, ...]]]:
    """The task's spec and start placement: the first draw the expert solves within the step cap."""
    spec = _spec(seed, task_id)
    for attempt in range(200):
        contents = place_objects(spec, attempt)
        if _expert_steps(spec, contents) is not None:
            return spec, contents
    raise RuntimeError(f"no solvable placement for {task_id} (seed {seed})")  # a generator bug


class AlfWorldEnv:
    """A seeded household text simulator with ALFWorld's six task types, grammar and wording.

    Args:
        seed: fixes every split's layouts, goals and placements.
        train_size: train tasks (default 3553); more add tasks with a fresh layout each, dev and
            test stay the same (``tasks.split_specs``).
    """

    name: ClassVar[str] = "alfworld"
    format: ClassVar[str] = "alfworld"
    max_steps: ClassVar[int] = MAX_STEPS
    task_types: ClassVar[tuple[str, ...]] = TASK_TYPES

    def __init__(self, seed: int = 0, train_size: int | None = None) -> None:
        self.seed, self.train_size = seed, train_size
        if train_size is not None:
            split_specs(seed, "train", train_size)  # a bad size fails here
        self._spec: TaskSpec | None = None
        self._world: World | None = None
        self._expert: Expert | None = None
        self._steps = 0
        self._success = False

    def splits(self) -> dict[str, int]:
        """Split name -> number of tasks: ``{"train": 3553, "dev": 140, "test": 134}``."""
        return {**SPLIT_SIZES, "train": self.train_size or SPLIT_SIZES["train"]}

    def task_ids(self, split: str) -> list[str]:
        """The ordered task ids of ``split``, e.g. ``"alfworld-test-0007"``.

        Raises:
            ConfigError: for a split other than train, dev or test.
        """
        specs = task_specs(self.seed)
        if split not in specs:
            raise ConfigError(f"unknown alfworld split {split!r}; choose one of {', '.join(specs)}")
        return [s.task_id for s in split_specs(self.seed, split, self.train_size)]

    def task_type(self, task_id: str) -> str:
        """One of ``task_types``."""
        return _spec(self.seed, task_id).task_type

    def task_text(self, task_id: str) -> str:
        """The task as the agent reads it, e.g. "put a clean mug in coffeemachine."."""
        return _spec(self.seed, task_id).text

    def instruction(self) -> str:
        """The fixed instruction: the command grammar, carrying rules and ``think:`` turns."""
        return INSTRUCTION

    def reset(self, task_id: str) -> str:
        """Start ``task_id``; returns the receptacle list and "Your task is to: ..."."""
        spec, contents = _placement(self.seed, task_id)
        self._spec, self._world = spec, World(spec.layout, contents)
        self._steps, self._success = 0, False
        first = _first_observation(spec, self._world)
        self._expert = Expert(first, task_id)
        return first

    def step(self, action: str) -> StepResult:
        """Apply one command. ``think: ...`` is answered "OK." and is not counted; bad commands are no-ops."""
        if self._world is None or self._spec is None or self._expert is None:
            raise RuntimeError("call reset(task_id) before step()")
        done = self._success or self._steps >= MAX_STEPS
        if action.strip().lower().startswith("think:"):
            return StepResult("OK.", 0.0, done, {"think": True})
        if done:
            return StepResult(NOTHING_HAPPENS, 0.0, True, {"invalid": True, "won": self._success})
        obs, valid = self._world.act(action)
        self._steps += 1
        self._expert.observe(action, obs)
        self._success = valid and goal_reached(self._spec, self._world)
        done = self._success or self._steps >= MAX_STEPS
        info = {"invalid": not valid, "won": self._success, "steps": self._steps}
        return StepResult(obs, 1.0 if self._success else 0.0, done, info)

    def expert_step(self) -> tuple[str | None, str]:
        """The oracle's ``(thought or None, action)``, computed from the transcript so far only."""
        if self._expert is None:
            raise RuntimeError("call reset(task_id) before expert_step()")
        return self._expert.act()

    def result(self) -> dict[str, Any]:
        """``{"success", "reward", "steps"}`` of the current episode."""
        return {"success": self._success, "reward": 1.0 if self._success else 0.0, "steps": self._steps}
