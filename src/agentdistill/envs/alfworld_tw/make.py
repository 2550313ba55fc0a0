"""Generate ALFWorld games offline from what the ``alfworld`` package ships: ALFRED's scene layouts
(``alfworld/gen/layouts``: each scene's object types and receptacles with their poses), its object
rules (``alfworld.gen.constants``: what fits in what, what can be heated, cooled, cleaned, toggled),
its goal library (``alfworld.gen.goal_library``: the PDDL goal and text templates of each task type),
the PDDL domain and the text grammar. Nothing of them is copied here; they are read at run time.

    agentdistill make-games --env alfworld-tw --out games/alf --count 60 --seed 0

Game ``i`` draws, from ``sha256(f"{seed}:{i}:{attempt}")``: the task type (``task_types[i % n]``, so the
six types alternate), a scene of ALFRED's train or test scenes where that type is valid, the target
object, receptacle (and lamp), and a placement of 1-2 instances of every portable object type of the
scene in receptacles that can hold them, none of the target's already where the goal wants it. The
planner (Fast Downward, as ``alfworld-generate`` checks games) must find a plan of at most
``MAX_PLAN`` commands, else the next attempt is drawn. Each game is a folder ``game-NNNN/`` laid out as
ALFWorld's own: ``game.tw-pddl`` (``pddl_domain``, ``grammar`` with the task text, ``pddl_problem``,
``solvable``, ``walkthrough``, and our ``agentdistill`` record: task type, scene, targets) and
``traj_data.json`` (task type and targets), so ALFWorld's ``AlfredTWEnv`` can load the set too.

What differs from the official games: receptacles without a pose in the layout (coffee machine,
stove burner, toaster) stand at a navigable point of the scene; lamps sit in a table-like receptacle;
no object is sliced and no task needs a movable receptacle (ALFWorld skips those too).
"""

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentdistill.errors import ConfigError, require_extra

# ALFWorld's six task types (its folder-name prefixes) -> the short names the embedded env reports.
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
GAME_FILE = "game.tw-pddl"  # ALFWorld's name for a game file; each game has its own folder
ATTEMPTS = 50
MAX_PLAN = 40
# the receptacle a state-change task uses is not its goal receptacle (ALFRED's own rule)
_TOOL = {
    "pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
    "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
    "pick_cool_then_place_in_recep": ("Fridge", "Coolable"),
}
_LAMPS = ("DeskLamp", "FloorLamp")
_LAMP_STANDS = ("Desk", "SideTable", "Dresser", "DiningTable", "CoffeeTable", "Shelf", "TVStand", "Bed")
_EXTRA_RECEPTACLES = ("CoffeeMachine", "StoveBurner", "Toaster", "GarbageCan")


@dataclass(frozen=True)
class AlfworldGameOptions:
    """Which games to draw."""

    task_types: tuple[str, ...] = TASK_TYPES
    split: str = "train"  # ALFRED's train scenes or its test scenes (the "unseen" rooms)

    def __post_init__(self) -> None:
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        if bad or not self.task_types:
            raise ConfigError(f"--task_types {','.join(self.task_types)!r}: choose from {', '.join(TASK_TYPES)}")
        if self.split not in ("train", "test"):
            raise ConfigError(f"--split {self.split!r}: choose train or test")


def _mangle(name: str) -> str:
    """ALFRED's PDDL spelling of an object id (``PlannedGameState.fix_pddl_str_chars``)."""
    for a, b in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        name = name.replace(a, b)
    return name


def _rtype(receptacle_id: str) -> str:
    parts = receptacle_id.split("|")
    return parts[-1] if len(parts) > 4 else parts[0]  # "Sink|x|y|z|SinkBasin" is a SinkBasin


def _loc(x: float, z: float, rotation: int, horizon: int) -> str:
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{round(rotation / 90) % 4}|{round(horizon)}"


@dataclass
class _Scene:
    number: int
    kind: str
    object_types: list[str]
    receptacles: dict[str, str]  # receptacle id -> location


def _package() -> tuple[Any, Any, Path]:
    constants = require_extra("alfworld.gen.constants", "alfworld", "--env alfworld-tw")
    goals = require_extra("alfworld.gen.goal_library", "alfworld", "--env alfworld-tw")
    return constants, goals, Path(constants.__file__).parent


