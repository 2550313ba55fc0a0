"""Resume that cannot wedge: torn checkpoints, torn train-log lines, --resume_from_checkpoint, one collect per
output, and a real `agentdistill run` killed at several points that still ends with the uninterrupted results."""

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
from agentdistill.report import comparable
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


def _tear(ck: Path, how: str) -> None:
    """Leave ``ck`` as the named interruption does (Trainer writes weights, optimizer, ..., trainer_state.json last)."""
    weights = ck / "model.safetensors"
    if how == "killed_in_weights_save":
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
            (ck / name).unlink()
        os.truncate(weights, weights.stat().st_size // 2)
    elif how == "disk_full_in_state_save":
        state = ck / "trainer_state.json"
        state.write_bytes(state.read_bytes()[:100])
    else:  # weights lost with the page cache, everything else made it
        os.truncate(weights, weights.stat().st_size - 1)


@pytest.mark.parametrize("how", ["killed_in_weights_save", "disk_full_in_state_save", "weights_cut_short"])
def test_torn_checkpoint_is_set_aside_and_training_resumes_from_the_last_complete_one(setup, tmp_path, how, caplog):
    from transformers.trainer_utils import get_last_checkpoint, sort_checkpoints

    data, student = setup
    out = tmp_path / "out"
    assert _distill(data, student, out, 4) == 0
    _tear(out / "checkpoint-4", how)
    with caplog.at_level("INFO", logger="agentdistill"):
        assert _distill(data, student, out, 6) == 0
    torn = [p.name for p in out.iterdir() if p.name.startswith("torn-checkpoint-4-")]
    assert len(torn) == 1
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "agentdistill.checkpoints" and r.levelname == "WARNING"
    ]
    assert len(warnings) == 1 and warnings[0].startswith(f"{out / 'checkpoint-4'} is incomplete (")
    assert warnings[0].endswith(f"set aside as {torn[0]}")
    assert f"resuming from {out / 'checkpoint-2'}" in caplog.text
    assert [r["step"] for r in _log(out)] == [2, 4, 6]
    assert json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6
    # the torn one is out of Trainer's sight: neither resumed from nor counted by save_total_limit's rotation
    assert get_last_checkpoint(str(out)) == str(out / "checkpoint-6")
    assert [Path(p).name for p in sort_checkpoints(str(out))] == ["checkpoint-4", "checkpoint-6"]
    # the resumed curve equals an uninterrupted run's (constant LR: the schedule does not depend on max_steps)
    straight = tmp_path / "straight"
    assert _distill(data, student, straight, 6) == 0
    assert [r["loss"] for r in _log(out)] == pytest.approx([r["loss"] for r in _log(straight)], rel=1e-5)


def test_checkpoint_problem_checks_the_step_and_every_weight_shard(tmp_path):
    from agentdistill.checkpoints import checkpoint_problem
    from agentdistill.testing import tiny_causal_lm

    ck = tmp_path / "checkpoint-3"
    tiny_causal_lm(300, hidden_size=32, num_layers=2).save_pretrained(ck, max_shard_size="20KB")
    shards = sorted(ck.glob("model-*.safetensors"))
    assert len(shards) > 1 and (ck / "model.safetensors.index.json").exists()
    assert checkpoint_problem(ck) == "no trainer_state.json: its save was interrupted"
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    assert checkpoint_problem(ck) == "trainer_state.json says step 2"
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    assert checkpoint_problem(ck) is None
    size = shards[-1].stat().st_size
    os.truncate(shards[-1], size - 3)
    assert checkpoint_problem(ck) == f"{shards[-1].name} is cut short ({size - 3} of {size} bytes)"
    shards[-1].unlink()
    assert checkpoint_problem(ck) == f"{shards[-1].name} is missing or cut short"
    assert checkpoint_problem(tmp_path / "nowhere") == "not a directory"


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


def test_resume_from_checkpoint_path_is_honoured(setup, tmp_path, caplog):
    data, student = setup
    first = tmp_path / "first"
    assert _distill(data, student, first, 4) == 0
    other = tmp_path / "other"
    with caplog.at_level("INFO", logger="agentdistill.distill"):
        assert _distill(data, student, other, 4, "--resume_from_checkpoint", str(first / "checkpoint-2")) == 0
    assert f"resuming from {first / 'checkpoint-2'}" in caplog.text
    # only steps 3-4 were trained, continuing exactly where checkpoint-2 left off
    log = _log(other)
    assert [r["step"] for r in log] == [4]
    assert log[0]["loss"] == pytest.approx(_log(first)[1]["loss"], rel=1e-5)
    # `true` takes the newest complete checkpoint of --output_dir; `false` trains from the start
    assert _distill(data, student, first, 6, "--resume_from_checkpoint", "true") == 0
    assert [r["step"] for r in _log(first)] == [2, 4, 6]
    assert _distill(data, student, first, 2, "--resume_from_checkpoint", "false") == 0
    assert [r["step"] for r in _log(first)] == [2]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("missing", "--resume_from_checkpoint {path}: no such directory"),
        ("torn", "--resume_from_checkpoint {path} is not a complete checkpoint (no trainer_state.json"),
        ("true", "--resume_from_checkpoint true: no complete checkpoint-N in {out}"),
        ("model", "--resume_from_checkpoint {path} is not a checkpoint-N directory (no trainer_state.json"),
    ],
)
def test_bad_resume_from_checkpoint_is_a_one_line_error_before_any_work(setup, tmp_path, capsys, flag, message):
    data, student = setup
    path = tmp_path / "nowhere" / ("model" if flag == "model" else "checkpoint-2")
    if flag in ("torn", "model"):
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"\0" * 10)
    out = tmp_path / "out"
    assert _distill(data, student, out, 2, "--resume_from_checkpoint", "true" if flag == "true" else str(path)) == 2
    assert _error(capsys).startswith("error: " + message.format(path=path, out=out))
    assert not out.exists()  # nothing was done


