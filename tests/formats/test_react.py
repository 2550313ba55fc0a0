from pathlib import Path

import pytest

from agentdistill.errors import TrajectoryError
from agentdistill.formats.react import ReactFormat
from agentdistill.trajectory import SpanKind, Step

DATA = Path(__file__).parents[1] / "data" / "formats"
R, A = SpanKind.REASON, SpanKind.ACT
fmt = ReactFormat()


def texts(text, spans):
    return [(s.kind, text[s.start : s.end]) for s in spans]


def test_golden_hotpotqa_spans_skip_few_shot_examples():
    text = (DATA / "react_hotpotqa.txt").read_text(encoding="utf-8")
    assert texts(text, fmt.spans(text)) == [
        (R, "Thought 1: I need to search Arthur's Magazine and First for Women, and find which was started first.\n"),
        (A, "Action 1: Search[Arthur's Magazine]\n"),
        (R, "Thought 2: Arthur's Magazine was started in 1844. I need to search First for Women next.\n"),
        (A, "Action 2: Search[First for Women]\n"),
        (R, "Thought 3: I should search the exact title with its type.\n"),
        (A, "Action 3: Search[First for Women (magazine)]\n"),
        (
            R,
            "Thought 4: First for Women was started in 1989. 1844 (Arthur's Magazine) < 1989 (First for Women), "
            "so Arthur's Magazine was started first.\n",
        ),
        (A, "Action 4: Finish[Arthur's Magazine]\n"),
    ]


def test_golden_hotpotqa_parse():
    text = (DATA / "react_hotpotqa.txt").read_text(encoding="utf-8")
    prompt, steps = fmt.parse(text)
    assert prompt.endswith("Question: Which magazine was started first, Arthur's Magazine or First for Women?\n")
    assert "Finish[Richard Nixon]" in prompt  # the few-shot examples stay in the prompt
    assert [s.action for s in steps] == [
        "Search[Arthur's Magazine]",
        "Search[First for Women]",
        "Search[First for Women (magazine)]",
        "Finish[Arthur's Magazine]",
    ]
    assert steps[1].observation == (
        "Could not find [First for Women]. Similar: ['First for Women', 'Women First',\n"
        "'First Women (album)', 'Canadian Women First']."
    )
    assert steps[3].observation == "Episode finished, reward = 1"


QUIRKS = (
    "Question: Were Scott Derrickson and Ed Wood of the same nationality?\n"
    "Thought 1: I need to search Scott Derrickson and Ed Wood.   \n"  # trailing spaces
    "Action 1: Search[Scott Derrickson]\n"
    "Observation 1: Scott Derrickson (born July 16, 1966) is an American director.\n"
    "He lives in Los Angeles.\n"  # multi-line observation
    "\n"  # blank line between steps
    "Thought 2: Scott Derrickson is American.\n"
    "Thought 3: Now Ed Wood.\n"  # two thoughts in a row
    "Action 3: Click[Ed Wood]\n"  # an unusual verb is still an action
    "Observation 3: Invalid action. Valid actions are Search[<topic>], Lookup[<topic>], and Finish[<answer>].\n"
    "Action 4: Search[Ed Wood]\n"  # plain acting, no thought
    "Observation 4: Edward Davis Wood Jr. was an American filmmaker.\n"
    "Thought 5: Both are American,\n"
    "so the answer is yes.\n"  # a thought over two lines
    "Action 5: Finish[yes]"  # no final newline
)


def test_quirks_spans():
    assert texts(QUIRKS, fmt.spans(QUIRKS)) == [
        (R, "Thought 1: I need to search Scott Derrickson and Ed Wood.   \n"),
        (A, "Action 1: Search[Scott Derrickson]\n"),
        (R, "Thought 2: Scott Derrickson is American.\n"),
        (R, "Thought 3: Now Ed Wood.\n"),
        (A, "Action 3: Click[Ed Wood]\n"),
        (A, "Action 4: Search[Ed Wood]\n"),
        (R, "Thought 5: Both are American,\nso the answer is yes.\n"),
        (A, "Action 5: Finish[yes]"),
    ]


