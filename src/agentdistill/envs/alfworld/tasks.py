"""Layouts, task specs and object placements of the embedded ALFWorld, all derived from one seed.

Specs (layout, task type, goal) for every split are generated at once and cached per seed; the
placement of objects is drawn per task on demand. Test layouts are "unseen": drawn from their own
seeds and never equal to a train layout. Dev, like ALFWorld's valid_seen, reuses train layouts.

Train tasks beyond ALFWorld's 3553 (``split_specs(seed, "train", train_size)``) each get a layout
drawn for that task alone (never a test layout), so receptacle lists and numbers vary from task to
task instead of repeating 30 layouts per room; task ``i`` depends only on ``seed`` and ``i``.
"""

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from agentdistill.envs.alfworld.world import HOLDERS, OBJECT_PRIORS, OPENABLE, ROOM_OBJECTS, ROOMS, World, kind
from agentdistill.errors import ConfigError

TASK_TYPES = (
    "pick_and_place",
    "look_at_obj_in_light",
    "pick_clean_then_place",
    "pick_heat_then_place",
    "pick_cool_then_place",
    "pick_two_obj",
)

# Tasks per type and split, as in ALFWorld (train, valid_seen, valid_unseen).
TYPE_COUNTS: dict[str, tuple[int, ...]] = {
    "train": (790, 308, 650, 459, 533, 813),
    "dev": (35, 13, 27, 16, 25, 24),
    "test": (24, 18, 31, 23, 21, 17),
}
SPLIT_SIZES = {split: sum(counts) for split, counts in TYPE_COUNTS.items()}

_ROOMS_FOR: dict[str, tuple[str, ...]] = {
    "pick_and_place": ("kitchen", "bedroom", "bathroom", "livingroom"),
    "look_at_obj_in_light": ("bedroom", "livingroom"),
    "pick_clean_then_place": ("kitchen", "bathroom"),
    "pick_heat_then_place": ("kitchen",),
    "pick_cool_then_place": ("kitchen",),
    "pick_two_obj": ("kitchen", "bedroom", "bathroom", "livingroom"),
}
_CHANGE = {"pick_clean_then_place": "clean", "pick_heat_then_place": "heat", "pick_cool_then_place": "cool"}
_CAN = {
    "clean": frozenset({"apple", "bowl", "butterknife", "cloth", "cup", "dishsponge", "egg", "fork", "kettle", "knife",
                        "ladle", "lettuce", "mug", "pan", "plate", "pot", "potato", "soapbar", "spatula", "spoon",
                        "tomato"}),
    "heat": frozenset({"apple", "bread", "cup", "egg", "mug", "plate", "potato", "tomato"}),
    "cool": frozenset({"apple", "bowl", "bread", "cup", "egg", "lettuce", "mug", "pan", "plate", "pot", "potato",
                       "tomato", "winebottle"}),
    "light": frozenset({"alarmclock", "book", "bowl", "box", "cd", "cellphone", "creditcard", "keychain", "laptop",
                        "mug", "newspaper", "pen", "pencil", "pillow", "remotecontrol", "statue", "teddybear",
                        "tissuebox", "vase", "watch"}),
}  # fmt: skip
_NOT_TARGET = {"clean": {"sinkbasin", "bathtubbasin"}, "heat": {"microwave"}, "cool": {"fridge"}}
_TEXTS = {
    "pick_and_place": ("put a {o} {p} {r}.", "put some {o} {p} {r}."),
    "look_at_obj_in_light": ("look at {o} under the desklamp.", "examine the {o} with the desklamp."),
    "pick_clean_then_place": ("put a clean {o} {p} {r}.", "clean some {o} and put it {p} {r}."),
    "pick_heat_then_place": ("put a hot {o} {p} {r}.", "heat some {o} and put it {p} {r}."),
    "pick_cool_then_place": ("put a cool {o} {p} {r}.", "cool some {o} and put it {p} {r}."),
    "pick_two_obj": ("put two {o} {p} {r}.", "find two {o} and put them {p} {r}."),
}
_IN = OPENABLE | {"sinkbasin", "bathtubbasin", "garbagecan", "laundryhamper", "coffeemachine"}
_LAMP_HOSTS = ("desk", "sidetable", "dresser")
_SEEN_LAYOUTS, _UNSEEN_LAYOUTS = 30, 8  # per room type
LIKELY = 0.75  # chance that an object starts in a receptacle of one of its likely types


