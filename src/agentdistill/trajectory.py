"""The trajectory data model (schema 1), typed character spans, and JSONL read/write with validation.

Three record shapes are accepted, one JSON object per line:

- structured: ``{"schema": 1, "id", "env", "task", "prompt", "steps": [{"thought", "action",
  "observation"}], "success", "reward", "meta"}``;
- raw transcript: ``{"id", "format": "react|alfworld|webshop|auto", "text"}``;
- chat: ``{"id", "format": "chat", "messages": [...]}`` (OpenAI-style messages).

Files must be UTF-8 (a byte order mark is accepted); every error about a record names its file and
line, and a record read from a file remembers its line (``source_line``) for later errors.
"""

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from agentdistill.errors import TrajectoryError

SCHEMA_VERSION = 1

# Which text format renders a structured trajectory of a given env (DESIGN §4).
ENV_FORMATS = {"alfworld": "alfworld", "webshop": "webshop", "hotpotqa": "react", "fever": "react"}


class SpanKind(str, Enum):
    """The two supervised kinds of text; context is the absence of a span."""

    REASON = "reason"
    ACT = "act"


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` (Python string indices) is a REASON or ACT span."""

    kind: SpanKind
    start: int
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind.value, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Step:
    """One ReAct step. ``thought`` or ``action`` may be missing (plain acting, a trailing thought)."""

    thought: str | None = None
    action: str | None = None
    observation: str = ""


@dataclass
class Trajectory:
    """A structured trajectory: the prompt the agent saw, then its steps."""

    id: str
    env: str
    task: str
    prompt: str
    steps: list[Step]
    success: bool | None = None
    reward: float | None = None
    task_type: str | None = None
    format: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text_format(self) -> str:
        """The text format this trajectory is rendered in (its own, else its env's, else react)."""
        return self.format or ENV_FORMATS.get(self.env, "react")

    def to_json(self) -> dict[str, Any]:
        d = {"schema": SCHEMA_VERSION, **asdict(self)}
        d["steps"] = [asdict(s) for s in self.steps]
        if d["format"] is None:
            del d["format"]
        if d["task_type"] is None:
            del d["task_type"]
        return d


@dataclass
class RawTranscript:
    """A transcript as the harness wrote it; segmented by its format's parser."""

    id: str
    text: str
    format: str = "auto"


@dataclass
class ChatTranscript:
    """OpenAI-style messages: assistant content is REASON, tool_calls are ACT, the rest context."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    format: str = "chat"


Record = Trajectory | RawTranscript | ChatTranscript


def _require(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise TrajectoryError(f"{where}missing field `{key}`")
    if not isinstance(d[key], typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise TrajectoryError(f"{where}field `{key}` must be {names}, got {type(d[key]).__name__}")
    return d[key]


def record_from_json(d: Any, index: int = 0) -> Record:
    """Validate one decoded JSON object and build the matching record.

    Raises:
        TrajectoryError: naming the field that is missing or has the wrong type.
    """
    if not isinstance(d, dict):
        raise TrajectoryError(f"expected a JSON object, got {type(d).__name__}")
    rid = str(d.get("id", f"record-{index}"))
    if "messages" in d:
        msgs = _require(d, "messages", list, "")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or "role" not in m:
                raise TrajectoryError(f"messages[{i}] must be an object with a `role`")
        return ChatTranscript(id=rid, messages=msgs, tools=d.get("tools"), format=str(d.get("format", "chat")))
    if "text" in d and "steps" not in d:
        text = _require(d, "text", str, "")
        return RawTranscript(id=rid, text=text, format=str(d.get("format", "auto")))
    if "steps" not in d:
        raise TrajectoryError("record has none of `steps` (structured), `text` (raw transcript) or `messages` (chat)")
    schema = d.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise TrajectoryError(f"unsupported schema {schema!r}; this version reads schema {SCHEMA_VERSION}")
    steps = []
    for i, s in enumerate(_require(d, "steps", list, "")):
        if not isinstance(s, dict):
            raise TrajectoryError(f"steps[{i}] must be an object, got {type(s).__name__}")
        for key in ("thought", "action", "observation"):
            if s.get(key) is not None and not isinstance(s[key], str):
                raise TrajectoryError(f"steps[{i}].{key} must be a string or null")
        steps.append(Step(thought=s.get("thought"), action=s.get("action"), observation=s.get("observation") or ""))
    return Trajectory(
        id=rid,
        env=str(d.get("env", "")),
        task=str(d.get("task", "")),
        prompt=_require(d, "prompt", str, ""),
        steps=steps,
        success=d.get("success"),
        reward=d.get("reward"),
        task_type=d.get("task_type"),
        format=d.get("format"),
        meta=d.get("meta") or {},
    )


def record_to_json(rec: Record) -> dict[str, Any]:
    if isinstance(rec, Trajectory):
        return rec.to_json()
    return {k: v for k, v in asdict(rec).items() if v is not None}


@dataclass
class BadRecord:
    path: str
    line: int
    error: str


def source_line(rec: Record) -> int | None:
    """The 1-based line of the JSONL file ``rec`` was read from, or ``None`` for a record built in code."""
    return getattr(rec, "_source_line", None)


def _decode(raw: bytes, lineno: int) -> str:
    """One line of a JSONL file as text; a UTF-8 byte order mark on line 1 is dropped.

    Raises:
        TrajectoryError: the line is not UTF-8 (UTF-16, Latin-1, a binary file), without the file.
    """
    if lineno == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TrajectoryError("the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8 JSONL")
    if b"\x00" in raw:
        raise TrajectoryError("NUL bytes: the file is UTF-16 or binary, not text; save it as UTF-8 JSONL")
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        raise TrajectoryError(
            f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); save the file as UTF-8 JSONL"
        ) from None


def iter_numbered_records(
    path: str | Path, skip_bad: bool = False, bad: list[BadRecord] | None = None, fix: str = "pass --skip_bad"
) -> Iterator[tuple[int, Record]]:
    """Yield ``(line, record)`` for each record of a JSONL file (see ``iter_records``); ``fix``: what the
    message of a malformed line offers besides fixing it."""
    path = Path(path)
    if not path.exists():
        raise TrajectoryError("file not found; check the path", path)
    if not path.is_file():
        raise TrajectoryError("is not a file (a directory or a device); pass a JSONL file", path)
    n = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:  # a file in another encoding is wrong as a whole: never skipped line by line
                line = _decode(raw, lineno)
            except TrajectoryError as e:
                raise TrajectoryError(e.msg, path, lineno) from None
            try:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TrajectoryError(f"invalid JSON ({e.msg} at column {e.colno})") from None
                rec = record_from_json(obj, lineno)
            except TrajectoryError as e:
                if not skip_bad:
                    raise TrajectoryError(
                        f"{e.msg}; fix the line{' or ' + fix if fix else ''}", path, lineno
                    ) from None
                if bad is not None:
                    bad.append(BadRecord(str(path), lineno, e.msg))
                continue
            object.__setattr__(rec, "_source_line", lineno)  # not a field: never written back to JSON
            n += 1
            yield lineno, rec
    if n == 0 and not (bad and skip_bad):
        raise TrajectoryError("no records in file; expected one JSON object per line", path)


def iter_records(path: str | Path, skip_bad: bool = False, bad: list[BadRecord] | None = None) -> Iterator[Record]:
    """Yield the records of a JSONL file.

    Args:
        path: the file.
        skip_bad: skip malformed lines (appending them to ``bad``) instead of raising.
        bad: collects the skipped lines when ``skip_bad``.

    Raises:
        TrajectoryError: for a missing or empty file, a line that is not UTF-8, or a malformed line
            when not ``skip_bad``; naming the file and line.
    """
    for _, rec in iter_numbered_records(path, skip_bad, bad):
        yield rec


def read_records(path: str | Path, skip_bad: bool = False) -> tuple[list[Record], list[BadRecord]]:
    bad: list[BadRecord] = []
    return list(iter_records(path, skip_bad=skip_bad, bad=bad)), bad


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Read a file that must hold structured trajectories only (e.g. the output of ``collect``)."""
    out = []
    for lineno, rec in iter_numbered_records(path, fix=""):  # every line must read: nothing is skipped here
        if not isinstance(rec, Trajectory):
            raise TrajectoryError(f"record {rec.id!r} is not a structured trajectory (needs `steps`)", path, lineno)
        out.append(rec)
    return out
