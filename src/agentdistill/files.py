"""Atomic file writes, JSONL append/read/repair and output locks, so every output can be resumed.

A file is written to a temporary name in the same directory and renamed into place, so a reader
never sees half a file. A JSONL file is appended one fsynced line at a time; a line torn by a
crash is cut before the next append. A stage's done-marker (``markers.py``) is written last.
"""

import json
import logging
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from agentdistill.errors import ConfigError

logger = logging.getLogger(__name__)

_UMASK = os.umask(0)  # read once: mkstemp creates 0600 files, outputs get the usual 0666 & ~umask
os.umask(_UMASK)
_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(_MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` for writers that take a file name (``safetensors.save_file``);
    fsynced and renamed onto ``path`` when the block succeeds, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        Path(tmp).chmod(_MODE)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one complete line and fsync it, so a crash loses at most the line being written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def repair_jsonl_tail(path: str | Path) -> bool:
    """End ``path`` with a newline before appending to it; returns whether a partial line was cut.

    A crash mid-append leaves a partial last line with no newline; the next append would be glued
    onto it and that record lost too. A partial line is cut (its record is redone by the caller); a
    complete record that only lacks its newline (a hand-edited file) gets one.
    """
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
    except ValueError:
        logger.warning("%s: dropping a partial last line left by an interrupted write", path)
        with path.open("r+b") as f:
            f.truncate(cut)
            os.fsync(f.fileno())
        return True
    with path.open("ab") as f:
        f.write(b"\n")
    return False


@contextmanager
def exclusive_lock(path: str | Path, what: str) -> Iterator[None]:
    """Hold an OS advisory lock (``flock``) on ``<path>.lock`` for the block, or fail at once if another process does.

    The kernel drops the lock when the holder exits however it exits, so a killed process never
    leaves a stale lock behind. The lock file itself stays: removing it would let two processes
    lock two different files of the same name.

    Raises:
        ConfigError: another process holds the lock; ``what`` names the command, e.g. ``"collect"``.
    """
    import fcntl

    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{path} is being written by another `{what}` process (it holds {lock}); "
                "wait for it to finish or choose another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_jsonl_tolerant(path: str | Path) -> list[dict[str, Any]]:
    """Read the complete lines of a JSONL file that may end in a torn (partial) last line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-append; it is rerun
    return rows


def merge_jsonl(files: list[Path], out: Path, seed: int, keep: Callable[[dict], bool] | None = None) -> int:
    """Concatenate JSONL files into ``out`` (atomically), in a seeded shuffled order; ``keep(row) -> bool``
    filters the rows. Returns the number of rows written."""
    rows = [r for f in files for r in read_jsonl_tolerant(f) if keep is None or keep(r)]
    random.Random(seed).shuffle(rows)
    atomic_write_jsonl(out, rows)
    return len(rows)


def drop_if_corrupt(path: Path) -> None:
    """A resumable JSONL output whose lines before the last do not parse was damaged, not interrupted:
    delete it (and its ``.attempted`` sidecar) so it is redone rather than silently read around."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines[:-1], 1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d is corrupted (not an interrupted write); redoing this file", path, i)
            path.unlink()
            path.with_name(path.name + ".attempted").unlink(missing_ok=True)
            return


def check_output_path(path: str | Path, flag: str = "--out", kind: str = "file") -> None:
    """Raise ``ConfigError`` when an output cannot be written at ``path``, before any work is done.

    Args:
        path: the file or directory a command will write.
        flag: the option that named it, for the message.
        kind: ``file`` or ``dir``: what the command writes at ``path``.

    Raises:
        ConfigError: ``path`` lies under an existing file, or is a directory where a file goes
            (or a file where a directory goes).
    """
    from agentdistill.errors import ConfigError

    p = Path(path)
    for parent in reversed(p.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(
                f"{flag} {path} is under {parent}, which is a file, not a directory; choose another {flag}"
            )
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {path} is an existing file; it must be a directory: choose another {flag}")
    if kind == "file" and p.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; it must be a file name, e.g. {p / 'out.jsonl'}")
