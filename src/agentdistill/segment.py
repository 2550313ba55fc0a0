"""Any trajectory record -> its text and typed character spans (REASON, ACT; the rest is context).

    seg = segment(record, fmt="auto")
    build_masks(seg.text, seg.spans, tokenizer)

Which format a record is read in: a raw transcript's own ``format`` wins unless it is ``auto``
(then ``fmt``; if that is ``auto`` too, the text is detected); a structured trajectory renders
in its own ``format`` if set, else ``fmt`` unless ``auto``, else its env's format; chat messages
always use the chat format, with ``tokenizer``'s chat template when it has one.
"""

from dataclasses import dataclass
from typing import Any

from agentdistill.errors import TrajectoryError
from agentdistill.formats import detect_format, get_format
from agentdistill.formats.chat import render_messages
from agentdistill.trajectory import ChatTranscript, RawTranscript, Record, Span, SpanKind, Trajectory, source_line

__all__ = ["Segmented", "Span", "SpanKind", "segment"]


@dataclass(frozen=True)
class Segmented:
    """A record as text with its sorted, non-overlapping REASON/ACT spans."""

    id: str
    format: str
    text: str
    spans: list[Span]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "format": self.format, "text": self.text, "spans": [s.to_json() for s in self.spans]}


def segment(record: Record, fmt: str = "auto", tokenizer: Any = None) -> Segmented:
    """Render or parse ``record`` into text and spans.

    Args:
        record: a ``Trajectory``, ``RawTranscript`` or ``ChatTranscript``.
        fmt: the ``--format`` flag: a format name or ``auto``.
        tokenizer: renders chat records (and chat-format trajectories) with its ``chat_template``.

    Returns:
        ``Segmented``; for a raw transcript the text is normalised (``\\r\\n`` -> ``\\n``).

    Raises:
        ConfigError: for an unknown format name.
        TrajectoryError: for a malformed record, an undetectable one, or one with no span; naming
            the record's line when it was read from a file.
    """
    try:
        return _segment(record, fmt, tokenizer)
    except TrajectoryError as e:
        line = source_line(record)
        if line is None:
            raise
        at = f"record {record.id!r}"
        msg = e.msg.replace(at, f"{at} on line {line}", 1) if e.msg.startswith(at) else f"{at} on line {line}: {e.msg}"
        raise TrajectoryError(msg, e.path, e.line) from None


def _segment(record: Record, fmt: str, tokenizer: Any) -> Segmented:
    if isinstance(record, ChatTranscript):
        name = "chat"
        text, spans = render_messages(record.messages, tokenizer, record.tools)
    elif isinstance(record, RawTranscript):
        # Offsets refer to the returned text, so the normalisation happens before parsing.
        text = record.text.replace("\r\n", "\n")
        name = record.format if record.format != "auto" else fmt
        name = detect_format(text) if name == "auto" else name
        spans = get_format(name).spans(text)
    elif isinstance(record, Trajectory):
        name = record.format or (fmt if fmt != "auto" else record.text_format)
        text, spans = get_format(name).render(record.prompt, record.steps, tokenizer)
    else:
        raise TypeError(f"segment() takes a Trajectory, RawTranscript or ChatTranscript, got {type(record).__name__}")
    if not spans:
        expected = getattr(get_format(name), "expected", "reasoning or action lines")
        raise TrajectoryError(f"record {record.id!r} has no reason or act span; expected {expected} (format {name!r})")
    return Segmented(id=record.id, format=name, text=text, spans=spans)
