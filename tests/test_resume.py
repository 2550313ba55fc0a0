"""Resume that cannot wedge: a torn train-log line, one collect per output."""

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import agentdistill
from agentdistill.agent import expert_episode
from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.testing import save_tiny_pair, tiny_tokenizer

SRC = str(Path(agentdistill.__file__).resolve().parents[1])  # the subprocesses import the code under test


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


# ---- real processes ------------------------------------------------------------------------------------------
_WRAPPER = """\
import json, os, sys, time
from pathlib import Path

def die():
    os._exit(137)  # as SIGKILL: no cleanup, no flush, no finally

{patch}
from agentdistill.cli import main
sys.exit(main(sys.argv[1:]))
"""

PATCHES = {
    # a kill inside the 3rd trajectory append of the collect stage (half a line on disk)
    "collect-append": """
import agentdistill.collect as c
_append, _n = c.append_jsonl, [0]
def append(path, row):
    if Path(path).name == "hotpotqa.jsonl" and Path(path).parent.name == "collect":
        _n[0] += 1
        if _n[0] == 3:
            with open(path, "a") as f:
                f.write(json.dumps(row)[:50])
            die()
    _append(path, row)
c.append_jsonl = append
""",
    # hold the collect lock until the test says so
    "collect-hold": """
import agentdistill.collect as c
_episode, _held = c.expert_episode, [False]
def episode(*a, **kw):
    if not _held[0]:
        _held[0] = True
        Path(os.environ["HELD"]).touch()
        for _ in range(600):
            if Path(os.environ["RELEASE"]).exists():
                break
            time.sleep(0.1)
    return _episode(*a, **kw)
c.expert_episode = episode
""",
}


def _cli(tmp_path: Path, point: str, *argv: str, wait: bool = True, **env: str):
    script = tmp_path / f"cli_{point}.py"
    script.write_text(_WRAPPER.format(patch=PATCHES[point]))
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]), **env}
    cmd = [sys.executable, str(script), *argv]
    if not wait:
        return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=600, check=False)


def _rows(out):
    return [json.loads(x)["id"] for x in out.read_text().splitlines()]


def test_second_collect_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    args = [
        "collect",
        "--env",
        "hotpotqa",
        "--agent",
        "expert",
        "--split",
        "dev",
        "--episodes",
        "4",
        "--out",
        str(out),
    ]
    held, release = tmp_path / "held", tmp_path / "release"
    first = _cli(tmp_path, "collect-hold", *args, wait=False, HELD=str(held), RELEASE=str(release))
    try:
        for _ in range(1200):
            if held.exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert held.exists(), first.communicate()[1][-3000:]
        assert main(args) == 2
        err = _error(capsys)
        assert err.startswith(f"error: {out} is being written by another `collect` process")
        assert f"{out}.lock" in err and "wait for it to finish or choose another --out" in err
    finally:
        release.touch()
        _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    ids = make_env("hotpotqa").task_ids("dev")[:4]
    assert _rows(out) == ids  # each task once
    assert main(args) == 0  # the lock went with the first process
    assert _rows(out) == ids


def test_collect_killed_while_holding_the_lock_does_not_wedge_the_rerun(tmp_path):
    out = tmp_path / "collect" / "hotpotqa.jsonl"
    args = [
        "collect",
        "--env",
        "hotpotqa",
        "--agent",
        "expert",
        "--split",
        "dev",
        "--episodes",
        "4",
        "--out",
        str(out),
    ]
    assert _cli(tmp_path, "collect-append", *args).returncode == 137
    lock = tmp_path / "collect" / "hotpotqa.jsonl.lock"
    assert lock.exists()  # the dead process held it
    with lock.open("a") as f:  # the kernel released the dead process's lock
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    assert main(args) == 0
    assert _rows(out) == make_env("hotpotqa").task_ids("dev")[:4]
