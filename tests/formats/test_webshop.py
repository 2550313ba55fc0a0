from pathlib import Path

import pytest

from agentdistill.errors import TrajectoryError
from agentdistill.formats.webshop import WebShopFormat
from agentdistill.trajectory import SpanKind, Step

DATA = Path(__file__).parents[1] / "data" / "formats"
R, A = SpanKind.REASON, SpanKind.ACT
fmt = WebShopFormat()


def texts(text, spans):
    return [(s.kind, text[s.start : s.end]) for s in spans]


def test_golden_react_transcript_spans_skip_few_shot_example():
    text = (DATA / "webshop_react.txt").read_text(encoding="utf-8")
    assert texts(text, fmt.spans(text)) == [
        (A, "Action: search[l'eau d'issey 6.76 fl oz bottle price < 100.00]\n"),
        (
            R,
            "Action: think[B000VOHH8I is a 6.7 fl oz bottle of l'eau d'issey under 100 dollars. I should check it.]\n",
        ),
        (A, "Action: click[B000VOHH8I]\n"),
        (A, "Action: click[6.76 fl oz]  \n"),  # trailing spaces stay inside the span
        (A, "Action: click[Buy Now]"),  # last line without a newline
    ]


def test_golden_react_transcript_parse():
    text = (DATA / "webshop_react.txt").read_text(encoding="utf-8")
    prompt, steps = fmt.parse(text)
    assert prompt.endswith("[SEP] Search\n\n")
    assert "bright citrus deodorant" in prompt  # the few-shot example stays in the prompt
    assert steps == [
        Step(
            None,
            "search[l'eau d'issey 6.76 fl oz bottle price < 100.00]",
            "\n[Back to Search] \nPage 1 (Total results: 50) \n[Next >] \n[B000VOHH8I] \n"
            "L'eau D'issey By Issey Miyake for MenEau De Toilette Spray, 6.7 Fl Oz Bottle \n$64.98 ",
        ),
        Step(
            "B000VOHH8I is a 6.7 fl oz bottle of l'eau d'issey under 100 dollars. I should check it.",
            "click[B000VOHH8I]",
            "\n[Back to Search] \n[< Prev] \nsize [2.5 fl oz][6.76 fl oz]\n"
            "L'eau D'issey By Issey Miyake for MenEau De Toilette Spray, 6.7 Fl Oz Bottle \nPrice: $64.98 \n[Buy Now]  ",
        ),
        Step(None, "click[6.76 fl oz]", "You have clicked 6.76 fl oz. "),
        Step(None, "click[Buy Now]", ""),
    ]


QUIRKS = (
    "WebShop [SEP] Instruction: [SEP] i want red shoes under 30 dollars [SEP] Search\n"
    "Action: think[I should search first.]\n"
    "Observation: OK.\n"
    "\n"
    "Action: think[Two thoughts in a row: the first has no action.]\n"
    "Observation: OK.\n"
    "\n"
    "Action: search[red shoes]\n"
    "Observation: [Back to Search]\n"
    "WebShop [SEP] is not a new task inside an observation\n"
    "[B01] Red Shoe $20\n"
    "\n"
    "Action: click[Back to Search]\n"
    "Observation: \n"
    "WebShop [SEP] Instruction: [SEP] i want red shoes under 30 dollars [SEP] Search\n"
    "\n"
    "Action: think[The search page again; the transcript ends after this thought.]\n"
)


def test_quirks_spans():
    assert texts(QUIRKS, fmt.spans(QUIRKS)) == [
        (R, "Action: think[I should search first.]\n"),
        (R, "Action: think[Two thoughts in a row: the first has no action.]\n"),
        (A, "Action: search[red shoes]\n"),
        (A, "Action: click[Back to Search]\n"),
        (R, "Action: think[The search page again; the transcript ends after this thought.]\n"),
    ]


def test_quirks_parse():
    prompt, steps = fmt.parse(QUIRKS)
    assert prompt == "WebShop [SEP] Instruction: [SEP] i want red shoes under 30 dollars [SEP] Search\n"
    assert steps == [
        Step("I should search first."),
        Step(
            "Two thoughts in a row: the first has no action.",
            "search[red shoes]",
            "[Back to Search]\nWebShop [SEP] is not a new task inside an observation\n[B01] Red Shoe $20",
        ),
        Step(
            None,
            "click[Back to Search]",
            "\nWebShop [SEP] Instruction: [SEP] i want red shoes under 30 dollars [SEP] Search",
        ),
        Step("The search page again; the transcript ends after this thought."),
    ]


def test_crlf_spans_keep_the_line_end():
    text = QUIRKS.replace("\n", "\r\n")
    assert text[fmt.spans(text)[0].start : fmt.spans(text)[0].end] == "Action: think[I should search first.]\r\n"
    assert fmt.parse(text) == fmt.parse(QUIRKS)


def test_render_exact_text():
    text, spans = fmt.render(
        "WebShop [SEP] Instruction: [SEP] red shoes [SEP] Search",
        [Step(None, "search[red shoes]", "[B01]\nRed Shoe"), Step("B01 fits.", "click[B01]", "[Buy Now]")],
    )
    assert text == (
        "WebShop [SEP] Instruction: [SEP] red shoes [SEP] Search\n"
        "Action: search[red shoes]\nObservation: [B01]\nRed Shoe\n\n"
        "Action: think[B01 fits.]\nObservation: OK.\n\n"
        "Action: click[B01]\nObservation: [Buy Now]\n\n"
    )
    assert texts(text, spans) == [
        (A, "Action: search[red shoes]\n"),
        (R, "Action: think[B01 fits.]\n"),
        (A, "Action: click[B01]\n"),
    ]


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("Action: think[x]", ("x", None)),
        ("Action: click[b07x]", (None, "click[b07x]")),
        ("Action: search[red shoes]", (None, "search[red shoes]")),
        ("Action:search[red shoes]  ", (None, "search[red shoes]")),
        ("Action: think[unfinished", ("unfinished", None)),
        ("Action: think[]", (None, None)),
        ("Action:", (None, None)),
        ("search[red shoes]", (None, None)),
    ],
)
def test_parse_output(generated, expected):
    assert fmt.parse_output(generated) == expected


@pytest.mark.parametrize(
    "text", ["Search\nAction: \nObservation: x\n", "Search\nAction: think[ ]\nObservation: OK.\n"]
)
def test_malformed_transcript_names_line_and_expectation(text):
    with pytest.raises(TrajectoryError) as e:
        fmt.parse(text)
    assert str(e.value) == (
        "line 2: empty `Action:`; expected `Action: think[<reasoning>]`, `Action: search[<query>]` "
        "or `Action: click[<button>]`"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Instruction: x\nAction: search[red shoes]\nObservation: ...\n", True),
        ("Action: think[x]\nObservation: OK.\n", True),
        ("Question: q\nThought 1: t\nAction 1: Search[x]\n", False),
        ("> go to desk 1\n", False),
    ],
)
def test_detect(text, expected):
    assert fmt.detect(text) is expected