# ---- real processes ------------------------------------------------------------------------------------------
_WRAPPER = """\
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)  # as in conftest: the same arithmetic as the reference run in the test process

def die():
    os._exit(137)  # as SIGKILL: no cleanup, no flush, no finally

{patch}
from agentdistill.cli import main
sys.exit(main(sys.argv[1:]))
"""

PATCHES = {
    # a kill inside the weights write of the sft cell's last checkpoint: half the file is on disk
    "checkpoint-save": """
import transformers.modeling_utils as mu
_save = mu.safe_save_file
def save(tensors, filename, *a, **kw):
    _save(tensors, filename, *a, **kw)
    if Path(filename).parent.name == "checkpoint-6" and "sft__" in str(filename):
        os.truncate(filename, os.path.getsize(filename) // 2)
        die()
mu.safe_save_file = save
""",
    # a kill inside the train-log append of the token-kd cell's step 6 (after its checkpoint-4)
    "log-append": """
from agentdistill.trainer import _TrainLogCallback
_on_log = _TrainLogCallback.on_log
def on_log(self, args, state, control, logs=None, **kw):
    if "token-kd" in args.output_dir and state.global_step == 6 and logs and "loss" in logs:
        with open(Path(args.output_dir) / "train_log.jsonl", "a") as f:
            f.write(json.dumps({"step": 6, **logs})[:20])
        die()
    return _on_log(self, args, state, control, logs=logs, **kw)
_TrainLogCallback.on_log = on_log
""",
    # a kill once distill is done, before evaluate starts
    "between-stages": """
from agentdistill.pipeline import Pipeline
Pipeline.stage_evaluate = lambda self: die()
""",
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


def _killed_run_equals_uninterrupted(tmp_path: Path, points: list[str]) -> None:
    run = ["run", "--preset", "smoke"]
    ref = tmp_path / "reference"
    assert main([*run, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    for point in points:
        proc = _cli(tmp_path, point, *run, "--out", str(out))
        assert proc.returncode == 137, f"{point}: the rerun did not reach its kill point\n{proc.stderr[-3000:]}"
        if point == "checkpoint-save":  # the debris a kill leaves, that the next rerun must get past
            ck = out / "distill" / "sft__xs__s0" / "checkpoint-6"
            assert (ck / "model.safetensors").exists() and not (ck / "trainer_state.json").exists()
        elif point == "log-append":
            assert not (out / "distill" / "token-kd__xs__s0" / "train_log.jsonl").read_bytes().endswith(b"\n")
    assert main([*run, "--out", str(out)]) == 0
    for cell in ("sft__xs__s0", "token-kd__xs__s0", "sad__xs__s0"):
        assert [r["step"] for r in _log(out / "distill" / cell)] == [2, 4, 6]
        assert not list((out / "distill" / cell).glob("checkpoint-*"))  # torn ones went with the rest
    a = json.loads((out / "results.json").read_text())
    b = json.loads((ref / "results.json").read_text())
    assert comparable(a) == comparable(b)


def test_run_killed_in_checkpoint_save_log_append_and_between_stages_ends_as_uninterrupted(tmp_path):
    _killed_run_equals_uninterrupted(tmp_path, ["checkpoint-save", "log-append", "between-stages"])


@pytest.mark.slow
def test_run_killed_at_every_point_ends_as_uninterrupted(tmp_path):
    _killed_run_equals_uninterrupted(tmp_path, ["collect-append", "checkpoint-save", "log-append", "between-stages"])


def _rows(out):
    return [json.loads(x)["id"] for x in out.read_text().splitlines()]


def _collect_args(out):
    return [
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


def test_second_collect_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    args = _collect_args(out)
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
    args = _collect_args(out)
    assert _cli(tmp_path, "collect-append", *args).returncode == 137
    lock = tmp_path / "collect" / "hotpotqa.jsonl.lock"
    assert lock.exists()  # the dead process held it
    with lock.open("a") as f:  # the kernel released the dead process's lock
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    assert main(args) == 0
    assert _rows(out) == make_env("hotpotqa").task_ids("dev")[:4]


def test_second_run_on_the_same_out_is_refused_before_any_work(tmp_path, capsys):
    from agentdistill.files import exclusive_lock

    out = tmp_path / "run"
    out.mkdir()
    with exclusive_lock(out / "run.yaml", "run"):  # another `run` holds it
        assert main(["run", "--preset", "smoke", "--out", str(out)]) == 2
    err = _error(capsys)
    assert err == (
        f"error: {out / 'run.yaml'} is being written by another `run` process (it holds {out / 'run.yaml.lock'}); "
        "wait for it to finish or choose another --out"
    )
    assert sorted(p.name for p in out.iterdir()) == ["run.yaml.lock"]  # nothing else was written
