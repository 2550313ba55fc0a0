"""The ReAct text format of HotPotQA and FEVER, as the ReAct harness writes it (Yao et al., 2023).

A sample: the prompt, then the agent's steps; the model writes ``Thought k:`` and ``Action k:``
lines, the environment writes ``Observation k:`` (which may run over several lines)::

    Question: Which magazine was started first, Arthur's Magazine or First for Women?
    Thought 1: I need to search Arthur's Magazine and First for Women, and find which was started first.
    Action 1: Search[Arthur's Magazine]
    Observation 1: Arthur's Magazine (1844-1846) was an American literary periodical published in Philadelphia.
    Thought 2: Arthur's Magazine was started in 1844. I need to search First for Women next.
    Action 2: Search[First for Women]
    Observation 2: First for Women is a woman's magazine published by Bauer Media Group in the USA.
    Thought 3: First for Women was started in 1989. 1844 < 1989, so Arthur's Magazine was started first.
    Action 3: Finish[Arthur's Magazine]
    Observation 3: Episode finished, reward = 1

Spans: a ``Thought k:`` line is REASON and an ``Action k:`` line is ACT (any verb, not only
Search/Lookup/Finish), each from the marker to its newline included, trailing spaces inside (the
model generated them). Lines that follow without a marker continue the item; trailing blank
lines do not (blank lines between steps are context). Few-shot examples in the prompt are
context: the agent's own steps follow the last ``Question:``/``Claim:`` line outside an observation,
and are the last run of markers there that restarts at step 1.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentdistill.errors import TrajectoryError
from agentdistill.formats.base import first_stop, join_chunks
from agentdistill.trajectory import Span, SpanKind, Step

_MARKER = re.compile(r"(Thought|Action|Observation)[ \t]*(\d+)[ \t]*:[ \t]?")
# parse_output also accepts an unnumbered marker ("Thought: ..."), a common small-model slip.
_OUTPUT_MARKER = re.compile(r"(Thought|Action)(?:[ \t]*\d+)?[ \t]*:[ \t]?")
_DETECT = re.compile(r"^(Thought|Action)[ \t]*\d+[ \t]*:", re.MULTILINE)
_TASK_LINES = ("Question:", "Claim:")  # HotPotQA, FEVER


@dataclass(frozen=True)
class _Item:
    kind: str  # "Thought" | "Action" | "Observation"
    number: int
    start: int  # start of the marker line
    body: int  # first character after the marker
    end: int  # start of the next marker line (or the end of the text)
    line: int  # 1-based line number of the marker


def _items(text: str, marker: re.Pattern[str]) -> list[_Item]:
    """Every marker line of ``text`` with the extent of its item."""
    found, pos, lineno = [], 0, 1
    while pos < len(text):
        nl = text.find("\n", pos)
        line_end = len(text) if nl == -1 else nl + 1
        if m := marker.match(text, pos, line_end):
            number = int(m.group(2)) if marker.groups > 1 else 0
            found.append((m.group(1), number, pos, m.end(), lineno))
        pos, lineno = line_end, lineno + 1
    ends = [f[2] for f in found[1:]] + [len(text)] * bool(found)
    return [_Item(k, n, s, b, e, ln) for (k, n, s, b, ln), e in zip(found, ends, strict=True)]


def _first_step(items: list[_Item]) -> int:
    """Index of the agent's first item: the last Thought/Action 1 that starts a new run of steps."""
    start = 0
    for i, it in enumerate(items):
        prev = items[i - 1] if i else None
        if it.kind != "Observation" and it.number == 1 and not (prev and prev.kind == "Thought" and prev.number == 1):
            start = i
    return start


def _generated_end(text: str, item: _Item) -> int:
    """End of a generated item: its last non-blank line, newline included (trailing blank lines are context)."""
    end, pos = item.start, item.start
    while pos < item.end:
        nl = text.find("\n", pos, item.end)
        line_end = item.end if nl == -1 else nl + 1
        if pos == item.start or text[pos:line_end].strip():
            end = line_end
        pos = line_end
    return end