def _scene(number: int, rng: random.Random) -> _Scene:
    import numpy as np

    constants, _, root = _package()
    layouts = root / "layouts"
    types = json.loads((layouts / f"FloorPlan{number}-objects.json").read_text())
    poses = json.loads((layouts / f"FloorPlan{number}-openable.json").read_text())
    points = np.load(layouts / f"FloorPlan{number}-layout.npy")
    movable = set(constants.MOVABLE_RECEPTACLES)
    receptacles: dict[str, str] = {}

    def add(receptacle: str, loc: str) -> None:
        # one location per receptacle: where two share a standing pose, the planner could use one unseen
        # from the other ("heat mug 1 with microwave 1" at the dining table)
        while loc in receptacles.values():
            loc += "|1"
        receptacles[receptacle] = loc

    for r, p in sorted(poses.items()):
        if _rtype(r) not in movable:
            add(r, _loc(*p))
    have = {_rtype(r) for r in receptacles}
    for kind in _EXTRA_RECEPTACLES:  # in the scene but without a pose in the layout: stand at a navigable point
        if kind in types and kind not in have:
            x, z = points[rng.randrange(len(points))]
            add(f"{kind}|{x:+06.2f}|+00.90|{z:+06.2f}", _loc(x, z, 90 * rng.randrange(4), 30))
    kind = next(k for k, r in constants.SCENE_TYPE.items() if number in r)
    return _Scene(number, kind, sorted(types), receptacles)


def _scene_numbers(split: str) -> list[int]:
    constants, _, root = _package()
    numbers = constants.TRAIN_SCENE_NUMBERS if split == "train" else constants.TEST_SCENE_NUMBERS
    return [n for n in numbers if (root / "layouts" / f"FloorPlan{n}-openable.json").is_file()]


def _draw_task(task_type: str, scene: _Scene, rng: random.Random) -> dict[str, str] | None:
    """Target object, receptacle and lamp of a ``task_type`` task in ``scene``, or ``None`` if it has none."""
    constants, _, _ = _package()
    if scene.kind not in constants.GOALS_VALID[task_type]:
        return None
    fits = constants.VAL_RECEPTACLE_OBJECTS
    rtypes = sorted({_rtype(r) for r in scene.receptacles})
    portable = _portable(scene)
    if task_type == "look_at_obj_in_light":
        lamps = [t for t in _LAMPS if t in scene.object_types]
        stands = [r for r in rtypes if r in _LAMP_STANDS]
        if not lamps or not stands or not portable:
            return None
        return {"object": rng.choice(portable), "receptacle": "", "toggle": rng.choice(lamps)}
    tool, ability = _TOOL.get(task_type, (None, None))
    if tool is not None and tool not in rtypes:
        return None
    options = [
        (o, r)
        for o in portable
        for r in rtypes
        if o in fits.get(r, ()) and r != tool and (ability is None or o in constants.VAL_ACTION_OBJECTS[ability])
    ]
    if not options:
        return None
    obj, recep = rng.choice(options)
    return {"object": obj, "receptacle": recep, "toggle": ""}


def _portable(scene: _Scene) -> list[str]:
    constants, _, _ = _package()
    fits = constants.VAL_RECEPTACLE_OBJECTS
    rtypes = {_rtype(r) for r in scene.receptacles}
    return [t for t in scene.object_types if "Sliced" not in t and any(t in fits.get(r, ()) for r in rtypes)]


def _problem(task_type: str, scene: _Scene, task: dict[str, str], rng: random.Random, name: str) -> str:
    """The PDDL problem: ALFRED's ``initial_state.pddl`` shape, with a fresh placement."""
    constants, goals, _ = _package()
    fits, abilities = constants.VAL_RECEPTACLE_OBJECTS, constants.VAL_ACTION_OBJECTS
    receptacles = scene.receptacles
    by_type: dict[str, list[str]] = {}
    for r in receptacles:
        by_type.setdefault(_rtype(r), []).append(r)
    objects: dict[str, tuple[str, str]] = {}  # object id -> (type, receptacle id)
    for otype in _portable(scene):
        homes = [r for r in receptacles if otype in fits.get(_rtype(r), ())]
        if otype == task["object"]:  # never already where the goal wants it
            homes = [r for r in homes if _rtype(r) != task["receptacle"]] or homes
        n = 2 if otype == task["object"] and task_type == "pick_two_obj_and_place" else rng.randint(1, 2)
        for k in range(1, n + 1):
            objects[f"{otype}|{k:02d}|{rng.randrange(10**6):06d}"] = (otype, rng.choice(homes))
    if task["toggle"]:
        stands = [r for r in receptacles if _rtype(r) in _LAMP_STANDS]
        objects[f"{task['toggle']}|01|{rng.randrange(10**6):06d}"] = (task["toggle"], rng.choice(stands))
    start = "loc|0|0|0|30"
    while start in receptacles.values():
        start = f"loc|{rng.randrange(-40, 40)}|{rng.randrange(-40, 40)}|0|30"
    rtypes = sorted(set(constants.RECEPTACLES) - set(constants.MOVABLE_RECEPTACLES))
    otypes = sorted(set(constants.OBJECTS) - set(rtypes))
    locations = sorted({*receptacles.values(), start})
    decl = ["agent1 - agent"]
    decl += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    decl += [f"{_mangle(r)} - receptacle" for r in receptacles] + [f"{_mangle(o)} - object" for o in objects]
    decl += [f"{_mangle(loc)} - location" for loc in locations]
    init = [f"(atLocation agent1 {_mangle(start)})"]
    for r, loc in receptacles.items():
        init.append(f"(receptacleType {_mangle(r)} {_rtype(r)}Type)")
        init.append(f"(receptacleAtLocation {_mangle(r)} {_mangle(loc)})")
        if _rtype(r) in constants.OPENABLE_CLASS_SET:
            init.append(f"(openable {_mangle(r)})")
    for o, (otype, r) in objects.items():
        m = _mangle(o)
        init += [f"(objectType {m} {otype}Type)", f"(inReceptacle {m} {_mangle(r)})"]
        init.append(f"(objectAtLocation {m} {_mangle(receptacles[r])})")
        if otype not in _LAMPS:
            init.append(f"(pickupable {m})")
        if otype in constants.MOVABLE_RECEPTACLES:
            init.append(f"(isReceptacleObject {m})")
        for ability, pred in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable")):
            if otype in abilities[ability]:
                init.append(f"({pred} {m})")
        if otype in abilities["Toggleable"]:
            init.append(f"(toggleable {m})")
    present = {t for t, _ in objects.values()}
    for rt in sorted({_rtype(r) for r in receptacles}):
        init += [f"(canContain {rt}Type {ot}Type)" for ot in sorted(present) if ot in fits.get(rt, ())]
    goal = goals.gdict[task_type]["pddl"].format(
        obj=task["object"], recep=task["receptacle"], toggle=task["toggle"], mrecep=""
    )
    goal = goal.replace("#", "-")  # the library writes "?r # receptacle"; its own goal already closes (define
    indent = "\n        "
    return (
        f"(define (problem {name})\n(:domain alfred)\n(:objects{indent}{indent.join(decl)}\n)\n"
        f"(:init{indent}{indent.join(init)}\n)\n{goal.strip()}\n"
    )


