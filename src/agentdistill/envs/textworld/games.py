"""Game files on disk as task ids and splits, for the envs that play TextWorld-engine games.

    games = find_games("games/", ("*.z8",), seed=0, env="textworld")
    games.split_ids["test"], games.path(task_id)

A task id is the game's path under the folder ``--games`` names (the common folder of what it names),
without its suffix: ``game-0003``, or ``json_2.1.1/valid_unseen/pick_and_place_simple-Mug-None-Desk-308/
trial_T20190908_...`` for ALFWorld's ``game.tw-pddl`` files under ``$ALFWORLD_DATA`` (their fixed file name
is dropped). Splits:

- **by folder**: a game under a folder named ``train``, ``dev`` (or ``valid``, ``valid_seen``) or
  ``test`` (or ``valid_unseen``) is in that split (the folder ``--games`` names counts, so
  ``--games DATA/json_2.1.1/valid_unseen`` is all ``test``). ALFWorld's data is laid out this way, so its
  ``valid_unseen`` games (the 134-game ``eval_out_of_distribution`` split of the ReAct evaluation) are
  ``test`` and its ``valid_seen`` games ``dev``. Games outside such folders are in ``all`` only.
- **by hash** otherwise: the games are ordered by ``sha256(f"{seed}:{task_id}")``; the first
  ``ceil(n / 10)`` are ``test``, the next ``ceil(n / 10)`` ``dev``, the rest ``train`` (a set of 1 or 2
  games is all ``test``). The split depends only on the names and the seed, never on the order the
  files are found in; adding games can move others, so keep fixed splits in folders.

``all`` lists every game, sorted by id.
"""

import glob
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentdistill.errors import ConfigError

SPLITS = ("train", "dev", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "dev": "dev",
    "valid": "dev",
    "valid_seen": "dev",
    "test": "test",
    "valid_unseen": "test",
}


@dataclass(frozen=True)
class GameSet:
    """The games found: task id -> file, and the ordered task ids of each split (and ``all``)."""

    root: Path
    files: dict[str, Path]
    split_ids: dict[str, tuple[str, ...]]

    def path(self, task_id: str, env: str) -> Path:
        """The game file of ``task_id``; raises ``ConfigError`` for an id not in the set."""
        if task_id not in self.files:
            example = next(iter(self.files), "?")
            raise ConfigError(
                f"unknown {env} task id {task_id!r} (games under {self.root}); ids look like {example!r}"
            )
        return self.files[task_id]

    def ids(self, split: str, env: str) -> list[str]:
        """Ordered ids of ``split``; raises ``ConfigError`` for an unknown split."""
        if split not in self.split_ids:
            raise ConfigError(f"unknown {env} split {split!r}; choose one of {', '.join(self.split_ids)}")
        return list(self.split_ids[split])


def _task_id(rel: Path, fixed_name: str | None) -> str:
    if fixed_name is not None and rel.name == fixed_name and len(rel.parts) > 1:
        return rel.parent.as_posix()
    return rel.with_suffix("").as_posix()


def _folder_split(root: Path, task_id: str) -> str | None:
    for part in [root.name, *task_id.split("/")[:-1]]:
        if part in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part]
    return None


def _hash_splits(ids: list[str], seed: int) -> dict[str, list[str]]:
    ranked = sorted(ids, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    if len(ranked) < 3:
        return {"train": [], "dev": [], "test": sorted(ranked)}
    k = math.ceil(len(ranked) / 10)
    return {"train": sorted(ranked[2 * k :]), "dev": sorted(ranked[k : 2 * k]), "test": sorted(ranked[:k])}


def expand(spec: str) -> list[Path]:
    """The files or folders ``spec`` names: a path, a glob, or several of them separated by commas."""
    found: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        part = str(Path(part).expanduser())
        # glob.glob, not Path.glob: the pattern may be absolute and have wildcards in any part
        matches = sorted(glob.glob(part, recursive=True))  # noqa: PTH207
        found += [Path(p) for p in matches] if glob.has_magic(part) else [Path(part)]
    return found


def find_games(
    spec: str,
    patterns: tuple[str, ...],
    seed: int,
    env: str,
    fixed_name: str | None = None,
    how_to_get: str = "",
    keep: Callable[[Path], bool] | None = None,
) -> GameSet:
    """The games that ``spec`` (a folder searched recursively, a file, a glob or a comma-separated list of them)
    names, split as the module docstring says.

    Args:
        spec: where the games are.
        patterns: file name patterns of a game, e.g. ``("*.z8",)``.
        seed: seed of the hash split.
        env: the env's name, for messages.
        fixed_name: a file name every game shares (ALFWorld's ``game.tw-pddl``), dropped from the ids.
        how_to_get: appended to the "no games" message, e.g. how to generate some.
        keep: a filter on the game files (ALFWorld leaves out some of its games).

    Raises:
        ConfigError: nothing exists at ``spec``, or no game file is there.
    """
    files: list[Path] = []
    named = expand(spec)
    for path in named:
        if path.is_dir():
            files += [p for pat in patterns for p in path.rglob(pat) if p.is_file()]
        elif path.is_file() and any(path.match(pat) for pat in patterns):
            files.append(path)
        elif not path.exists():
            raise ConfigError(f"{env}: --games {spec!r}: {path} does not exist{how_to_get}")
    files = sorted({p.resolve() for p in files if keep is None or keep(p)})
    if not files:
        raise ConfigError(f"{env}: no game ({', '.join(patterns)}) found in --games {spec!r}{how_to_get}")
    # ids are relative to the folders the user named (a file counts as its folder)
    root = Path(os.path.commonpath([p.resolve() if p.is_dir() else p.resolve().parent for p in named if p.exists()]))
    by_id = {_task_id(p.relative_to(root), fixed_name): p for p in files}
    if len(by_id) != len(files):
        raise ConfigError(f"{env}: two games under {root} share a name apart from their suffix; rename one")
    ids = sorted(by_id)
    folders = {t: _folder_split(root, t) for t in ids}
    if any(folders.values()):
        splits = {s: [t for t in ids if folders[t] == s] for s in SPLITS}
    else:
        splits = _hash_splits(ids, seed)
    return GameSet(root, by_id, {**{s: tuple(v) for s, v in splits.items()}, "all": tuple(ids)})
