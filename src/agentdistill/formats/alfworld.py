"""The ALFWorld text format, as the ReAct harness writes it (Yao et al., 2023).

A sample: the prompt ends with the task line, then every command the model writes is a line
starting with ``>``; ``> think: ...`` is answered ``OK.`` by the harness, any other command is
answered by the environment's observation (all lines up to the next ``>``)::

    You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1,
    a drawer 1, a fridge 1, a sinkbasin 1, and a coffeemachine 1.
    Your task is to: put a clean mug in coffeemachine.
    > think: To solve the task, I need to find and take a mug, then clean it with sinkbasin.
    OK.
    > go to countertop 1
    On the countertop 1, you see a mug 1, and a apple 2.
    > take mug 1 from countertop 1
    You pick up the mug 1 from the countertop 1.

Spans: a ``> think:`` line is REASON and any other ``>`` line is ACT, each from the ``>`` to its
newline included (trailing spaces inside; ``>go to x`` without the space is accepted). ``OK.``
and observations are context. Few-shot examples in the prompt are context: the agent's steps
start at the first ``>`` line after the last ``Your task is to:`` line.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentdistill.errors import TrajectoryError
from agentdistill.formats.base import first_stop, join_chunks
from agentdistill.trajectory import Span, SpanKind, Step

_THINK = re.compile(r"think[ \t]*:[ \t]?", re.IGNORECASE)
_DETECT = re.compile(r"^>[ \t]*\S", re.MULTILINE)
_TASK = "Your task is to:"


@dataclass(frozen=True)
class _Item:
    think: bool
    start: int  # the ">"
    body: int  # first character of the thought / command
    line_end: int  # end of the command line, newline included
    end: int  # start of the next ">" line (or the end of the text)
    line: int  # 1-based line number


def _items(text: str) -> list[_Item]:
    """The agent's command lines: every ``>`` line after the last task line."""
    found, pos, lineno = [], 0, 1
    while pos < len(text):
        nl = text.find("\n", pos)
        line_end = len(text) if nl == -1 else nl + 1
        if text.startswith(">", pos):
            body = pos + 1
            while body < line_end and text[body] in " \t":
                body += 1
            think = _THINK.match(text, body, line_end)
            found.append((think is not None, pos, think.end() if think else body, line_end, lineno))
        elif text[pos:line_end].lstrip().startswith(_TASK):
            found = []  # a new task: everything before it (few-shot examples) is prompt
        pos, lineno = line_end, lineno + 1
    ends = [f[1] for f in found[1:]] + [len(text)] * bool(found)
    return [_Item(t, s, b, le, e, ln) for (t, s, b, le, ln), e in zip(found, ends, strict=True)]


def _reply(text: str, it: _Item) -> str:
    reply = text[it.line_end : it.end]
    return reply[:-1] if reply.endswith("\n") else reply


class AlfWorldFormat:
    """``> think: ...`` / ``> command`` lines, one generated line per turn (ALFWorld)."""

    name = "alfworld"
    separate_thinks = True  # a thought-only turn is answered "OK." and waits for its action
    stop = ("\n",)
    expected = "lines `> think: ...` / `> go to ...` after the `Your task is to:` line"

    def open_turn(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        return self.render(prompt, steps)  # the model writes its whole turn, markers included

    def render(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        chunks: list[tuple[str, SpanKind | None]] = []
        for step in steps:
            if step.thought is not None:
                chunks.append((f"> think: {step.thought}\n", SpanKind.REASON))
                # the harness answers a thought "OK."; a thought-only step may carry its own reply
                reply = "OK." if step.action is not None or not step.observation else step.observation
                chunks.append((reply + "\n", None))
            if step.action is not None:
                chunks += [(f"> {step.action}\n", SpanKind.ACT), (f"{step.observation}\n", None)]
            elif step.thought is None and step.observation:
                chunks.append((f"{step.observation}\n", None))  # neither thought nor action: context only
        return join_chunks(prompt, chunks)

    def spans(self, text: str) -> list[Span]:
        return [Span(SpanKind.REASON if it.think else SpanKind.ACT, it.start, it.line_end) for it in _items(text)]

    def parse(self, text: str) -> tuple[str, list[Step]]:
        text = text.replace("\r\n", "\n")
        items = _items(text)
        prompt = text[: items[0].start] if items else text
        steps: list[Step] = []
        pending: str | None = None  # a thought answered "OK.", waiting for its action
        for it in items:
            content = text[it.body : it.line_end].strip()
            if not content:
                what = "`> think:` has no thought" if it.think else "`>` has no command"
                raise TrajectoryError(f"line {it.line}: {what}; expected `> think: <reasoning>` or `> go to desk 1`")
            reply = _reply(text, it)
            if it.think:
                if pending is not None:
                    steps.append(Step(thought=pending))
                pending = None
                if reply.strip() in ("", "OK."):
                    pending = content
                else:
                    steps.append(Step(thought=content, observation=reply))
            else:
                steps.append(Step(thought=pending, action=content, observation=reply))
                pending = None
        if pending is not None:
            steps.append(Step(thought=pending))
        return prompt, steps

    def detect(self, text: str) -> bool:
        return _DETECT.search(text) is not None

    def turn_end(self, generated: str) -> int | None:
        return first_stop(generated, self.stop)

    def parse_output(self, generated: str) -> tuple[str | None, str | None]:
        line = generated.lstrip().split("\n", 1)[0].strip()
        if not line.startswith(">"):
            return None, None
        body = line[1:].lstrip()
        if think := _THINK.match(body):
            return body[think.end() :].strip() or None, None
        return None, body or None
