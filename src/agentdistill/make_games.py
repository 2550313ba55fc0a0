"""``agentdistill make-games``: generate a seeded set of games offline for the real-engine envs.

    agentdistill make-games --env textworld --out games/tw --count 20 --seed 0 --world_size 3 --quest_length 3
    agentdistill collect --env textworld --games games/tw --split train --out tw.jsonl

Game ``i`` is ``game-NNNN`` in ``--out``, made from ``(seed, i)`` alone, so a set is reproducible and a
rerun completes an interrupted one (games already there are kept). Each game is written under a
temporary name and renamed when whole. ``make-games.json``, written last, records the options; a
rerun into the same folder with other options is an error.
"""

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from agentdistill.errors import ConfigError, require_extra
from agentdistill.files import atomic_write_json

MANIFEST = "make-games.json"


def _textworld_game(out: Path, seed: int, index: int, opts: object) -> None:
    from agentdistill.envs.textworld.make import make_textworld_game

    final = out / f"game-{index:04d}.z8"
    tmp = out / f".tmp-game-{index:04d}.z8"
    made = make_textworld_game(tmp, seed, index, opts)
    for suffix in (".ni", ".json", ".z8"):  # the .z8 last: its presence means the game is whole
        src = made.with_suffix(suffix)
        if src.exists():
            src.replace(final.with_suffix(suffix))


def _done(out: Path, env: str, index: int) -> bool:
    if env == "textworld":
        return (out / f"game-{index:04d}.z8").is_file() and (out / f"game-{index:04d}.json").is_file()
    return (out / f"game-{index:04d}" / "game.tw-pddl").is_file()


def make_games(env: str, out: str | Path, count: int, seed: int, options: object) -> list[Path]:
    """Generate games ``0 .. count-1`` of the set ``seed`` into ``out`` (those already there are kept).

    Args:
        env: ``textworld`` or ``alfworld-tw``.
        out: the folder (created).
        count: how many games.
        seed: the set's seed.
        options: ``TextWorldGameOptions`` or ``AlfworldGameOptions``.

    Returns:
        The game files, in order.

    Raises:
        ConfigError: a bad count, or ``out`` holds a set made with other options.
    """
    if count < 1:
        raise ConfigError(f"--count must be >= 1; got {count}")
    # the packages first, so a missing one is an error before any folder is made
    if env == "textworld":
        require_extra("textworld", "textworld", "make-games --env textworld")
    else:
        require_extra("alfworld.gen.constants", "alfworld", "make-games --env alfworld-tw")
        require_extra("fast_downward", "alfworld", "make-games --env alfworld-tw (its planner checks every game)")
    out = Path(out)
    record = {"env": env, "seed": seed, "options": dataclasses.asdict(options)}
    manifest = out / MANIFEST
    if manifest.is_file():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in record} != record:
            raise ConfigError(
                f"{out} holds games made with other options ({manifest}: {json.dumps({k: old.get(k) for k in record})}); "
                "choose another --out or delete it"
            )
    out.mkdir(parents=True, exist_ok=True)
    if env == "textworld":
        make = _textworld_game
    else:
        from agentdistill.envs.alfworld_tw.make import make_alfworld_game

        make = make_alfworld_game
    todo = [i for i in range(count) if not _done(out, env, i)]
    for i in tqdm(todo, desc=f"make-games {env}", unit="game"):
        make(out, seed, i, options)
    made = json.loads(manifest.read_text(encoding="utf-8")).get("count", 0) if manifest.is_file() else 0
    atomic_write_json(manifest, {**record, "count": max(made, count)})
    if env == "textworld":
        return [out / f"game-{i:04d}.z8" for i in range(count)]
    return [out / f"game-{i:04d}" / "game.tw-pddl" for i in range(count)]


def main(argv: Sequence[str]) -> int:
    from agentdistill.envs.alfworld_tw.make import TASK_TYPES, AlfworldGameOptions
    from agentdistill.envs.textworld.make import TextWorldGameOptions

    p = argparse.ArgumentParser(
        prog="agentdistill make-games",
        description="Generate a seeded set of games offline: TextWorld games with TextWorld's generator (needs "
        "agentdistill[textworld]), or ALFWorld games from the alfworld package's layouts, PDDL domain and goal "
        "templates (needs agentdistill[alfworld]). Reruns complete an interrupted set.",
    )
    p.add_argument("--env", choices=["textworld", "alfworld-tw"], default="textworld", help="which games")
    p.add_argument("--out", required=True, help="folder to write the games to")
    p.add_argument("--count", type=int, required=True, help="how many games")
    p.add_argument("--seed", type=int, default=0, help="seed of the set (game i depends on seed and i only)")
    tw = p.add_argument_group("textworld options (tw-make custom's)")
    defaults = TextWorldGameOptions()
    for name in ("world_size", "nb_objects", "quest_length", "quest_min_length"):
        tw.add_argument(
            f"--{name}", type=int, default=getattr(defaults, name), help=f"default {getattr(defaults, name)}"
        )
    tw.add_argument("--theme", default=defaults.theme, help=f"text theme (default {defaults.theme})")
    alf = p.add_argument_group("alfworld-tw options")
    alf.add_argument(
        "--task_types",
        default=",".join(TASK_TYPES),
        help="comma-separated task types, drawn in turn (default: all six)",
    )
    alf.add_argument("--split", choices=["train", "test"], default="train", help="ALFRED's train or test scenes")
    a = p.parse_args(argv)
    if a.env == "textworld":
        opts: object = TextWorldGameOptions(a.world_size, a.nb_objects, a.quest_length, a.quest_min_length, a.theme)
    else:
        opts = AlfworldGameOptions(tuple(t.strip() for t in a.task_types.split(",") if t.strip()), a.split)
    games = make_games(a.env, a.out, a.count, a.seed, opts)
    print(f"{len(games)} game(s) in {a.out}; play them with: agentdistill collect --env {a.env} --games {a.out}")
    return 0
