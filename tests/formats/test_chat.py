import json

import pytest

from agentdistill.bpe import train_bpe_tokenizer
from agentdistill.errors import TrajectoryError
from agentdistill.formats.chat import ChatFormat, render_messages, steps_to_messages
from agentdistill.masks import build_masks
from agentdistill.trajectory import SpanKind, Step

R, A = SpanKind.REASON, SpanKind.ACT
fmt = ChatFormat()


def texts(text, spans):
    return [(s.kind, text[s.start : s.end]) for s in spans]


def call(command, name="act", i=1):
    return {
        "id": f"call_{i}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps({"command": command})},
    }


MESSAGES = [
    {"role": "system", "content": "You are a household agent. Call `act` with one command."},
    {"role": "user", "content": "Your task is to: put a clean mug in coffeemachine."},
    {"role": "assistant", "content": "A mug is likely on a countertop.", "tool_calls": [call("go to countertop 1")]},
    {"role": "tool", "tool_call_id": "call_1", "content": "On the countertop 1, you see a mug 1."},
    {"role": "assistant", "content": None, "tool_calls": [call("take mug 1 from countertop 1", i=2)]},
    {"role": "tool", "tool_call_id": "call_2", "content": "You pick up the mug 1."},
    {"role": "assistant", "content": "I hold the mug; the task needs it clean."},
]

CHATML = (
    "<|im_start|>system\nYou are a household agent. Call `act` with one command.<|im_end|>\n"
    "<|im_start|>user\nYour task is to: put a clean mug in coffeemachine.<|im_end|>\n"
    "<|im_start|>assistant\nA mug is likely on a countertop.\n"
    '<tool_call>\n{"name": "act", "arguments": {"command": "go to countertop 1"}}\n</tool_call><|im_end|>\n'
    "<|im_start|>tool\nOn the countertop 1, you see a mug 1.<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "act", "arguments": {"command": "take mug 1 from countertop 1"}}\n'
    "</tool_call><|im_end|>\n"
    "<|im_start|>tool\nYou pick up the mug 1.<|im_end|>\n"
    "<|im_start|>assistant\nI hold the mug; the task needs it clean.<|im_end|>\n"
)

CHATML_SPANS = [
    (R, "A mug is likely on a countertop.\n"),
    (A, '<tool_call>\n{"name": "act", "arguments": {"command": "go to countertop 1"}}\n</tool_call><|im_end|>\n'),
    (
        A,
        '<tool_call>\n{"name": "act", "arguments": {"command": "take mug 1 from countertop 1"}}\n</tool_call><|im_end|>\n',
    ),
    (R, "I hold the mug; the task needs it clean.<|im_end|>\n"),  # no tool call: the end of turn closes the REASON
]


def test_default_chatml_render_and_spans():
    text, spans = render_messages(MESSAGES)
    assert text == CHATML
    assert texts(text, spans) == CHATML_SPANS
    assert fmt.spans(text) == spans


def test_tokenizer_without_chat_template_falls_back_to_chatml():
    tok = train_bpe_tokenizer(["hello"], vocab_size=270)
    assert render_messages(MESSAGES, tok) == render_messages(MESSAGES)


def test_parse_chatml_into_steps():
    prompt, steps = fmt.parse(CHATML)
    assert (
        prompt
        == "You are a household agent. Call `act` with one command.\n\nYour task is to: put a clean mug in coffeemachine."
    )
    assert steps == [
        Step("A mug is likely on a countertop.", "go to countertop 1", "On the countertop 1, you see a mug 1."),
        Step(None, "take mug 1 from countertop 1", "You pick up the mug 1."),
        Step("I hold the mug; the task needs it clean.", None, ""),
    ]