def task_text(task_type: str, task: dict[str, str], rng: random.Random) -> str:
    """The goal in words, from the goal library's templates ("put a clean mug in coffeemachine")."""
    _, goals, _ = _package()
    template = rng.choice(goals.gdict[task_type]["templates"])
    return template.format(
        obj=task["object"].lower(), recep=task["receptacle"].lower(), toggle=task["toggle"].lower(), mrecep=""
    )


def _plan(game: dict[str, Any]) -> list[str] | None:
    """The planner's command list from the start, or ``None`` when it finds no plan."""
    from agentdistill.envs.alfworld_tw.engine import start_game

    env = start_game(game, policy=True)
    try:
        return list(env.reset().get("policy_commands") or []) or None
    finally:
        env.close()


def draw_game(seed: int, index: int, opts: AlfworldGameOptions) -> dict[str, Any]:
    """Game ``index`` of the set ``seed``: the first attempt whose problem the planner solves in ``MAX_PLAN`` commands.

    Raises:
        ConfigError: no attempt worked (the options leave no valid task).
    """
    _, _, root = _package()
    task_type = opts.task_types[index % len(opts.task_types)]
    scenes = _scene_numbers(opts.split)
    domain = (root.parent / "data" / "alfred.pddl").read_text(encoding="utf-8")
    grammar = (root.parent / "data" / "alfred.twl2").read_text(encoding="utf-8")
    for attempt in range(ATTEMPTS):
        rng = random.Random(hashlib.sha256(f"{seed}:{index}:{attempt}".encode()).hexdigest())
        scene = _scene(rng.choice(scenes), rng)
        task = _draw_task(task_type, scene, rng)
        if task is None:
            continue
        text = task_text(task_type, task, rng)
        game = {
            "pddl_domain": domain,
            "grammar": grammar.replace("UNKNOWN GOAL", text),
            "pddl_problem": _problem(task_type, scene, task, rng, f"agentdistill_{seed}_{index}"),
        }
        plan = _plan(game)
        if plan is None or len(plan) > MAX_PLAN:
            continue
        meta = {"task_type": task_type, "scene": scene.number, "task": text, **task, "seed": seed, "index": index}
        return {**game, "solvable": True, "walkthrough": plan, "agentdistill": meta}
    raise ConfigError(f"no solvable {task_type} game in {ATTEMPTS} draws from the {opts.split} scenes")


def make_alfworld_game(out: Path, seed: int, index: int, opts: AlfworldGameOptions) -> None:
    """Write game ``index`` as ALFWorld lays out a game: ``out/game-NNNN/game.tw-pddl`` and the ``traj_data.json``
    (task type and targets) that ALFWorld's own ``AlfredTWEnv`` and hand-coded expert read; the game file last."""
    from agentdistill.files import atomic_write_json

    game = draw_game(seed, index, opts)
    meta = game["agentdistill"]
    params = {k: meta[k] for k in ("object", "receptacle", "toggle")}
    traj = {
        "task_type": meta["task_type"],
        "pddl_params": {
            "object_target": params["object"],
            "parent_target": params["receptacle"],
            "toggle_target": params["toggle"],
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"floor_plan": f"FloorPlan{meta['scene']}"},
        "turk_annotations": {"anns": [{"task_desc": meta["task"]}]},
    }
    folder = out / f"game-{index:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "traj_data.json", traj)
    atomic_write_json(folder / GAME_FILE, game)
