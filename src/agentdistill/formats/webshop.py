"""The WebShop text format, as the ReAct harness writes it (Yao et al., 2023).

A sample: the prompt ends with the instruction page; the model writes one ``Action:`` line per
turn, the harness writes ``Observation:`` (multi-line page text, or ``OK.`` after a thought) and
a blank line::

    WebShop [SEP] Instruction: [SEP] i need a long lasting deodorant for sensitive skin, and price lower than 40.00 dollars [SEP] Search
    Action: search[long lasting deodorant sensitive skin]
    Observation: [Back to Search]
    Page 1 (Total results: 50)
    [Next >]
    [B078GWRC1J]
    Bright Citrus Deodorant by Earth Mama | Natural and Safe for Sensitive Skin
    $10.99

    Action: think[B078GWRC1J is a deodorant under $40. I can check it first.]
    Observation: OK.

    Action: click[B078GWRC1J]
    Observation: [Back to Search]
    [< Prev]
    scent [assorted scents][bright citrus][calming lavender]
    size [3 ounce (pack of 1)]
    [Buy Now]

Spans: ``Action: think[...]`` lines are REASON, other ``Action:`` lines (``search[...]``,
``click[...]``) are ACT, each with its newline (trailing spaces inside). Few-shot examples in the
prompt are context: the agent's steps start at the first ``Action:`` line after the last line
that starts with ``WebShop`` outside an observation (the instruction page the harness writes).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentdistill.errors import TrajectoryError
from agentdistill.formats.base import first_stop, join_chunks
from agentdistill.trajectory import Span, SpanKind, Step

_ACTION = re.compile(r"Action[ \t]*:[ \t]?")
_OBSERVATION = re.compile(r"Observation[ \t]*:[ \t]?")
_THINK = re.compile(r"think\[", re.IGNORECASE)
_DETECT = re.compile(r"^Action[ \t]*:[ \t]*(search|click|think)\[", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class _Item:
    kind: str  # "think" | "act" | "obs"
    start: int  # start of the marker line
    body: int  # first character after the marker
    line_end: int  # end of the marker line, newline included
    end: int  # start of the next Action/Observation line (or the end of the text)
    line: int  # 1-based line number


def _items(text: str) -> list[_Item]:
    """The agent's Action and Observation lines, after the last instruction page."""
    found, pos, lineno, in_obs = [], 0, 1, False
    while pos < len(text):
        nl = text.find("\n", pos)
        line_end = len(text) if nl == -1 else nl + 1
        line = text[pos:line_end]
        if m := _ACTION.match(line):
            kind = "think" if _THINK.match(line, m.end()) else "act"
            found.append((kind, pos, pos + m.end(), line_end, lineno))
            in_obs = False
        elif m := _OBSERVATION.match(line):
            found.append(("obs", pos, pos + m.end(), line_end, lineno))
            in_obs = True
        elif not line.strip():
            in_obs = False  # a blank line closes the observation the harness wrote
        elif not in_obs and line.lower().startswith("webshop"):
            found = []  # a new instruction page: everything before it (few-shot examples) is prompt
        pos, lineno = line_end, lineno + 1
    ends = [f[1] for f in found[1:]] + [len(text)] * bool(found)
    return [_Item(k, s, b, le, e, ln) for (k, s, b, le, ln), e in zip(found, ends, strict=True)]


def _observation(text: str, it: _Item) -> str:
    obs = text[it.body : it.end]
    for suffix in ("\n\n", "\n"):  # the line end and the blank line that separates steps
        if obs.endswith(suffix):
            return obs[: -len(suffix)]
    return obs


def _thought(body: str) -> str:
    inner = body[_THINK.match(body).end() :]
    return (inner[:-1] if inner.endswith("]") else inner).strip()


class WebShopFormat:
    """``Action: think[...]`` / ``Action: search[...]`` / ``Action: click[...]`` turns (WebShop)."""

    name = "webshop"
    separate_thinks = True  # a thought-only turn is answered "OK." and waits for its action
    stop = ("\n",)
    expected = "lines `Action: think[...]` / `Action: search[...]` / `Action: click[...]` after the instruction"

    def open_turn(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        return self.render(prompt, steps)  # the model writes its whole turn, markers included

    def render(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        chunks: list[tuple[str, SpanKind | None]] = []
        for step in steps:
            if step.thought is not None:
                # the harness answers a thought "OK."; a thought-only step may carry its own reply
                reply = "OK." if step.action is not None or not step.observation else step.observation
                chunks += [(f"Action: think[{step.thought}]\n", SpanKind.REASON), (f"Observation: {reply}\n\n", None)]
            if step.action is not None or (step.thought is None and step.observation):
                if step.action is not None:
                    chunks.append((f"Action: {step.action}\n", SpanKind.ACT))
                chunks.append((f"Observation: {step.observation}\n\n", None))
        return join_chunks(prompt, chunks)

    def spans(self, text: str) -> list[Span]:
        kinds = {"think": SpanKind.REASON, "act": SpanKind.ACT}
        return [Span(kinds[it.kind], it.start, it.line_end) for it in _items(text) if it.kind in kinds]

    def parse(self, text: str) -> tuple[str, list[Step]]:
        text = text.replace("\r\n", "\n")
        items = _items(text)
        prompt = text[: items[0].start] if items else text
        steps: list[Step] = []
        cur: dict | None = None  # the step being built: thought, action, observation (None = not seen)
        for it in items:
            if it.kind == "obs":
                obs = _observation(text, it)
                if cur is not None and cur["observation"] is None:
                    if cur["action"] is None and obs.strip() == "OK.":
                        continue  # the harness's answer to a thought; the step waits for its action
                    cur["observation"] = obs
                else:
                    steps += [_step(cur)] if cur else []
                    cur = {"thought": None, "action": None, "observation": obs}
                continue
            body = text[it.body : it.line_end].strip()
            content = _thought(body) if it.kind == "think" else body
            if not content:
                raise TrajectoryError(
                    f"line {it.line}: empty `Action:`; expected `Action: think[<reasoning>]`, "
                    "`Action: search[<query>]` or `Action: click[<button>]`"
                )
            joins = cur is not None and cur["thought"] is not None and cur["action"] is None
            if it.kind == "think" or not joins or cur["observation"] is not None:
                steps += [_step(cur)] if cur else []
                cur = {"thought": None, "action": None, "observation": None}
            cur["thought" if it.kind == "think" else "action"] = content
        steps += [_step(cur)] if cur else []
        return prompt, steps

    def detect(self, text: str) -> bool:
        return _DETECT.search(text) is not None

    def turn_end(self, generated: str) -> int | None:
        return first_stop(generated, self.stop)

    def parse_output(self, generated: str) -> tuple[str | None, str | None]:
        line = generated.lstrip().split("\n", 1)[0].strip()
        if not (m := _ACTION.match(line)):
            return None, None
        body = line[m.end() :].strip()
        if _THINK.match(body):
            return _thought(body) or None, None
        return None, body or None


def _step(cur: dict) -> Step:
    return Step(thought=cur["thought"], action=cur["action"], observation=cur["observation"] or "")
