from pathlib import Path

import pytest

from agentdistill.errors import TrajectoryError
from agentdistill.formats.alfworld import AlfWorldFormat
from agentdistill.trajectory import SpanKind, Step

DATA = Path(__file__).parents[1] / "data" / "formats"
R, A = SpanKind.REASON, SpanKind.ACT
fmt = AlfWorldFormat()


def texts(text, spans):
    return [(s.kind, text[s.start : s.end]) for s in spans]


def test_golden_react_transcript_spans_skip_few_shot_examples():
    text = (DATA / "alfworld_react.txt").read_text(encoding="utf-8")
    assert texts(text, fmt.spans(text)) == [
        (
            R,
            "> think: To solve the task, I need to find and take a mug, then clean it with sinkbasin, "
            "then put it in coffeemachine.\n",
        ),
        (
            R,
            "> think: First I need to find a mug. A mug is more likely to appear in countertop (1-2), cabinet (1-2). "
            "I can check one by one, starting with countertop 1.\n",
        ),
        (A, "> go to countertop 1\n"),
        (A, "> go to countertop 2\n"),
        (A, ">take mug 1 from countertop 2\n"),  # no space after ">"
        (R, "> think: Now I take a mug (1). Next, I need to go to sinkbasin (1) and clean it.  \n"),  # trailing spaces
        (A, "> go to sinkbasin 1\n"),
        (A, "> clean mug 1 with sinkbasin 1\n"),
        (A, "> go to coffeemachine 1\n"),
        (A, "> put mug 1 in/on coffeemachine 1\n"),
    ]


def test_golden_react_transcript_parse():
    text = (DATA / "alfworld_react.txt").read_text(encoding="utf-8")
    prompt, steps = fmt.parse(text)
    assert prompt.endswith("Your task is to: put a clean mug in coffeemachine.\n")
    assert "find some apple and put it in sidetable" in prompt  # the few-shot example stays in the prompt
    assert steps[:4] == [
        Step(
            "To solve the task, I need to find and take a mug, then clean it with sinkbasin, then put it in coffeemachine."
        ),
        Step(
            "First I need to find a mug. A mug is more likely to appear in countertop (1-2), cabinet (1-2). "
            "I can check one by one, starting with countertop 1.",
            "go to countertop 1",
            "On the countertop 1, you see a apple 2, and a knife 1.",
        ),
        Step(None, "go to countertop 2", "On the countertop 2, you see a mug 1, and a peppershaker 3."),
        Step(None, "take mug 1 from countertop 2", "You pick up the mug 1 from the countertop 2."),
    ]
    assert steps[4].thought == "Now I take a mug (1). Next, I need to go to sinkbasin (1) and clean it."
    assert steps[-1] == Step(None, "put mug 1 in/on coffeemachine 1", "You put the mug 1 in/on the coffeemachine 1.")
    assert len(steps) == 8


QUIRKS = (
    "Your task is to: heat some egg and put it in countertop.\n"
    "> go to fridge 1\n"
    "The fridge 1 is closed.\n"
    "\n"  # blank line between steps: part of the observation (context)
    "> open fridge 1\n"
    "You open the fridge 1. The fridge 1 is open.\n"
    "In it, you see a egg 1, and a lettuce 2.\n"  # multi-line observation
    "> think: Now I find an egg (1). Next, I need to take it.\n"
    "OK.\n"
    "> think: The thought before had no action after it.\n"
    "OK.\n"
    ">   take egg 1 from fridge 1   \n"
    "You pick up the egg 1 from the fridge 1.\n"
    "> think: The transcript ends after this thought"  # no final newline, no action
)


def test_quirks_spans():
    assert texts(QUIRKS, fmt.spans(QUIRKS)) == [
        (A, "> go to fridge 1\n"),
        (A, "> open fridge 1\n"),
        (R, "> think: Now I find an egg (1). Next, I need to take it.\n"),
        (R, "> think: The thought before had no action after it.\n"),
        (A, ">   take egg 1 from fridge 1   \n"),
        (R, "> think: The transcript ends after this thought"),
    ]


def test_quirks_parse():
    prompt, steps = fmt.parse(QUIRKS)
    assert prompt == "Your task is to: heat some egg and put it in countertop.\n"
    assert steps == [
        Step(None, "go to fridge 1", "The fridge 1 is closed.\n"),
        Step(
            None,
            "open fridge 1",
            "You open the fridge 1. The fridge 1 is open.\nIn it, you see a egg 1, and a lettuce 2.",
        ),
        Step("Now I find an egg (1). Next, I need to take it."),
        Step(
            "The thought before had no action after it.",
            "take egg 1 from fridge 1",
            "You pick up the egg 1 from the fridge 1.",
        ),
        Step("The transcript ends after this thought"),
    ]


def test_crlf_spans_keep_the_line_end():
    text = QUIRKS.replace("\n", "\r\n")
    assert text[fmt.spans(text)[0].start : fmt.spans(text)[0].end] == "> go to fridge 1\r\n"
    assert fmt.parse(text) == fmt.parse(QUIRKS)


def test_render_exact_text_and_think_reply_is_context():
    text, spans = fmt.render(
        "Your task is to: cool some pan.",
        [Step("I need a pan.", "go to stoveburner 1", "On it, a pan 1."), Step("Cool it.")],
    )
    assert text == (
        "Your task is to: cool some pan.\n> think: I need a pan.\nOK.\n> go to stoveburner 1\nOn it, a pan 1.\n"
        "> think: Cool it.\nOK.\n"
    )
    assert texts(text, spans) == [
        (R, "> think: I need a pan.\n"),
        (A, "> go to stoveburner 1\n"),
        (R, "> think: Cool it.\n"),
    ]


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("> think: x", ("x", None)),
        ("> go to desk 1", (None, "go to desk 1")),
        (">go to desk 1", (None, "go to desk 1")),
        ("  > open drawer 2  ", (None, "open drawer 2")),
        (">think:x", ("x", None)),
        ("> think:", (None, None)),
        (">", (None, None)),
        ("go to desk 1", (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_output(generated, expected):
    assert fmt.parse_output(generated) == expected


def test_one_generated_line_per_turn():
    assert fmt.stop == ("\n",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Your task is to: x\n> \nNothing happens.\n",
            "line 2: `>` has no command; expected `> think: <reasoning>` or `> go to desk 1`",
        ),
        (
            "Your task is to: x\n> think:\nOK.\n",
            "line 2: `> think:` has no thought; expected `> think: <reasoning>` or `> go to desk 1`",
        ),
    ],
)
def test_malformed_transcript_names_line_and_expectation(text, message):
    with pytest.raises(TrajectoryError) as e:
        fmt.parse(text)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your task is to: x\n> go to desk 1\nOn the desk 1, you see a pen 1.\n", True),
        (">think: x\nOK.\n", True),
        ("Question: q\nThought 1: t\nAction 1: Search[x]\n", False),
        ("a > b is not a command\n", False),
    ],
)
def test_detect(text, expected):
    assert fmt.detect(text) is expected
