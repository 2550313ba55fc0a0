"""The user's path through the CLI, stage by stage: collect -> segment -> distill -> evaluate on a tiny model."""

import json

import pytest
import torch

from agentdistill.bpe import train_bpe_tokenizer
from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.testing import save_tiny_pair
from agentdistill.trajectory import read_trajectories

METRIC_KEYS = (
    "success_rate",
    "reasoning_length",
    "cot_match_rate",
    "steps",
    "seconds_per_episode",
    "tokens_per_second",
)


@pytest.fixture
def _one_thread():
    """Tiny models gain nothing from intra-op threads; on a loaded 2-core box, two spinning threads made
    generation ~20x slower (5 s instead of 0.23 s for 16 tokens)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.usefixtures("_one_thread")
def test_collect_segment_distill_evaluate(tmp_path, capsys):
    train, ref = tmp_path / "train.jsonl", tmp_path / "ref.jsonl"
    assert main(["collect", "--env", "alfworld", "--split", "train", "--episodes", "8", "--out", str(train)]) == 0
    assert main(["collect", "--env", "alfworld", "--split", "test", "--episodes", "3", "--out", str(ref)]) == 0
    trajs = read_trajectories(train)
    assert [t.id for t in trajs] == make_env("alfworld").task_ids("train")[:8]
    assert all(t.success and t.meta["teacher"] == "expert" for t in trajs)
    assert len(read_trajectories(ref)) == 3
    assert f"{train}: {{'attempted': 8, 'written': 8, 'success': 8, 'skipped_done': 0}}" in capsys.readouterr().out

    seg = tmp_path / "seg.jsonl"
    assert main(["segment", str(train), "--out", str(seg)]) == 0
    rows = _rows(seg)
    assert [r["id"] for r in rows] == [t.id for t in trajs]
    for r, t in zip(rows, trajs, strict=True):
        assert r["format"] == "alfworld"
        kinds = [s["type"] for s in r["spans"]]
        assert kinds.count("act") == len(t.steps)
        assert kinds.count("reason") == sum(1 for s in t.steps if s.thought)
        for s in r["spans"]:
            piece = r["text"][s["start"] : s["end"]]
            assert piece.strip()
            assert piece.startswith("> think: " if s["type"] == "reason" else "> ") and piece.endswith("\n")

    tok = train_bpe_tokenizer([r["text"] for r in rows], vocab_size=600)
    assert len(tok) == 600
    teacher, student = save_tiny_pair(tmp_path / "models", tok)
    out = tmp_path / "student-sad"
    args = ["distill", "--data", str(train), "--teacher", str(teacher), "--student", str(student),
            "--out", str(out), "--loss", "sad", "--max_steps", "4", "--per_device_train_batch_size", "2",
            "--max_length", "512", "--logging_steps", "2"]  # fmt: skip
    assert main(args) == 0
    for name in ("model.safetensors", "config.json", "tokenizer.json", "config.yaml", ".distill.done"):
        assert (out / name).exists(), name
    log = _rows(out / "train_log.jsonl")
    assert [r["step"] for r in log] == [2, 4]
    assert all(r["loss"] > 0 and r["reason_tokens"] > 0 and r["act_tokens"] > 0 for r in log)

    metrics = tmp_path / "eval" / "metrics.json"
    args = ["evaluate", "--model", str(out), "--env", "alfworld", "--split", "test", "--episodes", "3",
            "--reference", str(ref), "--max_new_tokens", "16", "--out", str(metrics)]  # fmt: skip
    assert main(args) == 0
    m = json.loads(metrics.read_text())
    o = m["overall"]
    assert all(k in o for k in METRIC_KEYS)
    assert o["episodes"] == 3
    assert 0.0 <= o["success_rate"] <= 100.0 and 0.0 <= o["cot_match_rate"] <= 100.0
    assert o["reasoning_length"] >= 0.0
    assert o["seconds_per_episode"] > 0.0 and o["tokens_per_second"] > 0.0
    assert m["config"]["model"] == str(out) and m["config"]["max_new_tokens"] == 16
    episodes = _rows(metrics.with_name("metrics.trajectories.jsonl"))
    assert [e["id"] for e in episodes] == make_env("alfworld").task_ids("test")[:3]
    for e in episodes:
        assert e["success"] or len(e["steps"]) == 50  # a failure runs to the step cap
        assert e["meta"]["episode"]["steps"] == len(e["steps"])
        assert 0 < e["meta"]["episode"]["gen_tokens"] <= 16 * 50 * 3  # <= 16 per turn, <= 3 turns per step
    assert o["steps"] == sum(len(e["steps"]) if e["success"] else 50 for e in episodes) / 3
    assert o["success_rate"] == 100.0 * sum(e["success"] for e in episodes) / 3
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["episodes"] == 3 and printed["steps"] == round(o["steps"], 3)
