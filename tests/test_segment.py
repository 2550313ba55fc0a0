from pathlib import Path

import pytest

from agentdistill.bpe import train_bpe_tokenizer
from agentdistill.errors import ConfigError, TrajectoryError
from agentdistill.formats import FORMATS, detect_format, get_format
from agentdistill.segment import Segmented, Span, SpanKind, segment
from agentdistill.trajectory import ChatTranscript, RawTranscript, Step, Trajectory

R, A = SpanKind.REASON, SpanKind.ACT

PROMPT = "Solve the task.\nYour task is to: find the answer."
STEP_LISTS = {
    "empty": [],
    "one": [Step("I should look around.", "look", "You see a desk 1.")],
    "plain_acting": [Step(None, "go to desk 1", "On the desk 1, you see a pen 1."), Step(None, "take pen 1", "")],
    "multi_line_observation": [Step("Search it.", "search[red shoes]", "[Back to Search]\nPage 1\n[B01]\n$10.99")],
    "thought_then_thought": [Step("First idea."), Step("Second idea.", "click[B01]", "OK then.")],
    "ends_with_thought": [Step("t1", "act 1", "o1"), Step("Still thinking.")],
    "observation_with_trailing_newline": [Step("t", "a", "line\n")],
}


def _prompt_norm(name, prompt):
    return prompt if name == "chat" or prompt.endswith("\n") else prompt + "\n"


@pytest.mark.parametrize("steps", STEP_LISTS.values(), ids=STEP_LISTS.keys())
@pytest.mark.parametrize("name", FORMATS)
def test_spans_of_rendered_text_equal_rendered_spans(name, steps):
    fmt = FORMATS[name]
    text, spans = fmt.render(PROMPT, steps)
    assert fmt.spans(text) == spans


@pytest.mark.parametrize("steps", STEP_LISTS.values(), ids=STEP_LISTS.keys())
@pytest.mark.parametrize("name", FORMATS)
def test_parse_inverts_render(name, steps):
    fmt = FORMATS[name]
    assert fmt.parse(fmt.render(PROMPT, steps)[0]) == (_prompt_norm(name, PROMPT), steps)


@pytest.mark.parametrize("name", FORMATS)
def test_observation_only_step_is_context(name):
    fmt = FORMATS[name]
    text, spans = fmt.render(PROMPT, [Step("t", "a", "o"), Step(None, None, "The env speaks again.")])
    assert fmt.spans(text) == spans
    assert len(spans) == 2
    assert "The env speaks again." in text[spans[-1].end :]


@pytest.mark.parametrize("name", FORMATS)
def test_render_of_fewer_steps_is_a_prefix(name):
    fmt = FORMATS[name]
    steps = STEP_LISTS["one"] + STEP_LISTS["plain_acting"] + STEP_LISTS["multi_line_observation"]
    full, full_spans = fmt.render(PROMPT, steps)
    for k in range(len(steps)):
        text, spans = fmt.render(PROMPT, steps[:k])
        assert full.startswith(text)
        assert full_spans[: len(spans)] == spans


@pytest.mark.parametrize("steps", STEP_LISTS.values(), ids=STEP_LISTS.keys())
@pytest.mark.parametrize("name", FORMATS)
def test_spans_are_sorted_disjoint_and_never_cover_prompt_or_observations(name, steps):
    text, spans = FORMATS[name].render(PROMPT, steps)
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.end <= b.start
    assert all(s.start < s.end for s in spans)
    prompt_end = text.index(PROMPT) + len(PROMPT)
    assert all(s.start >= prompt_end for s in spans)
    covered = set().union(*(range(s.start, s.end) for s in spans))
    context = "".join(c for i, c in enumerate(text) if i not in covered)
    pos = 0
    for step in steps:  # every observation survives, in order, in the context text
        pos = context.index(step.observation, pos) + len(step.observation)


@pytest.mark.parametrize("name", FORMATS)
def test_marker_belongs_to_span_it_opens(name):
    text, spans = FORMATS[name].render(PROMPT, [Step("Think.", "look", "Seen.")])
    got = [(s.kind, text[s.start : s.end]) for s in spans]
    expected = {
        "react": [(R, "Thought 1: Think.\n"), (A, "Action 1: look\n")],
        "alfworld": [(R, "> think: Think.\n"), (A, "> look\n")],
        "webshop": [(R, "Action: think[Think.]\n"), (A, "Action: look\n")],
        "chat": [
            (R, "Think.\n"),
            (A, '<tool_call>\n{"name": "act", "arguments": {"command": "look"}}\n</tool_call><|im_end|>\n'),
        ],
    }
    assert got == expected[name]


GOLDEN = {
    "react": "react_hotpotqa.txt",
    "alfworld": "alfworld_react.txt",
    "webshop": "webshop_react.txt",
}