@dataclass(frozen=True)
class TaskSpec:
    """One task: where it happens and what must be achieved (the placement of objects is drawn later).

    Attributes:
        task_id: e.g. ``"alfworld-test-0007"``.
        task_type: one of ``TASK_TYPES``.
        room: room type of the layout.
        layout: the receptacles, in the order the first observation lists them.
        obj: the goal object type.
        target: the goal receptacle type (``None`` for ``look_at_obj_in_light``).
        text: the task as the agent reads it after "Your task is to: ".
        key: seed string from which the placement is drawn.
    """

    task_id: str
    task_type: str
    room: str
    layout: tuple[str, ...]
    obj: str
    target: str | None
    text: str
    key: str


def _layout(rng: random.Random, room: str) -> tuple[str, ...]:
    while True:
        counts = {t: rng.randint(lo, hi) for t, (lo, hi) in ROOMS[room].items()}
        needs_lamp = room in ("bedroom", "livingroom")
        if 10 <= sum(counts.values()) <= 25 and (not needs_lamp or any(counts[t] for t in _LAMP_HOSTS if t in counts)):
            break
    types = [t for t in ROOMS[room] if counts[t]]
    rng.shuffle(types)
    return tuple(f"{t} {i}" for t in types for i in range(1, counts[t] + 1))


@functools.lru_cache(maxsize=8)
def _layouts(seed: int) -> tuple[dict[str, list[tuple[str, ...]]], dict[str, list[tuple[str, ...]]]]:
    """(seen, unseen): per room type, layouts for train/dev and layouts for test, never equal."""
    seen: dict[str, list[tuple[str, ...]]] = {}
    unseen: dict[str, list[tuple[str, ...]]] = {}
    for room in ROOMS:
        rng = random.Random(f"alfworld:{seed}:layouts:seen:{room}")
        seen[room] = [_layout(rng, room) for _ in range(_SEEN_LAYOUTS)]
        rng = random.Random(f"alfworld:{seed}:layouts:unseen:{room}")
        unseen[room] = []
        while len(unseen[room]) < _UNSEEN_LAYOUTS:
            lay = _layout(rng, room)
            if lay not in seen[room]:
                unseen[room].append(lay)
    return seen, unseen


