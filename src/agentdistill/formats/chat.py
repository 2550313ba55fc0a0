"""Chat / tool-call transcripts: OpenAI-style messages rendered with a chat template.

A sample record (``ChatTranscript``)::

    {"id": "chat-3", "format": "chat", "messages": [
      {"role": "user", "content": "Your task is to: put a clean mug in coffeemachine."},
      {"role": "assistant", "content": "A mug is likely on a countertop.",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "act", "arguments": "{\\"command\\": \\"go to countertop 1\\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "On the countertop 1, you see a mug 1."}]}

and its text in the default ChatML template (used without a tokenizer, or when the tokenizer has
no ``chat_template``)::

    <|im_start|>user
    Your task is to: put a clean mug in coffeemachine.<|im_end|>
    <|im_start|>assistant
    A mug is likely on a countertop.
    <tool_call>
    {"name": "act", "arguments": {"command": "go to countertop 1"}}
    </tool_call><|im_end|>
    <|im_start|>tool
    On the countertop 1, you see a mug 1.<|im_end|>

Span rule, for any template. Each message's text is the difference between the template's
render of ``messages[:i+1]`` and of ``messages[:i]``. Non-assistant messages and the assistant
role header (the text before where the template puts a probe content) are context. In an assistant message the
``content``, exactly where it occurs, and the whitespace after it up to the tool call (the
newline that ends a thought) is REASON; the rest of the message's text is ACT: the tool calls
and the end-of-turn marker (and the template's newline after it), which the model generates.
Without tool calls, REASON runs from the content to the end of the message's text. Every
character from where the content starts to the end of the message is in a span: the agent's
model writes all of it.
"""

import json
import os
import re
from collections.abc import Sequence
from typing import Any

from agentdistill.errors import TrajectoryError
from agentdistill.formats.base import first_stop
from agentdistill.trajectory import Span, SpanKind, Step

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ACT_TOOL = "act"  # the tool a structured step's action is called through: act({"command": action})
_PROBE = "AGENTDISTILLPROBE"  # content that locates the end of an assistant header in any template
ROLES = ("system", "developer", "user", "assistant", "tool")

_BLOCK = re.compile(r"<\|im_start\|>([^\n]*)\n(.*?)(?:<\|im_end\|>\n?|(?=<\|im_start\|>)|\Z)", re.DOTALL)
_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)