@pytest.mark.parametrize("name", GOLDEN)
def test_invariants_hold_with_few_shot_prompts(name):
    fmt = FORMATS[name]
    golden = (Path(__file__).parent / "data" / "formats" / GOLDEN[name]).read_text(encoding="utf-8")
    prompt, steps = fmt.parse(golden)
    for k in range(len(steps) + 1):
        text, spans = fmt.render(prompt, steps[:k])
        assert fmt.spans(text) == spans
        assert fmt.parse(text) == (prompt, steps[:k])


SAMPLES = {
    "react": "Question: q\nThought 1: t\nAction 1: Search[x]\nObservation 1: o\n",
    "alfworld": "Your task is to: x\n> think: t\nOK.\n> go to desk 1\nOn the desk 1, you see a pen 1.\n",
    "webshop": "WebShop [SEP] Instruction: [SEP] x [SEP] Search\nAction: search[x]\nObservation: [B01]\n\n",
    "chat": "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nt<|im_end|>\n",
}


@pytest.mark.parametrize("name", SAMPLES)
def test_detect_format(name):
    assert detect_format(SAMPLES[name]) == name


def test_detect_format_failure_says_how_to_fix():
    with pytest.raises(TrajectoryError, match=r"^cannot detect format; pass --format react\|alfworld\|webshop$"):
        detect_format("just some prose\n")


def test_get_format_unknown_lists_valid_names():
    with pytest.raises(
        ConfigError, match=r"unknown trajectory format 'hotpot'; choose one of: react, alfworld, webshop, chat"
    ):
        get_format("hotpot")


def test_raw_transcript_auto_detects_and_normalises_crlf():
    text = SAMPLES["alfworld"].replace("\n", "\r\n")
    seg = segment(RawTranscript(id="r1", text=text))
    assert seg.format == "alfworld"
    assert seg.text == SAMPLES["alfworld"]
    assert [seg.text[s.start : s.end] for s in seg.spans] == ["> think: t\n", "> go to desk 1\n"]


def test_raw_transcript_own_format_wins_over_flag():
    seg = segment(RawTranscript(id="r1", text=SAMPLES["react"], format="react"), fmt="webshop")
    assert seg.format == "react"
    assert segment(RawTranscript(id="r2", text=SAMPLES["react"]), fmt="react").format == "react"


def test_raw_transcript_in_the_wrong_format_has_no_span():
    with pytest.raises(TrajectoryError) as e:
        segment(RawTranscript(id="r1", text=SAMPLES["react"]), fmt="webshop")
    assert str(e.value) == (
        "record 'r1' has no reason or act span; expected lines `Action: think[...]` / `Action: search[...]` / "
        "`Action: click[...]` after the instruction (format 'webshop')"
    )


def _traj(**kw):
    base = {"id": "t1", "env": "alfworld", "task": "x", "prompt": PROMPT, "steps": STEP_LISTS["one"]}
    return Trajectory(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "flag", "expected"),
    [
        ({}, "auto", "alfworld"),  # the env's format
        ({"env": "hotpotqa"}, "auto", "react"),
        ({}, "webshop", "webshop"),  # the flag beats the env mapping
        ({"format": "react"}, "webshop", "react"),  # the trajectory's own format beats the flag
        ({"format": "chat"}, "auto", "chat"),
    ],
)
def test_trajectory_format_precedence(kw, flag, expected):
    seg = segment(_traj(**kw), fmt=flag)
    assert seg.format == expected
    assert (seg.text, seg.spans) == FORMATS[expected].render(PROMPT, STEP_LISTS["one"])


def test_chat_transcript_uses_chat_format():
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    seg = segment(ChatTranscript(id="c1", messages=msgs), fmt="react")
    assert seg.format == "chat"
    assert [seg.text[s.start : s.end] for s in seg.spans] == ["a<|im_end|>\n"]


def test_chat_transcript_uses_the_tokenizer_chat_template():
    tok = train_bpe_tokenizer(["hello"], vocab_size=270)
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}"
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    seg = segment(ChatTranscript(id="c1", messages=msgs), tokenizer=tok)
    assert seg.text == "<user>q</s><assistant>a</s>"
    assert [seg.text[s.start : s.end] for s in seg.spans] == ["a</s>"]


def test_record_without_spans_is_an_error():
    with pytest.raises(TrajectoryError, match=r"^record 't1' has no reason or act span; expected lines `> think"):
        segment(_traj(steps=[]))


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown trajectory format 'xml'"):
        segment(_traj(format="xml"))
    with pytest.raises(ConfigError, match="unknown trajectory format 'xml'"):
        segment(RawTranscript(id="r", text="x"), fmt="xml")


def test_to_json():
    seg = segment(RawTranscript(id="r1", text=SAMPLES["react"]))
    assert seg == Segmented("r1", "react", SAMPLES["react"], [Span(R, 12, 25), Span(A, 25, 45)])
    assert seg.to_json() == {
        "id": "r1",
        "format": "react",
        "text": SAMPLES["react"],
        "spans": [{"type": "reason", "start": 12, "end": 25}, {"type": "act", "start": 25, "end": 45}],
    }
