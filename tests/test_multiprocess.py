"""Two training processes are one run: the README's CPU launch starts 2 ranks (gloo), and the span
metrics in ``train_log.jsonl`` are those of the global batch, not rank 0's share."""

import json
import os
import subprocess
import sys

import pytest
import torch

from agentdistill.agent import expert_episode
from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.modeling import load_causal_lm
from agentdistill.testing import save_tiny_pair, tiny_tokenizer

# The README's command (section "Several processes"), without `accelerate` on PATH.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--main_process_port", "0", "-m", "agentdistill"]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data, a teacher, and a student that is the teacher with noise, so top-1 agreement is neither 0 nor 1."""
    d = tmp_path_factory.mktemp("mp")
    rows = []
    for env in ("alfworld", "hotpotqa"):
        rows += [expert_episode(env, t).to_json() for t in make_env(env).task_ids("train")[:4]]
    data = d / "trajs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = tiny_tokenizer()
    teacher, _ = save_tiny_pair(d, tok)
    student = load_causal_lm(teacher)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * p.std().nan_to_num(0.02) * 0.5)
    student.save_pretrained(d / "noisy")
    tok.save_pretrained(d / "noisy")
    return d, data, teacher, d / "noisy"


def _args(setup, out, per_device_batch):
    d, data, teacher, student = setup
    return ["distill", "--data", str(data), "--teacher", str(teacher), "--student", str(student), "--out", str(out),
            "--per_device_train_batch_size", str(per_device_batch), "--max_steps", "3", "--logging_steps", "1",
            "--max_length", "256", "--curriculum", "none", "--lr_scheduler_type", "constant", "--save_steps", "100"]  # fmt: skip


def _log(out):
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def test_two_cpu_processes_log_the_global_batch(setup, tmp_path):
    assert main(_args(setup, tmp_path / "one", 4)) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    run = subprocess.run(
        [*LAUNCH, *_args(setup, tmp_path / "two", 2)], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = _log(tmp_path / "one"), _log(tmp_path / "two")
    assert [r["step"] for r in two] == [1, 2, 3]  # one run, logged once (not one run per process)
    assert any(0 < r["top1_agree_reason"] < 1 for r in one)  # agreement is a real fraction here
    for a, b in zip(one, two, strict=True):
        # `epoch` advances by the global batch: equal only if 2 ranks x 2 sequences ran per step; the
        # span counts and metrics then cover the same 4 sequences as the single process's
        assert (b["reason_tokens"], b["act_tokens"], b["epoch"]) == (a["reason_tokens"], a["act_tokens"], a["epoch"])
        for key in ("loss", "loss_cot", "loss_act", "top1_agree_reason", "top1_agree_act"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key


def test_a_launch_that_starts_one_of_several_processes_is_an_error(setup, tmp_path):
    """Without --multi_gpu, `accelerate launch --num_processes 2` on a CPU starts a single process."""
    cmd = [c for c in LAUNCH if c != "--multi_gpu"]
    run = subprocess.run([*cmd, *_args(setup, tmp_path / "o", 2)], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "error: accelerate launch started 1 process although --num_processes > 1 was asked for" in run.stderr
    assert not (tmp_path / "o" / "train_log.jsonl").exists()