def _task_end(text: str) -> int:
    """End of the last task line (``Question:``/``Claim:``) the harness wrote outside an observation."""
    end, in_obs = 0, False
    for m in re.finditer(r"[^\n]*\n|[^\n]+$", text):
        line = m.group()
        if marker := _MARKER.match(line):
            in_obs = marker.group(1) == "Observation"
        elif not line.strip():
            in_obs = False  # a blank line closes the observation
        elif not in_obs and line.startswith(_TASK_LINES):
            end = m.end()
    return end


def _agent_items(text: str) -> list[_Item]:
    task_end = _task_end(text)
    items = [it for it in _items(text, _MARKER) if it.start >= task_end]
    return items[_first_step(items) :]


class ReactFormat:
    """``Thought k:`` / ``Action k:`` / ``Observation k:`` lines (HotPotQA, FEVER)."""

    name = "react"
    separate_thinks = False  # thought and action come in one turn
    stop = ("\nObservation",)
    expected = "lines `Thought 1: ...` / `Action 1: Search[...]` after the prompt"

    def open_turn(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        return self.render(prompt, steps)  # the model writes its whole turn, markers included

    def render(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        chunks: list[tuple[str, SpanKind | None]] = []
        for k, step in enumerate(steps, 1):
            if step.thought is not None:
                chunks.append((f"Thought {k}: {step.thought}\n", SpanKind.REASON))
            if step.action is not None:
                chunks.append((f"Action {k}: {step.action}\n", SpanKind.ACT))
            if step.action is not None or step.observation:
                # the harness writes the observation, marker included: context
                chunks.append((f"Observation {k}: {step.observation}\n", None))
        return join_chunks(prompt, chunks)

    def spans(self, text: str) -> list[Span]:
        kinds = {"Thought": SpanKind.REASON, "Action": SpanKind.ACT}
        return [
            Span(kinds[it.kind], it.start, _generated_end(text, it)) for it in _agent_items(text) if it.kind in kinds
        ]

    def parse(self, text: str) -> tuple[str, list[Step]]:
        text = text.replace("\r\n", "\n")
        items = _agent_items(text)
        prompt = text[: items[0].start] if items else text
        steps: list[Step] = []
        cur: dict | None = None  # the step being built: thought, action, observation (None = not seen)
        for it in items:
            if it.kind == "Observation":
                obs = text[it.body : it.end]
                obs = obs[:-1] if obs.endswith("\n") else obs
                if cur is None or cur["observation"] is not None:
                    steps += [_step(cur)] if cur else []
                    cur = {"thought": None, "action": None, "observation": None, "n": it.number}
                cur["observation"] = obs
                continue
            content = text[it.body : _generated_end(text, it)].strip()
            if not content:
                example = "Thought 2: <reasoning>" if it.kind == "Thought" else "Action 2: Search[<entity>]"
                raise TrajectoryError(f"line {it.line}: `{it.kind} {it.number}:` is empty; expected `{example}`")
            # an action joins the open thought of the same step number ("Thought 3:" then "Action 3:")
            joins = cur is not None and cur["action"] is None and cur["observation"] is None and cur["n"] == it.number
            if it.kind == "Thought" or not joins:
                steps += [_step(cur)] if cur else []
                cur = {"thought": None, "action": None, "observation": None, "n": it.number}
            cur[it.kind.lower()] = content
        steps += [_step(cur)] if cur else []
        return prompt, steps

    def detect(self, text: str) -> bool:
        return _DETECT.search(text) is not None

    def turn_end(self, generated: str) -> int | None:
        # a turn is a thought and an action: it ends with the action's line (or at "Observation", if written)
        end = first_stop(generated, self.stop)
        action = next((it for it in _items(generated, _OUTPUT_MARKER) if it.kind == "Action"), None)
        nl = generated.find("\n", action.body) if action is not None else -1
        return nl if nl != -1 and (end is None or nl < end) else end

    def parse_output(self, generated: str) -> tuple[str | None, str | None]:
        thought = action = None
        for it in _items(generated, _OUTPUT_MARKER):
            content = generated[it.body : it.end].strip()
            if it.kind == "Thought" and thought is None:
                thought = content or None
            elif it.kind == "Action" and action is None:
                action = content.split("\n", 1)[0].strip() or None  # env commands are one line
        return thought, action


def _step(cur: dict) -> Step:
    return Step(thought=cur["thought"], action=cur["action"], observation=cur["observation"] or "")
