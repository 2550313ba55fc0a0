"""Resume that cannot wedge: a torn train-log line."""

import json

import pytest

from agentdistill.agent import expert_episode
from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.testing import save_tiny_pair, tiny_tokenizer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    rows = [expert_episode("hotpotqa", t).to_json() for t in make_env("hotpotqa").task_ids("train")[:8]]
    data = d / "trajs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _teacher, student = save_tiny_pair(d, tiny_tokenizer())
    return data, student


def _distill(data, student, out, steps, *extra):
    args = ["distill", "--data", str(data), "--student", str(student), "--out", str(out), "--loss", "sft",
            "--per_device_train_batch_size", "2", "--max_length", "256", "--logging_steps", "2", "--save_steps", "2",
            "--lr_scheduler_type", "constant", "--max_steps", str(steps), "--disable_tqdm", "true", *extra]  # fmt: skip
    return main(args)


def _log(out):
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def _error(capsys) -> str:
    """The one error line on stderr (progress bars aside), which is its last line."""
    err = capsys.readouterr().err.strip().splitlines()
    assert [x for x in err if x.startswith("error:")] == err[-1:], err
    return err[-1]


def test_torn_train_log_line_is_dropped_on_resume(setup, tmp_path):
    data, student = setup
    out = tmp_path / "out"
    assert _distill(data, student, out, 4) == 0
    before = _log(out)
    with (out / "train_log.jsonl").open("a") as f:
        f.write('{"step": 6, "loss": 3.1')  # killed mid-append: no closing brace, no newline
    assert _distill(data, student, out, 6) == 0
    after = _log(out)  # every line parses again
    assert [r["step"] for r in after] == [2, 4, 6]
    assert after[:2] == before


def test_corrupted_train_log_line_is_a_one_line_error(setup, tmp_path, capsys):
    data, student = setup
    out = tmp_path / "out"
    assert _distill(data, student, out, 4) == 0
    log = out / "train_log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(f"{lines[0]}\n{{garbage\n{lines[1]}\n")  # damage in the middle is not an interrupted write
    assert _distill(data, student, out, 6) == 2
    err = _error(capsys)
    assert err.startswith(f"error: {log}:2: not a train-log entry") and "delete the file" in err