def test_steps_to_messages():
    assert steps_to_messages("task", [Step("t", "go to desk 1", "o"), Step("t2", None, "user says")]) == [
        {"role": "user", "content": "task"},
        {
            "role": "assistant",
            "content": "t",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "act", "arguments": '{"command": "go to desk 1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "o"},
        {"role": "assistant", "content": "t2"},
        {"role": "user", "content": "user says"},
    ]


def test_tools_are_written_as_context():
    tools = [{"type": "function", "function": {"name": "act", "parameters": {"type": "object"}}}]
    text, spans = render_messages(MESSAGES, tools=tools)
    assert text.startswith('<|im_start|>system\n<tools>\n{"type": "function"')
    assert texts(text, spans) == CHATML_SPANS


# A template unlike ChatML: the header has no newline, content is trimmed, calls are one line each.
TEMPLATE = (
    "{% for m in messages %}"
    "<|start|>{{ m.role }}"
    "{% if m.content %}{{ '\\n' + m.content | trim }}{% endif %}"
    "{% for c in m.tool_calls or [] %}{{ '\\n[CALL] ' + c.function.name + ' ' + c.function.arguments }}{% endfor %}"
    "{{ '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
)


@pytest.fixture(scope="module")
def chat_tok():
    tok = train_bpe_tokenizer([CHATML, "<|start|>assistant\n[CALL] act <|end|>\n" * 3], vocab_size=400)
    tok.chat_template = TEMPLATE
    return tok


def test_chat_template_reason_is_the_content_and_act_covers_the_call(chat_tok):
    text, spans = render_messages(MESSAGES, chat_tok)
    assert text == (
        "<|start|>system\nYou are a household agent. Call `act` with one command.<|end|>\n"
        "<|start|>user\nYour task is to: put a clean mug in coffeemachine.<|end|>\n"
        '<|start|>assistant\nA mug is likely on a countertop.\n[CALL] act {"command": "go to countertop 1"}<|end|>\n'
        "<|start|>tool\nOn the countertop 1, you see a mug 1.<|end|>\n"
        '<|start|>assistant\n[CALL] act {"command": "take mug 1 from countertop 1"}<|end|>\n'
        "<|start|>tool\nYou pick up the mug 1.<|end|>\n"
        "<|start|>assistant\nI hold the mug; the task needs it clean.<|end|>\n"
    )
    assert texts(text, spans) == [
        (R, "A mug is likely on a countertop.\n"),
        (A, '[CALL] act {"command": "go to countertop 1"}<|end|>\n'),
        (A, '[CALL] act {"command": "take mug 1 from countertop 1"}<|end|>\n'),
        (R, "I hold the mug; the task needs it clean.<|end|>\n"),
    ]


def test_chat_template_trimmed_content_is_found(chat_tok):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  padded thought \n"}]
    text, spans = render_messages(msgs, chat_tok)
    assert texts(text, spans) == [(R, "padded thought<|end|>\n")]


def test_chat_template_masks_follow_the_spans(chat_tok):
    text, spans = render_messages(MESSAGES, chat_tok)
    enc = build_masks(text, spans, chat_tok)
    reason = chat_tok.decode([t for t, m in zip(enc.input_ids, enc.reason_mask, strict=True) if m])
    assert reason.startswith("A mug is likely on a countertop.\nI hold the mug")
    acted = chat_tok.decode([t for t, m in zip(enc.input_ids, enc.act_mask, strict=True) if m])
    assert acted.startswith('[CALL] act {"command": "go to countertop 1"}<|end|>\n[CALL] act')


def test_template_that_rewrites_earlier_assistant_turns_is_an_error():
    tok = train_bpe_tokenizer(["hello"], vocab_size=270)
    # drops the content of every assistant turn but the last, as reasoning-stripping templates do
    tok.chat_template = (
        "{% for m in messages %}<{{ m.role }}>"
        "{% if m.role != 'assistant' or loop.last %}{{ m.content or '' }}{% endif %}</s>{% endfor %}"
    )
    with pytest.raises(
        TrajectoryError, match=r"messages\[2\]: the chat template renders this assistant turn differently"
    ):
        render_messages(MESSAGES, tok)


def test_template_that_merges_tool_turns_still_segments():
    tok = train_bpe_tokenizer(["hello"], vocab_size=270)
    # like Qwen's template: consecutive tool answers share one user turn, closed only after the last one
    tok.chat_template = (
        "{% for m in messages %}{% if m.role == 'tool' %}"
        "{% if loop.first or messages[loop.index0 - 1].role != 'tool' %}<user>{% endif %}<resp>{{ m.content }}</resp>"
        "{% if loop.last or messages[loop.index0 + 1].role != 'tool' %}</s>{% endif %}"
        "{% else %}<{{ m.role }}>{{ m.content or '' }}"
        "{% for c in m.tool_calls or [] %}<call>{{ c.function.name }}</call>{% endfor %}</s>{% endif %}{% endfor %}"
    )
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "Two looks.", "tool_calls": [call("look"), call("inventory", i=2)]},
        {"role": "tool", "tool_call_id": "call_1", "content": "room"},
        {"role": "tool", "tool_call_id": "call_2", "content": "nothing"},
        {"role": "assistant", "content": "Done."},
    ]
    text, spans = render_messages(msgs, tok)
    assert text == (
        "<user>q</s><assistant>Two looks.<call>act</call><call>act</call></s>"
        "<user><resp>room</resp><resp>nothing</resp></s><assistant>Done.</s>"
    )
    assert texts(text, spans) == [(R, "Two looks."), (A, "<call>act</call><call>act</call></s>"), (R, "Done.</s>")]


