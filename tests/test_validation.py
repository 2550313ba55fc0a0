"""Every value a user gives is checked before any work is done (issue 12, part 4).

Each test feeds one bad input and asserts the one-line message (key path or file and line, the bad
value, what it must be) and, through the CLI, exit code 2 and that no output was created.
"""

import json

import pytest

from agentdistill.cli import main
from agentdistill.errors import ConfigError, TrajectoryError
from agentdistill.runconfig import load_run_config
from agentdistill.testing import commands_writing


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---------------------------------------------------------------- 1. values against field types


@pytest.mark.parametrize(
    ("text", "value"), [("1e-3", 1e-3), ("1E-3", 1e-3), (".5", 0.5), ("5.", 5.0), ("-2e+4", -2e4)]
)
def test_numbers_parse_as_a_user_means_them(text, value):
    from agentdistill.config import parse_yaml

    assert parse_yaml(f"x: {text}") == {"x": value}
    assert parse_yaml("x: '1e-3'") == {"x": "1e-3"}  # quoted stays a string
    assert parse_yaml("x: 1.2.3") == {"x": "1.2.3"}  # a version is not a number


def test_set_learning_rate_1e_3_is_a_float():
    """The README's example: PyYAML reads `1e-3` as a string, which crashed in the optimizer after two stages."""
    cfg = load_run_config("smoke", sets=["distill.train.learning_rate=1e-3"])
    assert cfg.distill.train["learning_rate"] == 1e-3


def test_yaml_file_floats_are_floats(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "distill:\n  train:\n    learning_rate: 1E-3\n    weight_decay: .5\nteacher:\n  train:\n    max_steps: 1e2\n"
    )
    cfg = load_run_config("smoke", str(exp))
    assert cfg.distill.train["learning_rate"] == 1e-3 and cfg.distill.train["weight_decay"] == 0.5
    assert cfg.teacher.train["max_steps"] == 100 and isinstance(cfg.teacher.train["max_steps"], int)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("distill.train.learning_rate=abc", "`distill.train.learning_rate` must be a number (e.g. 3e-4); got 'abc'"),
        ("collect.episodes=abc", "`collect.episodes` must be an integer or null; got 'abc'"),
        ("env_seed=abc", "`env_seed` must be an integer; got 'abc'"),
        ("teacher.hidden_size=1.5", "`teacher.hidden_size` must be an integer; got 1.5"),
        ("distill.train.bf16=maybe", "`distill.train.bf16` must be true or false; got 'maybe'"),
        ("distill.seeds=[0, x]", "`distill.seeds[1]` must be an integer; got 'x'"),
        ("teacher.model=3", "`teacher.model` must be a string (quote it) or null; got 3"),
        ("evaluate.split=val", "`evaluate.split` must be one of train, dev, test; got 'val'"),
        ("teacher.arch=gpt3", "`teacher.arch` must be one of llama, gpt2; got 'gpt3'"),
        ("distill.train.divergence=kl", "`distill.train.divergence` must be one of fkl, rkl, jsd, skl, srkl, tvd"),
        ("distill.train.lr_scheduler_type=cosin", "`distill.train.lr_scheduler_type` must be one of linear, cosine,"),
        ("distill.train.max_steps=2.5", "`distill.train.max_steps` must be an integer; got 2.5"),
        ("teacher=3", "`teacher` must be a mapping of model, arch,"),
    ],
)
def test_every_value_is_checked_against_its_field_type(assignment, message):
    with pytest.raises(ConfigError) as e:
        load_run_config("smoke", sets=[assignment])
    assert str(e.value).startswith("preset smoke with --set: ")
    assert message in str(e.value)