def test_quirks_parse():
    prompt, steps = fmt.parse(QUIRKS)
    assert prompt == "Question: Were Scott Derrickson and Ed Wood of the same nationality?\n"
    assert steps == [
        Step(
            "I need to search Scott Derrickson and Ed Wood.",
            "Search[Scott Derrickson]",
            "Scott Derrickson (born July 16, 1966) is an American director.\nHe lives in Los Angeles.\n",
        ),
        Step("Scott Derrickson is American.", None, ""),
        Step(
            "Now Ed Wood.",
            "Click[Ed Wood]",
            "Invalid action. Valid actions are Search[<topic>], Lookup[<topic>], and Finish[<answer>].",
        ),
        Step(None, "Search[Ed Wood]", "Edward Davis Wood Jr. was an American filmmaker."),
        Step("Both are American,\nso the answer is yes.", "Finish[yes]", ""),
    ]


def test_crlf_spans_keep_the_line_end():
    text = QUIRKS.replace("\n", "\r\n")
    spans = fmt.spans(text)
    assert text[spans[0].start : spans[0].end] == "Thought 1: I need to search Scott Derrickson and Ed Wood.   \r\n"
    assert fmt.parse(text) == fmt.parse(QUIRKS)


def test_transcript_ending_after_a_thought():
    text = "Question: q\nThought 1: I should search x.\n"
    assert texts(text, fmt.spans(text)) == [(R, "Thought 1: I should search x.\n")]
    assert fmt.parse(text) == ("Question: q\n", [Step("I should search x.")])


def test_question_line_inside_an_observation_is_not_a_new_task():
    text = (
        "Question: q\nThought 1: t1\nAction 1: Search[FAQ]\nObservation 1: The FAQ page reads:\n"
        "Question: what is x?\nThought 2: t2\nAction 2: Finish[y]\n"
    )
    assert texts(text, fmt.spans(text)) == [
        (R, "Thought 1: t1\n"),
        (A, "Action 1: Search[FAQ]\n"),
        (R, "Thought 2: t2\n"),
        (A, "Action 2: Finish[y]\n"),
    ]
    assert fmt.parse(text)[1][0].observation == "The FAQ page reads:\nQuestion: what is x?"


def test_few_shot_example_ending_with_an_observation_stays_in_the_prompt():
    text = "Question: a\nThought 1: fa\nAction 1: Finish[a]\nObservation 1: Episode finished\nQuestion: b\nThought 1: tb\n"
    assert texts(text, fmt.spans(text)) == [(R, "Thought 1: tb\n")]
    assert fmt.parse(text)[0] == text.removesuffix("Thought 1: tb\n")


def test_render_exact_text():
    text, spans = fmt.render("Question: q", [Step("t1", "Search[x]", "obs 1"), Step(None, "Finish[y]", "")])
    assert text == (
        "Question: q\nThought 1: t1\nAction 1: Search[x]\nObservation 1: obs 1\nAction 2: Finish[y]\nObservation 2: \n"
    )
    assert texts(text, spans) == [(R, "Thought 1: t1\n"), (A, "Action 1: Search[x]\n"), (A, "Action 2: Finish[y]\n")]


def test_incomplete_step_ends_where_the_model_writes_the_action():
    text, _ = fmt.render("Question: q\n", [Step("t1", "Search[x]", "o"), Step("t2")])
    assert text.endswith("Observation 1: o\nThought 2: t2\n")


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("Thought 2: x\nAction 2: Search[y]", ("x", "Search[y]")),
        ("Thought 2: x\nAction 2: Search[y]\n", ("x", "Search[y]")),
        ("Thought 3: a long\nthought\nAction 3: Finish[z]", ("a long\nthought", "Finish[z]")),
        ("Action 1: Lookup[k]", (None, "Lookup[k]")),
        ("Thought 1: only thinking", ("only thinking", None)),
        ("Thought: x\nAction: Search[y]", ("x", "Search[y]")),
        ("I will search y.", (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_output(generated, expected):
    assert fmt.parse_output(generated) == expected


def test_stop_cuts_before_the_observation():
    assert fmt.stop == ("\nObservation",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Q\nThought 1: x\nAction 1:\nObservation 1: o\n",
            "line 3: `Action 1:` is empty; expected `Action 2: Search[<entity>]`",
        ),
        (
            "Q\nThought 1:   \nAction 1: Search[x]\n",
            "line 2: `Thought 1:` is empty; expected `Thought 2: <reasoning>`",
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
        ("Question: q\nThought 1: t\nAction 1: Search[x]\n", True),
        ("Claim: c\nAction 1: Search[x]\n", True),
        ("> go to desk 1\nOn the desk 1, you see a pen 1.\n", False),
        ("Action: search[red shoes]\nObservation: ...\n", False),
        ("just prose with Thought 1: inside a line\n", False),
    ],
)
def test_detect(text, expected):
    assert fmt.detect(text) is expected