def test_template_that_drops_tool_calls_is_an_error():
    tok = train_bpe_tokenizer(["hello"], vocab_size=270)
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content or '' }}</s>{% endfor %}"
    with pytest.raises(TrajectoryError, match=r"messages\[2\]: the chat template does not render `tool_calls`"):
        render_messages(MESSAGES, tok)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            [{"role": "robot", "content": "x"}],
            "messages[0]: role 'robot'; expected one of system, developer, user, assistant, tool",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}],
            'messages[0].tool_calls[0]: expected {"type": "function", "function": {"name": ..., "arguments": ...}}',
        ),
    ],
)
def test_malformed_messages(messages, message):
    with pytest.raises(TrajectoryError) as e:
        render_messages(messages)
    assert str(e.value) == message


def test_malformed_tool_call_text_names_what_was_expected():
    text = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{name: act}\n</tool_call><|im_end|>\n"
    with pytest.raises(TrajectoryError, match=r"message 1 \(line 3\): bad tool call .*expected <tool_call>"):
        fmt.parse(text)


def test_parse_without_chat_turns_is_an_error():
    with pytest.raises(TrajectoryError, match="expected ChatML blocks"):
        fmt.parse("Thought 1: x\n")


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (
            'I go.\n<tool_call>\n{"name": "act", "arguments": {"command": "go to desk 1"}}\n</tool_call>',
            ("I go.", "go to desk 1"),
        ),
        ('<tool_call>\n{"name": "act", "arguments": {"command": "look"}}\n</tool_call>', (None, "look")),
        ("The answer is 42.", ("The answer is 42.", None)),
        (
            '<|im_start|>assistant\nHm.\n<tool_call>\n{"name": "act", "arguments": {"command": "look"}}\n</tool_call>',
            ("Hm.", "look"),
        ),
        ('x\n<tool_call>\n{"name": "act", "argum', ("x", None)),
        (
            '<tool_call>\n{"name": "search", "arguments": {"q": "mug"}}\n</tool_call>',
            (None, '{"name": "search", "arguments": {"q": "mug"}}'),
        ),
    ],
)
def test_parse_output(generated, expected):
    assert fmt.parse_output(generated) == expected


@pytest.mark.parametrize(("text", "expected"), [(CHATML, True), ("Thought 1: x\nAction 1: Search[y]\n", False)])
def test_detect(text, expected):
    assert fmt.detect(text) is expected
