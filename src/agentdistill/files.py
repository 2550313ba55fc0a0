"""Atomic file writes, JSONL append/read/repair and output locks, so every output can be resumed.

A file is written to a temporary name in the same directory and renamed into place, so a reader
never sees half a file. A JSONL file is appended one fsynced line at a time; a line torn by a
crash is cut before the next append. A stage's done-marker (``markers.py``) is written last.
"""

import errno
import json
import logging
import os
import random
import re
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


# The temporary sibling of an atomic write: ``.<name>.<8 random characters of mkstemp>.tmp``.
_TEMP_PREFIX, _TEMP_SUFFIX = ".{name}.", ".tmp"
_STALE_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _mkstemp_beside(path: Path) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=_TEMP_PREFIX.format(name=path.name), suffix=_TEMP_SUFFIX, dir=path.parent)


def remove_stale_temps(root: str | Path) -> list[Path]:
    """Delete the temporary files that atomic writes (``atomic_open``, ``atomic_path``) left under ``root``
    when they were killed; returns them. Only files named exactly as those writers name them are
    touched, only inside ``root`` (links are not followed). Call it while holding ``root``'s lock, when
    no writer of this process runs: a live atomic write's temporary file has the same name.
    """
    removed = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            p = Path(folder) / name
            if _STALE_TEMP.match(name) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        logger.info("%s: removed %d temporary file(s) left by an interrupted write", root, len(removed))
    return removed


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(path)
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
    fd, name = _mkstemp_beside(path)
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
    """The JSON objects on the lines of a JSONL file, reading around what does not parse: a torn
    (partial) last line, a line that is not UTF-8 or not JSON, a line that is not an object.

    For files this program wrote and only reads back (reports, merges). A file a command appends to
    and resumes from is checked first with ``read_resumable_jsonl``, which refuses a foreign file.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-append; it is rerun
        if isinstance(row, dict):
            rows.append(row)
    return rows


def jsonl_problem(data: bytes, keys: tuple[str, ...] = ()) -> tuple[int, str] | None:
    """``(line, what is wrong)`` for the first line of ``data`` that is not a UTF-8 JSON object (with each
    of ``keys``), else ``None``.

    Blank lines are allowed. So is a last line without a newline that starts with ``{`` and does not
    parse: a line torn by a kill mid-append (``repair_jsonl_tail`` cuts it).
    """
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        last = n == len(lines)  # no newline after it
        try:
            row = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            if last and raw.lstrip().startswith(b"{"):
                return None  # torn inside a multi-byte character
            return n, "is not UTF-8 text"
        except json.JSONDecodeError:
            if last and raw.lstrip().startswith(b"{"):
                return None
            return n, "is not JSON"
        if not isinstance(row, dict):
            return n, f"is a JSON {_json_type(row)}, not an object"
        missing = [k for k in keys if k not in row]
        if missing:
            return n, f"has no `{missing[0]}`"
    return None


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def read_resumable_jsonl(
    path: str | Path,
    what: str,
    name: str | None = None,
    fix: str = "choose another --out or move the file away",
    keys: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The rows of a JSONL output that a command appends to and resumes from (``collect --out``), checked
    before anything is appended: every complete line must be a JSON object. A torn last line (a kill
    mid-append) is tolerated and left out. A missing file has no rows.

    Args:
        path: the file.
        what: what the file must be, for the message, e.g. ``"a trajectory file (JSONL of objects)"``.
        name: how the message names the file (default ``--out PATH``).
        fix: what the user can do, for the message.
        keys: what every object must have.

    Raises:
        ConfigError: the file is something else (binary, text, JSON that is not one object a line), so
            appending to it would corrupt it; naming its first bad line.
    """
    path = Path(path)
    name = name or f"--out {path}"
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{name}: cannot read it ({e.strerror}); {fix}") from None
    bad = jsonl_problem(data, keys)
    if bad is not None:
        raise ConfigError(f"{name} is not {what}: line {bad[0]} {bad[1]}; {fix}")
    rows = []
    for raw in data.split(b"\n"):
        try:
            rows.append(json.loads(raw.decode("utf-8-sig")))
        except ValueError:
            continue  # blank, or the torn last line
    return rows


def merge_jsonl(files: list[Path], out: Path, seed: int, keep: Callable[[dict], bool] | None = None) -> int:
    """Concatenate JSONL files into ``out`` (atomically), in a seeded shuffled order; ``keep(row) -> bool``
    filters the rows. Returns the number of rows written."""
    rows = [r for f in files for r in read_jsonl_tolerant(f) if keep is None or keep(r)]
    random.Random(seed).shuffle(rows)
    atomic_write_jsonl(out, rows)
    return len(rows)


def drop_if_corrupt(path: Path, keys: tuple[str, ...] = ()) -> None:
    """A resumable JSONL output with a line that is not a JSON object (with ``keys``), other than a torn
    last line, was damaged, not interrupted: delete it (and its ``.attempted`` sidecar) so it is redone
    rather than silently read around or refused (``read_resumable_jsonl``)."""
    if not path.is_file():
        return
    bad = jsonl_problem(path.read_bytes(), keys)
    if bad is not None:
        logger.warning("%s:%d is corrupted: it %s (damaged, not interrupted); redoing this file", path, *bad)
        path.unlink()
        path.with_name(path.name + ".attempted").unlink(missing_ok=True)


def check_output_path(path: str | Path, flag: str = "--out", kind: str = "file") -> None:
    """Raise ``ConfigError`` when an output cannot be written at ``path``, before any work is done.

    Args:
        path: the file or directory a command will write.
        flag: the option that named it, for the message.
        kind: ``file`` or ``dir``: what the command writes at ``path``. A ``dir`` that exists is
            accepted (a rerun reuses it: ``run --out``, ``distill --out``, ``prune --out``).

    Raises:
        ConfigError: ``path`` is empty, lies under an existing file, is a directory where a file goes
            (or a file where a directory goes), or the directory it would be written in does not
            take new files (a read-only file system, no permission, ``/proc``).
    """
    if not str(path).strip():
        example = "out.jsonl" if kind == "file" else "runs/NAME"
        raise ConfigError(f"{flag} is empty; give a {'file' if kind == 'file' else 'directory'} name, e.g. {example}")
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
    # Where the first file will be created: inside an existing output directory, else in the nearest
    # existing ancestor (the missing ones are created there). An atomic write creates a temporary file
    # beside its target, so that is what is tried (and removed); os.access alone misses /proc and more.
    where = p if p.is_dir() else next((a for a in p.absolute().parents if a.exists()), Path("/"))
    if kind == "file" and p.is_file() and _unwritable(p):  # appended to in place (collect)
        raise ConfigError(f"{flag} {path}: cannot write it ({_unwritable(p)}); choose another {flag}")
    reason = _unwritable(where)
    if reason is None:
        try:
            fd, probe = tempfile.mkstemp(prefix=".agentdistill-write-check.", suffix=_TEMP_SUFFIX, dir=where)
        except OSError as e:  # /proc: ENOENT in a directory that exists
            reason = "it takes no new files" if e.errno == errno.ENOENT else (e.strerror or str(e)).lower()
        else:
            os.close(fd)
            Path(probe).unlink()
    if reason is not None:
        raise ConfigError(f"{flag} {path}: cannot create files in {where} ({reason}); choose another {flag}")


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (read-only file system, permission denied), or ``None`` if it can."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except (OSError, AttributeError):
        pass
    return None if os.access(path, os.W_OK) else "permission denied"


def check_not_input(out: str | Path, *inputs: str | Path | None, flag: str = "--out") -> None:
    """Raise ``ConfigError`` when the output ``out`` is one of the command's ``inputs`` (the same file or
    directory, however it is spelled: a link, ``./``, an absolute path), so a command never overwrites
    what it reads. ``None`` inputs (an option not given) are skipped.

    Raises:
        ConfigError: naming the input and asking for another ``flag``.
    """
    if not str(out).strip():
        return  # check_output_path reports an empty path
    o = Path(out).resolve()
    for inp in inputs:
        if inp is None or not str(inp).strip():
            continue
        i = Path(inp).resolve()
        if o == i or (o.exists() and i.exists() and o.samefile(i)):
            raise ConfigError(f"{flag} {out} is the input {inp}; it would be overwritten: choose another {flag}")