def test_configs_validate_catches_a_bad_value(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text("distill:\n  train:\n    learning_rate: abc\n")
    assert main(["configs", "validate", str(exp)]) == 2
    assert _err(capsys) == (f"error: {exp}: `distill.train.learning_rate` must be a number (e.g. 3e-4); got 'abc'")


@pytest.mark.parametrize("assignment", ["distill.train.learning_rate=abc", "collect.episodes=0"])
def test_run_rejects_a_bad_value_before_the_teacher_stage(tmp_path, capsys, assignment):
    out = tmp_path / "run"
    assert main(["run", "--preset", "smoke", "--out", str(out), "--set", assignment]) == 2
    assert assignment.split("=")[0] in _err(capsys)
    assert not out.exists()  # no stage ran, nothing was written (or deleted by --force)


def test_stage_config_file_values_are_checked(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("env: hotpotqa\nepisodes: abc\n")
    assert main(["collect", "--config", str(cfg), "--out", str(tmp_path / "t.jsonl")]) == 2
    assert _err(capsys) == f"error: {cfg}: `episodes` must be an integer or null; got 'abc'"
    assert not (tmp_path / "t.jsonl").exists()


# ---------------------------------------------------------------- 2. counts used as slices


@pytest.mark.parametrize("n", ["0", "-198"])
def test_collect_and_evaluate_reject_non_positive_episodes(tmp_path, capsys, n):
    out = tmp_path / "t.jsonl"
    assert main(["collect", "--env", "hotpotqa", "--episodes", n, "--out", str(out)]) == 2
    assert _err(capsys) == f"error: --episodes must be >= 1 (or omitted for the whole split); got {n}"
    assert not out.exists()
    assert main(["evaluate", "--model", str(tmp_path), "--env", "hotpotqa", "--episodes", n]) == 2
    assert _err(capsys) == f"error: --episodes must be >= 1 (or omitted for the whole split); got {n}"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("collect.episodes=-198", "`collect.episodes` must be >= 1 (or null for the default); got -198"),
        ("evaluate.episodes=0", "`evaluate.episodes` must be >= 1 (or null for the default); got 0"),
        ("teacher.expert_episodes=0", "`teacher.expert_episodes` must be >= 1; got 0"),
        ("collect.batch_size=0", "`collect.batch_size` must be >= 1; got 0"),
        ("collect.min_success=-1", "`collect.min_success` must be >= 0; got -1"),
    ],
)
def test_run_config_rejects_non_positive_counts(assignment, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_run_config("smoke", sets=[assignment])


# ---------------------------------------------------------------- 3. --out that cannot be written


@pytest.mark.parametrize("command", ["segment", "distill", "evaluate", "collect", "run"])
def test_out_under_an_existing_file_is_one_line_error(tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = str(afile / "sub" / "out.json")
    assert main(commands_writing(tmp_path, out)[command]) == 2
    assert (
        _err(capsys) == f"error: --out {out} is under {afile}, which is a file, not a directory; choose another --out"
    )
    assert afile.read_text() == "x"


@pytest.mark.parametrize("command", ["distill", "run"])
def test_out_dir_that_is_a_file_is_one_line_error(tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(commands_writing(tmp_path, str(afile))[command]) == 2
    assert _err(capsys) == f"error: --out {afile} is an existing file; it must be a directory: choose another --out"


@pytest.mark.parametrize("command", ["segment", "evaluate", "collect"])
def test_out_file_that_is_a_directory_is_one_line_error(tmp_path, capsys, command):
    adir = tmp_path / "adir"
    adir.mkdir()
    assert main(commands_writing(tmp_path, str(adir))[command]) == 2
    assert _err(capsys) == f"error: --out {adir} is a directory; it must be a file name, e.g. {adir / 'out.jsonl'}"


# ---------------------------------------------------------------- 4. encodings, and the line of a bad record

_GOOD = '{"id": "r1", "format": "react", "text": "Question: q\\nThought 1: t\\nAction 1: Finish[x]\\nObservation 1: ok\\n"}'
_NO_SPAN = '{"id": "r2", "format": "react", "text": "just words"}'


def test_segment_accepts_a_utf8_bom(tmp_path, capsys):
    data, out = tmp_path / "bom.jsonl", tmp_path / "seg.jsonl"
    data.write_text(_GOOD + "\n", encoding="utf-8-sig")
    assert main(["segment", str(data), "--out", str(out)]) == 0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["r1"]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ((_GOOD + "\n").encode("utf-16"), 1, "the file is UTF-16 (it starts with a UTF-16 byte order mark)"),
        ((_GOOD + "\n").encode("utf-16-le"), 1, "NUL bytes: the file is UTF-16 or binary, not text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1, "not UTF-8 (byte 0x89 at column 1)"),
        ((_GOOD + "\n" + '{"id": "caf\u00e9"}\n').encode("latin-1"), 2, "not UTF-8 (byte 0xe9 at column 12)"),
    ],
)
@pytest.mark.parametrize("command", ["segment", "distill"])
def test_input_that_is_not_utf8_names_file_and_line(tmp_path, capsys, tiny_pair, content, line, message, command):
    data = tmp_path / "in.jsonl"
    data.write_bytes(content)
    _teacher, student = tiny_pair
    args = {
        "segment": ["segment", str(data), "--out", str(tmp_path / "seg.jsonl"), "--skip_bad"],
        "distill": ["distill", "--data", str(data), "--student", str(student), "--loss", "sft"],
    }[command]
    assert main([*args, "--out", str(tmp_path / "o")] if command == "distill" else args) == 2
    err = _err(capsys)
    assert err.startswith(f"error: {data}:{line}: {message}") and "UTF-8 JSONL" in err, err


def test_a_bad_record_names_its_line_in_segment_and_distill(tmp_path, capsys, tiny_pair):
    data = tmp_path / "in.jsonl"
    data.write_text(f"{_GOOD}\n\n{_NO_SPAN}\n")
    assert main(["segment", str(data), "--out", str(tmp_path / "seg.jsonl")]) == 2
    assert _err(capsys).startswith(f"error: {data}: record 'r2' on line 3 has no reason or act span; expected lines")
    _teacher, student = tiny_pair
    argv = ["distill", "--data", str(data), "--student", str(student), "--loss", "sft", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert _err(capsys).startswith(f"error: {data}: record 'r2' on line 3 has no reason or act span; expected lines")


def test_skipped_bad_record_keeps_its_line(tmp_path):
    from agentdistill.segment import segment
    from agentdistill.trajectory import iter_numbered_records, record_to_json, source_line

    data = tmp_path / "in.jsonl"
    data.write_text(f"\n{_GOOD}\n{_NO_SPAN}\n")
    (l1, r1), (l2, r2) = iter_numbered_records(data)
    assert (l1, l2) == (2, 3) and source_line(r2) == 3
    assert record_to_json(r2) == json.loads(_NO_SPAN)  # the line is never written back
    with pytest.raises(TrajectoryError, match="^record 'r2' on line 3 has no reason"):
        segment(r2)
    assert segment(r1).id == "r1"


# ---------------------------------------------------------------- 5. a local model path that does not exist


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("Qwen/Qwen2.5-0.5B", False),
        ("gpt2", False),
        ("meta-llama/Llama-3.2-1B", False),
        ("runs/x", False),  # a valid hub id: only the hub can say it does not exist
        ("/abs/model", True),
        ("./model", True),
        ("../model", True),
        ("~/model", True),
        (".", True),
        ("runs/demo/teacher/model", True),
        ("C:\\models\\m", True),
    ],
)
def test_looks_local_never_takes_a_hub_id_for_a_path(name, local):
    from agentdistill.modeling import looks_local

    assert looks_local(name) is local


def test_missing_local_model_fails_at_once_in_the_loaders(tmp_path):
    from agentdistill.modeling import load_causal_lm, load_tokenizer

    missing = str(tmp_path / "no" / "model")
    expected = f"model {missing}: no such file or directory; pass an existing model directory or a hub id"
    for load in (load_tokenizer, load_causal_lm):
        with pytest.raises(ConfigError, match="^" + expected):
            load(missing)


@pytest.mark.parametrize("command", ["evaluate", "distill-teacher", "distill-student", "collect", "segment", "run"])
def test_missing_local_model_is_rejected_before_any_work(tmp_path, capsys, tiny_pair, command):
    data = tmp_path / "in.jsonl"
    data.write_text(_GOOD + "\n")
    teacher, student = (str(p) for p in tiny_pair)
    missing = "./no/such/model"
    out = tmp_path / "out"
    flag, argv = {
        "evaluate": ("--model", ["evaluate", "--model", missing, "--env", "hotpotqa", "--out", str(out / "m.json")]),
        "distill-teacher": (
            "--teacher",
            ["distill", "--data", str(data), "--teacher", missing, "--student", student, "--out", str(out)],
        ),
        "distill-student": (
            "--student",
            ["distill", "--data", str(data), "--teacher", teacher, "--student", missing, "--out", str(out)],
        ),
        "collect": ("--agent", ["collect", "--agent", missing, "--env", "hotpotqa", "--out", str(out / "t.jsonl")]),
        "segment": ("--tokenizer", ["segment", str(data), "--tokenizer", missing, "--out", str(out / "s.jsonl")]),
        "run": ("teacher.model", ["run", "--preset", "smoke", "--teacher", missing, "--out", str(out)]),
    }[command]
    assert main(argv) == 2
    err = _err(capsys)
    assert f"{flag} {missing}: no such file or directory; pass an existing model directory or a hub id" in err, err
    assert not out.exists()


@pytest.mark.parametrize(("command", "own"), [("collect", "CollectArgs"), ("evaluate", "EvalArgs")])
def test_help_lists_the_env_flags_with_the_stage_options(command, own, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    mine = text[text.index(f"{command} options ({own}):") : text.index("options inherited from")]
    for flag in ("--env ENV", "--env_seed", "--data", "--questions", "--wiki", "--webshop_url", "--games", "--out"):
        assert flag in mine, flag
    assert mine.index("--env ENV") < mine.index("--out")
