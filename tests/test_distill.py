import json

import pytest
import torch

from agentdistill.agent import expert_episode
from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.testing import save_tiny_pair, tiny_tokenizer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("distill")
    rows = []
    for env in ("alfworld", "hotpotqa"):
        rows += [expert_episode(env, t).to_json() for t in make_env(env).task_ids("train")[:6]]
    data = d / "trajs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    teacher, student = save_tiny_pair(d, tiny_tokenizer())
    return d, data, teacher, student


def _log(out):
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def _args(data, teacher, student, out, *extra):
    return [
        "distill", "--data", str(data), "--teacher", str(teacher), "--student", str(student), "--out", str(out),
        "--per_device_train_batch_size", "2", "--max_length", "256", "--logging_steps", "2", "--save_steps", "3",
        "--lr_scheduler_type", "constant", *extra,
    ]  # fmt: skip


def test_distill_writes_student_log_and_resumes(setup):
    d, data, teacher, student = setup
    out = d / "sad"
    assert main(_args(data, teacher, student, out, "--max_steps", "6")) == 0
    for name in ("model.safetensors", "config.json", "tokenizer.json", "config.yaml", ".distill.done"):
        assert (out / name).exists(), name
    assert (out / "checkpoint-6" / "trainer_state.json").exists()
    log = _log(out)
    assert [r["step"] for r in log] == [2, 4, 6]
    for key in ("loss", "loss_cot", "loss_act", "reason_tokens", "act_tokens", "top1_agree_reason", "top1_agree_act"):
        assert key in log[-1]
    assert sum(r["reason_tokens"] for r in log) > 0 and sum(r["act_tokens"] for r in log) > 0
    assert "loss: sad" in (out / "config.yaml").read_text()
    # rerun with a larger budget resumes from checkpoint-6: the log continues, each step once
    assert main(_args(data, teacher, student, out, "--max_steps", "8")) == 0
    log2 = _log(out)
    assert [r["step"] for r in log2] == [2, 4, 6, 8]
    assert log2[:3] == log
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    # an uninterrupted 8-step run gives the same loss curve (constant LR: the schedule does not depend on max_steps)
    straight = d / "straight"
    assert main(_args(data, teacher, student, straight, "--max_steps", "8")) == 0
    for a, b in zip(_log(straight), log2, strict=True):
        assert a["step"] == b["step"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["loss_cot"] == pytest.approx(b["loss_cot"], rel=1e-5)


def test_sft_needs_no_teacher(setup):
    d, data, _teacher, student = setup
    out = d / "sft"
    args = ["distill", "--data", str(data), "--student", str(student), "--out", str(out), "--loss", "sft",
            "--max_steps", "2", "--logging_steps", "1", "--max_length", "256"]  # fmt: skip
    assert main(args) == 0
    assert _log(out)[-1]["loss"] > 0


def test_bad_inputs_one_line_errors(setup, tmp_path, capsys):
    d, data, teacher, student = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text().splitlines()[0] + "\n{not json\n")
    assert main(_args(bad, teacher, student, tmp_path / "o", "--max_steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and f"{bad}:2" in err and "invalid JSON" in err and "--skip_bad" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(_args(empty, teacher, student, tmp_path / "o", "--max_steps", "1")) == 2
    assert "no records" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects a value outside the choices
        main(_args(data, teacher, student, tmp_path / "o", "--divergence", "kl"))
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(_args(data, teacher, student, tmp_path / "o", "--curriculum", "buckets", "--num_buckets", "1")) == 2
    assert "--num_buckets >= 2" in capsys.readouterr().err


def test_vocab_mismatch_is_clear(setup, tmp_path, capsys):
    d, data, teacher, _student = setup
    other_tok = tiny_tokenizer(vocab_size=300)
    _t, other_student = save_tiny_pair(tmp_path, other_tok)
    assert main(_args(data, teacher, other_student, tmp_path / "o", "--max_steps", "1")) == 2
    err = capsys.readouterr().err
    assert "teacher tokenizer" in err and str(teacher) in err and "shared vocabulary" in err


def test_skip_bad_skips_and_counts(setup, tmp_path):
    d, data, teacher, student = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text() + "{not json\n")
    out = tmp_path / "o"
    assert main([*_args(bad, teacher, student, out, "--max_steps", "1"), "--skip_bad"]) == 0
    assert json.loads((out / ".distill.done").read_text())["skipped_records"] == 1


@pytest.mark.parametrize("normalize", ["token", "span"])
def test_batch4_ga1_equals_batch1_ga4(setup, tmp_path, normalize):
    """Global normalisation: one SGD step gives the same loss and weights however the batch is split."""
    from safetensors.torch import load_file

    d, data, teacher, student = setup
    runs = {}
    for bs, ga in ((4, 1), (1, 4)):
        out = tmp_path / f"b{bs}g{ga}"
        args = ["distill", "--data", str(data), "--teacher", str(teacher), "--student", str(student),
                "--out", str(out), "--max_steps", "1", "--per_device_train_batch_size", str(bs),
                "--gradient_accumulation_steps", str(ga), "--optim", "sgd", "--learning_rate", "1.0",
                "--lr_scheduler_type", "constant", "--max_grad_norm", "0", "--logging_steps", "1",
                "--max_length", "256", "--normalize", normalize, "--lambda_act", "2.0"]  # fmt: skip
        assert main(args) == 0
        runs[(bs, ga)] = (_log(out)[-1], load_file(str(out / "model.safetensors")))
    (log_a, w_a), (log_b, w_b) = runs[(4, 1)], runs[(1, 4)]
    assert log_a["loss"] == pytest.approx(log_b["loss"], rel=1e-5)
    base = load_file(str(student / "model.safetensors"))
    for k in w_a:
        torch.testing.assert_close(w_a[k], w_b[k], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(w_a[k], base[k]) for k in w_a)  # the step really moved the weights


def _train(setup, out, *extra):
    d, data, teacher, student = setup
    args = ["distill", "--data", str(data), "--teacher", str(teacher), "--student", str(student), "--out", str(out),
            "--max_steps", "50", "--per_device_train_batch_size", "4", "--learning_rate", "3e-3",
            "--logging_steps", "10", "--max_length", "256", "--curriculum", "none", "--save_steps", "1000",
            "--lr_scheduler_type", "constant", *extra]  # fmt: skip
    assert main(args) == 0
    return _log(out)


def test_sad_learns_and_lambda_act_zero_leaves_actions(setup, tmp_path):
    log = _train(setup, tmp_path / "sad")
    assert log[-1]["loss_cot"] < 0.5 * log[0]["loss_cot"]
    assert log[-1]["loss_act"] < 0.5 * log[0]["loss_act"]
    assert log[-1]["top1_agree_act"] > log[0]["top1_agree_act"] + 0.2
    no_act = _train(setup, tmp_path / "no_act", "--lambda_act", "0")
    assert no_act[-1]["loss_cot"] < 0.5 * no_act[0]["loss_cot"]
    # Without its own term the action loss falls much less (it still falls some: the student's weights are
    # shared, and a random tiny teacher's next-token distribution is similar on both span kinds).
    assert no_act[-1]["loss_act"] > 1.5 * log[-1]["loss_act"]
    assert no_act[-1]["top1_agree_act"] < log[-1]["top1_agree_act"] - 0.05