def _content(msg: dict[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _check(messages: Sequence[dict[str, Any]], tools: Any = None) -> None:
    """Raise ``TrajectoryError`` naming the first message (and field) that is not an OpenAI-style message."""
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise TrajectoryError(f"`tools` must be a list of tool schemas (objects), got {type(tools).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else m
            raise TrajectoryError(f"messages[{i}]: role {role!r}; expected one of {', '.join(ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise TrajectoryError(
                f"messages[{i}].content must be a string, a list of content parts or null, "
                f"got {type(content).__name__} {content!r:.40}"
            )
        for j, part in enumerate(content if isinstance(content, list) else []):
            if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                raise TrajectoryError(
                    f'messages[{i}].content[{j}] must be a content part {{"type": "text", "text": "..."}}'
                )
        if not isinstance(m.get("tool_calls") or [], list):
            raise TrajectoryError(
                f"messages[{i}].tool_calls must be a list of calls, got {type(m['tool_calls']).__name__}"
            )
        for j, call in enumerate(m.get("tool_calls") or []):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise TrajectoryError(
                    f"messages[{i}].tool_calls[{j}]: expected "
                    '{"type": "function", "function": {"name": ..., "arguments": ...}}'
                )


def _arguments(fn: dict[str, Any]) -> Any:
    """A call's arguments decoded (OpenAI sends a JSON string); a non-JSON string stays a string."""
    args = fn.get("arguments", {})
    if not isinstance(args, str):
        return args
    try:
        return json.loads(args)
    except json.JSONDecodeError:
        return args


def _call_text(call: dict[str, Any]) -> str:
    fn = call["function"]
    args = _arguments(fn)
    return f"<tool_call>\n{json.dumps({'name': fn['name'], 'arguments': args}, ensure_ascii=False)}\n</tool_call>"


def _render_chatml(messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None) -> tuple[str, list[Span]]:
    parts: list[str] = []
    spans: list[Span] = []

    def add(s: str, kind: SpanKind | None = None) -> None:
        start = sum(map(len, parts))
        parts.append(s)
        if kind is not None:
            spans.append(Span(kind, start, start + len(s)))

    if tools:  # the tool schemas, as a system turn the harness writes
        add(f"{IM_START}system\n<tools>\n" + "\n".join(json.dumps(t) for t in tools) + f"\n</tools>{IM_END}\n")
    for m in messages:
        add(f"{IM_START}{m['role']}\n")  # the role header: written by the harness
        content, calls = _content(m), m.get("tool_calls") or []
        if m["role"] != "assistant":
            add(f"{content}{IM_END}\n")
        elif not calls:
            add(f"{content}{IM_END}\n", SpanKind.REASON if content.strip() else None)
        else:
            if content:  # the newline that ends the thought belongs to it
                add(content + "\n", SpanKind.REASON if content.strip() else None)
            add("\n".join(_call_text(c) for c in calls) + f"{IM_END}\n", SpanKind.ACT)
    return "".join(parts), spans


def _assistant_spans(text: str, body: int, end: int, content: str, calls: list[dict[str, Any]], i: int) -> list[Span]:
    """Spans of one assistant message whose text is ``text[body:end]`` (role header excluded)."""
    spans, pos = [], body
    if content.strip():
        at = text.find(content, body, end)
        if at == -1:  # templates often trim the content
            content = content.strip()
            at = text.find(content, body, end)
        if at == -1:
            raise TrajectoryError(f"messages[{i}]: the chat template does not write the assistant content verbatim")
        if not calls:
            return [Span(SpanKind.REASON, at, end)]  # the end-of-turn marker is generated: it closes the REASON
        pos = at + len(content)
        while pos < end and text[pos].isspace():
            pos += 1  # the newline that ends the thought belongs to it
        spans.append(Span(SpanKind.REASON, at, pos))
    elif not calls:
        return []
    if not any(c["function"]["name"] in text[pos:end] for c in calls):
        raise TrajectoryError(f"messages[{i}]: the chat template does not render `tool_calls`; use one that does")
    return [*spans, Span(SpanKind.ACT, pos, end)]


def _apply(tokenizer: Any, msgs: Sequence[dict[str, Any]], tools: Any = None) -> str:
    import jinja2

    try:
        return tokenizer.apply_chat_template(list(msgs), tools=tools, tokenize=False)
    except jinja2.TemplateError as e:
        raise TrajectoryError(f"the chat template failed on {len(msgs)} message(s): {e}") from None


def _has_template(tokenizer: Any) -> bool:
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def _render_template(messages: Sequence[dict[str, Any]], tokenizer: Any, tools: Any) -> tuple[str, list[Span]]:
    def apply(msgs: Sequence[dict[str, Any]]) -> str:
        return _apply(tokenizer, msgs, tools)

    full, spans = apply(messages), []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue  # context; only assistant turns need exact boundaries
        cur = apply(messages[: i + 1])
        if not full.startswith(cur):
            raise TrajectoryError(
                f"messages[{i}]: the chat template renders this assistant turn differently once later messages "
                "follow, so spans cannot be placed; use a prefix-stable template (or none, for ChatML)"
            )
        prev = apply(messages[:i]) if i else ""
        start = len(os.path.commonprefix([prev, cur]))  # where this message's text begins
        # The role header is written by the harness: the message body begins where a probe content lands.
        try:
            probe = apply([*messages[:i], {"role": "assistant", "content": _PROBE}])
        except TrajectoryError:
            probe = ""
        at = probe.find(_PROBE, start)
        body = at if at != -1 and probe[:at] == cur[:at] else start
        spans += _assistant_spans(cur, body, len(cur), _content(m), m.get("tool_calls") or [], i)
    return full, spans


def render_messages(
    messages: Sequence[dict[str, Any]], tokenizer: Any = None, tools: list[dict[str, Any]] | None = None
) -> tuple[str, list[Span]]:
    """Render OpenAI-style messages to text with REASON/ACT spans (rule in the module docstring).

    Args:
        messages: ``{"role", "content", "tool_calls"?}`` dicts; roles system/developer/user/assistant/tool.
        tokenizer: a Hugging Face tokenizer; its ``chat_template`` is used when it has one, else ChatML.
        tools: tool schemas passed to the template (ChatML writes them in a leading system turn).

    Returns:
        ``(text, spans)``, spans sorted and non-overlapping.

    Raises:
        TrajectoryError: for a malformed message, or a template that cannot be segmented.
    """
    _check(messages, tools)
    if _has_template(tokenizer):
        return _render_template(messages, tokenizer, tools)
    return _render_chatml(messages, tools)


def assistant_header(messages: Sequence[dict[str, Any]], tokenizer: Any = None) -> str:
    """What the harness writes after ``messages`` before an assistant's content: ChatML's role line, or
    the template's header, found where a probe content lands (as ``render_messages`` places spans).

    Raises:
        TrajectoryError: when the template renders ``messages`` differently once an assistant turn follows.
    """
    if not _has_template(tokenizer):
        return f"{IM_START}assistant\n"
    cur = _apply(tokenizer, messages)
    probe = _apply(tokenizer, [*messages, {"role": "assistant", "content": _PROBE}])
    at = probe.find(_PROBE, len(cur))
    if not probe.startswith(cur) or at == -1:
        raise TrajectoryError(
            "the chat template renders the conversation differently once an assistant turn follows, so the "
            "agent cannot continue it as training saw it; use a prefix-stable template (or none, for ChatML)"
        )
    return probe[len(cur) : at]


def steps_to_messages(prompt: str, steps: Sequence[Step]) -> list[dict[str, Any]]:
    """A structured trajectory as messages: prompt = user, thought = assistant content,
    action = a call of the ``act`` tool with ``{"command": action}``, observation = its tool message
    (a user message after a step with no action)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for k, step in enumerate(steps, 1):
        if step.thought is not None or step.action is not None:
            msg: dict[str, Any] = {"role": "assistant", "content": step.thought}
            if step.action is not None:
                args = json.dumps({"command": step.action}, ensure_ascii=False)
                msg["tool_calls"] = [
                    {"id": f"call_{k}", "type": "function", "function": {"name": ACT_TOOL, "arguments": args}}
                ]
            messages.append(msg)
        if step.action is not None:
            messages.append({"role": "tool", "tool_call_id": f"call_{k}", "content": step.observation})
        elif step.observation:
            messages.append({"role": "user", "content": step.observation})
    return messages


def _parse_calls(text: str, where: str) -> list[dict[str, Any]]:
    calls = []
    for m in _CALL.finditer(text):
        try:
            obj = json.loads(m.group(1))
        except json.JSONDecodeError:
            obj = None
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("name"), str)
            or not m.group(0).endswith("</tool_call>")
        ):
            raise TrajectoryError(
                f"{where}: bad tool call {m.group(0)[:60]!r}; expected "
                '<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>'
            )
        args = json.dumps(obj.get("arguments", {}), ensure_ascii=False)
        calls.append({"type": "function", "function": {"name": obj["name"], "arguments": args}})
    return calls


def _action(calls: list[dict[str, Any]]) -> str | None:
    """The env command of a turn's tool calls: ``act``'s command, else the call as JSON."""
    actions = []
    for call in calls:
        fn = call["function"]
        args = _arguments(fn)
        if fn["name"] == ACT_TOOL and isinstance(args, dict) and isinstance(args.get("command"), str):
            actions.append(args["command"])
        else:
            actions.append(json.dumps({"name": fn["name"], "arguments": args}, ensure_ascii=False))
    return "\n".join(actions) if actions else None


def _messages_to_steps(messages: Sequence[dict[str, Any]]) -> tuple[str, list[Step]]:
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
    prompt = "\n\n".join(_content(m) for m in messages[:first])
    steps: list[Step] = []
    cur: dict | None = None  # the step being built: thought, action, observation (None = not seen)
    for prev, m in zip([None, *messages[first:]], messages[first:], strict=False):
        if m["role"] == "assistant":
            steps += [_step(cur)] if cur else []
            calls = m.get("tool_calls") or []
            cur = {"thought": _content(m).strip() or None, "action": _action(calls), "observation": None}
        elif cur is not None and m["role"] == "tool" and prev and prev["role"] == "tool":
            cur["observation"] += "\n" + _content(m)  # answers of parallel tool calls
        elif cur is not None and cur["observation"] is None:
            cur["observation"] = _content(m)
        else:
            steps += [_step(cur)] if cur else []
            cur = {"thought": None, "action": None, "observation": _content(m)}
    steps += [_step(cur)] if cur else []
    return prompt, steps


def _step(cur: dict) -> Step:
    return Step(thought=cur["thought"], action=cur["action"], observation=cur["observation"] or "")


class ChatFormat:
    """Messages in the ChatML default template; ``render_messages`` takes a tokenizer's template."""

    name = "chat"
    separate_thinks = False  # thought and action come in one turn
    stop = (IM_END,)
    expected = "assistant messages with `content` or `tool_calls` (ChatML: `<|im_start|>assistant`)"

    def render(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        return render_messages(steps_to_messages(prompt, steps), tokenizer)

    def open_turn(self, prompt: str, steps: Sequence[Step], tokenizer: Any = None) -> tuple[str, list[Span]]:
        messages = steps_to_messages(prompt, steps)
        text, spans = render_messages(messages, tokenizer)
        return text + assistant_header(messages, tokenizer), spans

    def spans(self, text: str) -> list[Span]:
        spans = []
        for m in _BLOCK.finditer(text):
            if m.group(1).strip() != "assistant":
                continue
            body, end, tc = m.start(2), m.end(), m.group(2).find("<tool_call>")
            if tc == -1:
                spans += [Span(SpanKind.REASON, body, end)] if m.group(2).strip() else []
                continue
            if m.group(2)[:tc].strip():  # the thought, with the newline that ends it, then the calls
                spans += [Span(SpanKind.REASON, body, body + tc), Span(SpanKind.ACT, body + tc, end)]
            else:
                spans.append(Span(SpanKind.ACT, body, end))
        return spans

    def parse(self, text: str) -> tuple[str, list[Step]]:
        text = text.replace("\r\n", "\n")
        messages: list[dict[str, Any]] = []
        for n, m in enumerate(_BLOCK.finditer(text)):
            role, body = m.group(1).strip(), m.group(2)
            tc = body.find("<tool_call>")
            if role != "assistant" or tc == -1:
                messages.append({"role": role, "content": body})
                continue
            content = body[:tc][:-1] if body[:tc].endswith("\n") else body[:tc]
            calls = _parse_calls(body[tc:], f"message {n} (line {text.count(chr(10), 0, m.start()) + 1})")
            messages.append({"role": role, "content": content or None, "tool_calls": calls})
        if not messages:
            raise TrajectoryError("no chat turn found; expected ChatML blocks `<|im_start|>role\\n...<|im_end|>`")
        return _messages_to_steps(messages)

    def detect(self, text: str) -> bool:
        return f"{IM_START}assistant" in text

    def turn_end(self, generated: str) -> int | None:
        return first_stop(generated, self.stop)

    def parse_output(self, generated: str) -> tuple[str | None, str | None]:
        header = f"{IM_START}assistant\n"
        body = generated.split(IM_END, 1)[0]
        body = body[len(header) :] if body.startswith(header) else body
        tc = body.find("<tool_call>")
        thought = (body if tc == -1 else body[:tc]).strip() or None
        try:
            calls = _parse_calls(body[tc:], "output") if tc != -1 else []
        except TrajectoryError:
            calls = []  # an unfinished or malformed call: no action
        return thought, _action(calls)