@functools.lru_cache(maxsize=4096)
def _goals(task_type: str, room: str, layout: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """Every valid (object type, target type) for a task type in a layout."""
    present = {kind(r) for r in layout}
    change = _CHANGE.get(task_type)
    goals: list[tuple[str, str | None]] = []
    for o in ROOM_OBJECTS[room]:
        if task_type == "look_at_obj_in_light":
            if o in _CAN["light"] and present & set(OBJECT_PRIORS[o]):
                goals.append((o, None))
            continue
        if change and o not in _CAN[change]:
            continue
        for r in OBJECT_PRIORS[o]:
            if r not in present or r in _NOT_TARGET.get(change or "", ()) or r == "sinkbasin":
                continue
            if present & (set(OBJECT_PRIORS[o]) - {r}):  # the object has somewhere likely to be found
                goals.append((o, r))
    return tuple(goals)


@functools.lru_cache(maxsize=8)
def task_specs(seed: int) -> dict[str, tuple[TaskSpec, ...]]:
    """All task specs of every split for ``seed`` (cached: cheap to call again)."""
    seen, unseen = _layouts(seed)
    specs: dict[str, tuple[TaskSpec, ...]] = {}
    for split, counts in TYPE_COUNTS.items():
        rng = random.Random(f"alfworld:{seed}:specs:{split}")
        types = [t for t, n in zip(TASK_TYPES, counts, strict=True) for _ in range(n)]
        rng.shuffle(types)
        pool = unseen if split == "test" else seen
        out = []
        for i, task_type in enumerate(types):
            task_id = f"alfworld-{split}-{i:04d}"
            out.append(
                _draw_spec(
                    rng,
                    task_id,
                    task_type,
                    f"alfworld:{seed}:{task_id}",
                    lambda room, p=pool, g=rng: g.choice(p[room]),
                )
            )
        specs[split] = tuple(out)
    return specs


def _draw_spec(
    rng: random.Random, task_id: str, task_type: str, key: str, layouts: Callable[[str], tuple[str, ...]]
) -> TaskSpec:
    """A spec of ``task_type``: a room and a layout (``layouts(room)``) with at least one valid goal."""
    while True:
        room = rng.choice(_ROOMS_FOR[task_type])
        layout = layouts(room)
        goals = _goals(task_type, room, layout)
        if goals:
            break
    o, r = rng.choice(goals)
    prep = "in" if r in _IN else "on"
    text = rng.choice(_TEXTS[task_type]).format(o=o, p=prep, r=r)
    return TaskSpec(task_id, task_type, room, layout, o, r, text, key)


def extra_train_spec(seed: int, index: int) -> TaskSpec:
    """Train task ``index`` >= ``SPLIT_SIZES["train"]``: its own fresh layout, a type drawn in ALFWorld's train proportions."""
    rng = random.Random(f"alfworld:{seed}:specs:train:{index}")
    unseen = _layouts(seed)[1]

    def fresh(room: str) -> tuple[str, ...]:
        while (layout := _layout(rng, room)) in unseen[room]:
            pass  # test layouts stay unseen
        return layout

    task_type = rng.choices(TASK_TYPES, weights=TYPE_COUNTS["train"])[0]
    task_id = f"alfworld-train-{index:04d}"
    return _draw_spec(rng, task_id, task_type, f"alfworld:{seed}:{task_id}", fresh)


@functools.lru_cache(maxsize=8)
def split_specs(seed: int, split: str, train_size: int | None = None) -> tuple[TaskSpec, ...]:
    """The specs of ``split``; ``train_size`` (train only) keeps the first ones or appends ``extra_train_spec``s."""
    specs = task_specs(seed)[split]
    if split != "train" or train_size is None:
        return specs
    if train_size < 1:
        raise ConfigError(f"alfworld train_size must be >= 1; got {train_size}")
    return specs[:train_size] + tuple(extra_train_spec(seed, i) for i in range(len(specs), train_size))


def _spot(rng: random.Random, obj: str, layout: tuple[str, ...], avoid: frozenset[str]) -> str:
    """A receptacle for one object: usually one of a likely type (any instance), else any other holder."""
    by_type: dict[str, list[str]] = {}
    for r in layout:
        by_type.setdefault(kind(r), []).append(r)
    likely = [r for t in OBJECT_PRIORS[obj] if t in by_type and t not in avoid for r in by_type[t]]
    other = [r for t in by_type if t in HOLDERS and t not in avoid for r in by_type[t] if r not in likely]
    if likely and (rng.random() < LIKELY or not other):
        return rng.choice(likely)
    return rng.choice(other)


def place_objects(spec: TaskSpec, attempt: int = 0) -> dict[str, tuple[str, ...]]:
    """Draw where every object starts: receptacle -> objects, listed in a shuffled order.

    The goal object gets 1-2 instances (2-3 for ``pick_two_obj``), never already in a target-type
    receptacle; bedrooms and living rooms get a desklamp; 5-9 other object types are distractors.
    """
    rng = random.Random(f"{spec.key}:place:{attempt}")
    avoid = frozenset({spec.target}) if spec.target else frozenset()
    n_goal = rng.choice((2, 2, 3)) if spec.task_type == "pick_two_obj" else rng.choice((1, 1, 2))
    spots: dict[str, list[str]] = {spec.obj: [_spot(rng, spec.obj, spec.layout, avoid) for _ in range(n_goal)]}
    if spec.room in ("bedroom", "livingroom"):
        spots["desklamp"] = [_spot(rng, "desklamp", spec.layout, frozenset(HOLDERS - set(_LAMP_HOSTS)))]
    others = [o for o in ROOM_OBJECTS[spec.room] if o != spec.obj]
    for o in rng.sample(others, min(len(others), rng.randint(5, 9))):
        spots[o] = [_spot(rng, o, spec.layout, frozenset()) for _ in range(rng.choice((1, 1, 2, 3)))]
    contents: dict[str, list[str]] = {}
    for o, where in spots.items():
        rng.shuffle(where)  # numbers say nothing about where an object is
        for i, r in enumerate(where, 1):
            contents.setdefault(r, []).append(f"{o} {i}")
    for objs in contents.values():
        rng.shuffle(objs)
    return {r: tuple(objs) for r, objs in contents.items()}


def goal_reached(spec: TaskSpec, world: World) -> bool:
    """Whether the world is in the task's goal state (checked on types, like ALFWorld's goals)."""
    if spec.task_type == "look_at_obj_in_light":
        here = world.location
        return (
            world.holding is not None
            and kind(world.holding) == spec.obj
            and here is not None
            and any(kind(x) == "desklamp" and x in world.lit for x in world.contents[here])
        )
    change = _CHANGE.get(spec.task_type)
    for r, objs in world.contents.items():
        if kind(r) != spec.target:
            continue
        good = [o for o in objs if kind(o) == spec.obj and (change is None or o in world.states[change])]
        if len(good) >= (2 if spec.task_type == "pick_two_obj" else 1):
            return True
    return False
