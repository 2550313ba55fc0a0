"""Bad values found by an audit: each is one line, exit code 2, before any work (no traceback, no silent use).

Run configs (``--set``, a YAML file, ``configs validate``), ``distill`` flags (``DistillConfig``) and the
agent settings of ``collect`` / ``evaluate`` / the run's sections.
"""

import pytest

from agentdistill.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---------------------------------------------------------------- 3. distill flags (DistillConfig)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("learning_rate", "-1", "--learning_rate must be a finite number > 0; got -1.0"),
        ("learning_rate", "nan", "--learning_rate must be a finite number > 0; got nan"),
        ("per_device_train_batch_size", "0", "--per_device_train_batch_size must be >= 1; got 0"),
        ("per_device_train_batch_size", "-2", "--per_device_train_batch_size must be >= 1; got -2"),
        ("gradient_accumulation_steps", "0", "--gradient_accumulation_steps must be >= 1; got 0"),
        ("temperature", "nan", "--temperature must be a finite number > 0; got nan"),
        ("report_to", "bogus", "--report_to 'bogus': choose none, all or loggers among "),
        ("seed", "-1", "--seed must be in 0..2**32 - 1 (numpy's seed range); got -1"),
        ("lambda_reason", "nan", "--lambda_reason must be a finite number >= 0; got nan"),
        ("lambda_act", "-1", "--lambda_act must be a finite number >= 0; got -1.0"),
        ("save_steps", "-1", "--save_steps must be > 0 (a number of steps, or a fraction of the training steps"),
        ("save_steps", "0", "--save_steps must be > 0"),
        ("logging_steps", "0", "--logging_steps must be > 0"),
        ("max_grad_norm", "-1", "--max_grad_norm must be >= 0 (0 = no clipping); got -1.0"),
        ("num_buckets", "1", "--num_buckets 1: --curriculum buckets needs --num_buckets >= 2"),
        ("max_steps", "-3", "--max_steps must be >= 1, or -1 (the default) to train --num_train_epochs; got -3"),
        ("max_steps", "0", "--max_steps must be >= 1, or -1 (the default) to train --num_train_epochs; got 0"),
        ("num_train_epochs", "nan", "--num_train_epochs must be a finite number > 0; got nan"),
        ("warmup_steps", "-1", "--warmup_steps must be a finite number >= 0; got -1.0"),
    ],
)
def test_distill_rejects_bad_numbers(tmp_path, capsys, flag, value, message):
    out = tmp_path / "o"
    argv = ["distill", "--data", str(tmp_path / "t.jsonl"), "--student", str(tmp_path), "--out", str(out)]
    assert main([*argv, f"--{flag}", value]) == 2
    assert _err(capsys).startswith(f"error: {message}")
    assert not out.exists()


def test_distill_defaults_still_validate(capsys):
    from agentdistill.trainer import DistillConfig

    DistillConfig(output_dir="unused")  # nothing is created
    with pytest.raises(SystemExit) as e:
        main(["distill", "--help"])
    assert e.value.code == 0
    assert "--num_buckets" in capsys.readouterr().out


def test_distill_config_keeps_max_steps_unset_and_fractional_steps(tmp_path):
    from agentdistill.trainer import DistillConfig

    cfg = DistillConfig(output_dir=str(tmp_path / "o"), max_steps=-1, save_steps=0.5, max_grad_norm=0.0)
    assert cfg.max_steps == -1 and cfg.save_steps == 0.5
    assert not (tmp_path / "o").exists()
