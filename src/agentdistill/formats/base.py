"""The protocol every trajectory text format implements.

A format knows how one agent transcript looks as text: how a structured trajectory is
linearised (``render``), how a raw transcript is read back (``parse``), where its REASON and ACT
spans are (``spans``), what the model is asked to generate at each turn and where generation
stops (``stop``, ``parse_output``). The agent, the collector and the trainer all go through the
same ``render``, so the text a student is trained on is exactly the text it sees when it acts.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from agentdistill.trajectory import Span, SpanKind, Step


def first_stop(text: str, stop: Sequence[str]) -> int | None:
    """Index of the first occurrence of any stop string in ``text``, or ``None``."""
    return min((i for s in stop if (i := text.find(s)) != -1), default=None)


def join_chunks(prompt: str, chunks: Sequence[tuple[str, SpanKind | None]]) -> tuple[str, list[Span]]:
    """The prompt (ending in a newline), then each ``(text, kind)`` chunk; a chunk with a kind is a span.

    Every format's ``render`` lists its chunks and calls this, so offsets are computed in one place.
    """
    parts = [prompt if prompt.endswith("\n") else prompt + "\n"]
    spans, pos = [], len(parts[0])
    for text, kind in chunks:
        if kind is not None:
            spans.append(Span(kind, pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
    return "".join(parts), spans


class TrajectoryFormat(Protocol):
    name: str
    # Strings at which a model's generation for one turn is cut (the text from the stop on is dropped).
    stop: tuple[str, ...]
    # Whether a thought-only turn is answered "OK." by the harness and waits for its action (ALFWorld,
    # WebShop); otherwise a turn with no action is invalid (ReAct writes thought and action in one turn).
    separate_thinks: bool

    def render(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        """Linearise ``prompt`` + ``steps`` into the transcript text and its spans (chat: with
        ``tokenizer``'s chat template when it has one).

        The last step may be incomplete (a thought with no action yet, no observation yet): the
        text then ends exactly where the model must generate next. ``render(p, s[:k])`` is always
        a prefix of ``render(p, s)`` as long as ``s[k-1]`` is complete.
        """
        ...

    def open_turn(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        """The context a model continues for its next turn: ``render`` plus what the harness writes
        before the model's turn (a chat role header), so the text ends exactly where the model's
        next span starts in the rendered transcript."""
        ...

    def parse(self, text: str) -> tuple[str, list[Step]]:
        """Read a raw transcript back into ``(prompt, steps)``; raises ``TrajectoryError``."""
        ...

    def spans(self, text: str) -> list[Span]:
        """REASON/ACT spans of a raw transcript, as offsets into ``text`` itself."""
        ...

    def detect(self, text: str) -> bool:
        """Whether ``text`` looks like a transcript of this format (used by ``--format auto``)."""
        ...

    def turn_end(self, generated: str) -> int | None:
        """Where the model's turn ends in what it generated so far (``generated[:i]`` is the turn, the
        newline closing its last span excluded), or ``None`` while the turn is unfinished. The agent
        stops generating there: what a model writes after its last span was never supervised."""
        ...

    def parse_output(self, generated: str) -> tuple[str | None, str | None]:
        """Split what the model generated for one turn into ``(thought, action)``.

        ``generated`` starts where ``render`` left off and is already cut at a stop string.
        Either part is ``None`` when absent; both ``None`` means the output is unparseable.
        """
        ...
