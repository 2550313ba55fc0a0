"""Done-markers: a step writes its marker last, so the marker's existence means the step completed and a
rerun skips it (resume).

A marker is a JSON file: ``files``, a fingerprint (size, sha256) of what the step produced, relative to
``root``; ``deps``, what its inputs were; and the step's own info. ``check`` trusts a marker only while
those files are intact and the inputs are the same. Where it lives (both names are kept so that run
directories written by earlier versions resume):

- ``RUN/.markers/<name>.done`` for the many steps of ``agentdistill run`` (``teacher``, ``collect``,
  ``init-…``, ``cell-…``, ``eval-…``);
- ``DIR/.<name>.done`` for a step that owns its whole output directory (``OWN_DIR``: ``distill --out DIR``).
"""

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentdistill.files import atomic_write_json

logger = logging.getLogger(__name__)

OWN_DIR = ("distill",)  # steps whose marker sits beside their outputs, as ``DIR/.<name>.done``
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def marker_path(root: str | Path, name: str) -> Path:
    """The marker file of step ``name`` in ``root``."""
    if name in OWN_DIR:
        return Path(root) / f".{name}.done"
    return Path(root) / ".markers" / f"{name}.done"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(root: Path, paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of the given files."""
    return {str(p.relative_to(root)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(paths)}


def model_files(model_dir: Path) -> list[Path]:
    """The files of a saved model that its marker fingerprints: weights, config and tokenizer."""
    return [p for p in model_dir.iterdir() if p.is_file() and (p.suffix == ".safetensors" or p.name in MODEL_FILES)]


def mark(
    root: str | Path,
    name: str,
    paths: Iterable[Path] = (),
    info: dict[str, Any] | None = None,
    deps: dict[str, Any] | None = None,
) -> None:
    """Write ``name``'s done marker last: a fingerprint of the files it produced and of its inputs (``deps``)."""
    root = Path(root)
    atomic_write_json(marker_path(root, name), {"files": fingerprint(root, paths), "deps": deps or {}, **(info or {})})


def is_done(root: str | Path, name: str) -> bool:
    """Whether ``name`` wrote a readable marker (without checking its files: ``check`` does). A corrupt
    marker (empty, random bytes, not a JSON object) is not done."""
    return read(root, name) is not None


def read(root: str | Path, name: str) -> dict[str, Any] | None:
    """The marker's contents, or ``None`` when there is none or it is corrupt: empty, not UTF-8 JSON, not
    an object, unreadable (a directory) — a corrupt marker counts as not done wherever it is read."""
    path = marker_path(root, name)
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, OSError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return info if isinstance(info, dict) else None


def _intact(root: Path, fp: Any, rel: str) -> bool:
    """Whether the file ``rel`` still has the fingerprint ``fp`` (a malformed fingerprint is not intact)."""
    p = root / rel
    if not isinstance(fp, dict) or not p.is_file():
        return False
    try:
        return p.stat().st_size == fp.get("size") and _sha256(p) == fp.get("sha256")
    except OSError:
        return False


def _remove(path: Path) -> None:
    """Remove a marker (whatever is at its name: a directory made by hand too), so the step is redone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def digest(root: str | Path, name: str) -> str | None:
    """One hash standing for the outputs of a finished step (its marker's fingerprint), for ``deps``."""
    info = read(root, name)
    if info is None or not isinstance(info.get("files"), dict):
        return None
    return hashlib.sha256(json.dumps(info["files"], sort_keys=True).encode()).hexdigest()


def check(root: str | Path, name: str, deps: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The marker's info when ``name`` is done, every file it produced is intact and its inputs are the
    same (``deps``), else ``None``.

    A marker whose files are missing or changed, or whose inputs changed, is removed (with a warning)
    so the work is redone.
    """
    root, path = Path(root), marker_path(root, name)
    if not path.exists() and not path.is_symlink():
        return None
    info = read(root, name)
    if info is None or not isinstance(info.get("files"), dict):
        logger.warning("%s: unreadable marker; redoing %s", path, name)
        _remove(path)
        return None
    if deps is not None and info.get("deps", {}) != deps:
        logger.warning("%s: the inputs of %s changed since it ran; redoing it", root, name)
        _remove(path)
        return None
    for rel, fp in info["files"].items():
        if not _intact(root, fp, rel):
            logger.warning("%s: output %s is missing or changed since it was written; redoing %s", root, rel, name)
            _remove(path)
            return None
    return info


def unmark(root: str | Path, prefix: str) -> None:
    """Remove the run markers whose name starts with ``prefix`` (``cell`` removes every ``cell-…``)."""
    for p in (Path(root) / ".markers").glob(f"{prefix}*.done"):
        _remove(p)
