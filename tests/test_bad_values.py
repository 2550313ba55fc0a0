"""Bad values found by an audit: each is one line, exit code 2, before any work (no traceback, no silent use).

Run configs (``--set``, a YAML file, ``configs validate``), ``distill`` flags (``DistillConfig``) and the
agent settings of ``collect`` / ``evaluate`` / the run's sections.
"""

import re

import pytest

from agentdistill.cli import main
from agentdistill.errors import ConfigError
from agentdistill.runconfig import load_run_config


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _run_fails(tmp_path, capsys, *argv: str) -> str:
    """``agentdistill run --preset smoke`` with ``argv``: exit 2, one stderr line, nothing written."""
    out = tmp_path / "run"
    assert main(["run", "--preset", "smoke", "--out", str(out), *argv]) == 2
    assert not (out / "run.yaml").exists() and not out.exists()
    return _err(capsys)


# ---------------------------------------------------------------- 1. sections of the wrong shape


def test_run_envs_not_a_list(tmp_path, capsys):
    message = "`envs` must be a list of env names, e.g. [alfworld, webshop]; got 5"
    assert _run_fails(tmp_path, capsys, "--set", "envs=5") == f"error: preset smoke with --set: {message}"
    exp = tmp_path / "exp.yaml"
    exp.write_text("envs: 5\n")
    assert _run_fails(tmp_path, capsys, "--config", str(exp)) == f"error: {exp}: {message}"
    assert main(["configs", "validate", str(exp)]) == 2
    assert _err(capsys) == f"error: {exp}: {message}"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("distill=[1]", "`distill` must be a mapping of methods, sizes, seeds, train; got [1]"),
        ("teacher=[1]", "`teacher` must be a mapping of model, arch, vocab_size,"),
        ("collect=3", "`collect` must be a mapping of episodes, batch_size,"),
        ("evaluate=x", "`evaluate` must be a mapping of episodes, batch_size,"),
    ],
)
def test_run_sections_must_be_mappings(assignment, message):
    with pytest.raises(ConfigError) as e:
        load_run_config("smoke", sets=[assignment])
    assert str(e.value).startswith(f"preset smoke with --set: {message}")


def test_configs_validate_distill_not_a_mapping(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text("distill: [1]\n")
    assert main(["configs", "validate", str(exp)]) == 2
    assert _err(capsys) == f"error: {exp}: `distill` must be a mapping of methods, sizes, seeds, train; got [1]"


# ---------------------------------------------------------------- 2. seeds numpy cannot take


def test_run_env_seed_out_of_range(tmp_path, capsys):
    err = _run_fails(tmp_path, capsys, "--set", "env_seed=-1")
    assert err == "error: preset smoke with --set: `env_seed` must be in 0..2**32 - 1 (numpy's seed range); got -1"
    with pytest.raises(ConfigError, match=r"`env_seed` must be in 0\.\.2\*\*32 - 1"):
        load_run_config("smoke", sets=[f"env_seed={2**32}"])


def test_run_distill_seeds_out_of_range():
    """Every cell's seed, not only the first one the training arguments were built with."""
    with pytest.raises(ConfigError, match=r"`distill.seeds\[1\]` must be in 0\.\.2\*\*32 - 1 .*; got -1$"):
        load_run_config("smoke", sets=["distill.seeds=[0, -1]"])


def test_collect_and_evaluate_env_seed_out_of_range(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["collect", "--env", "hotpotqa", "--env_seed", "-1", "--out", str(out)]) == 2
    assert _err(capsys) == "error: --env_seed must be in 0..2**32 - 1 (numpy's seed range); got -1"
    assert not out.exists()
    assert main(["evaluate", "--model", str(tmp_path), "--env", "hotpotqa", "--env_seed", "-1"]) == 2
    assert _err(capsys) == "error: --env_seed must be in 0..2**32 - 1 (numpy's seed range); got -1"


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


# ---------------------------------------------------------------- 4. the run's training options, up front


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("distill.train.per_device_train_batch_size=0", "--per_device_train_batch_size must be >= 1; got 0"),
        ("distill.train.learning_rate=-1", "--learning_rate must be a finite number > 0; got -1"),
        ("distill.train.report_to=bogus", "--report_to 'bogus': choose none, all or"),
        ("teacher.train.gradient_accumulation_steps=0", "--gradient_accumulation_steps must be >= 1; got 0"),
        ("teacher.train.max_steps=0", "--max_steps must be >= 1, or -1 (the default)"),
    ],
)
def test_run_checks_training_options_before_the_teacher(tmp_path, capsys, assignment, message):
    err = _run_fails(tmp_path, capsys, "--set", assignment)
    section = assignment.split(".")[0]
    assert err.startswith(f"error: preset smoke with --set: {section}.train") and message in err


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (
            "{name: xs, num_layers: 99}",
            "distill.sizes[xs]: num_layers 99 > the teacher's 2 (teacher.num_layers); a pruned student keeps 1..2 "
            "of its layers",
        ),
        (
            "{name: xs, layers: [0, 5]}",
            "distill.sizes[xs]: layers to keep [0, 5]: give ascending, distinct indices in 0..1 (teacher.num_layers 2)",
        ),
    ],
)
def test_run_checks_pruned_depth_against_the_embedded_teacher(tmp_path, capsys, size, message):
    err = _run_fails(tmp_path, capsys, "--set", f"distill.sizes=[{size}]")
    assert err == f"error: preset smoke with --set: {message}"


def test_scratch_student_may_be_deeper_than_the_teacher():
    cfg = load_run_config("smoke", sets=["distill.sizes=[{name: deep, num_layers: 6, hidden_size: 32, num_heads: 2}]"])
    assert cfg.distill.sizes[0].num_layers == 6


# ---------------------------------------------------------------- 5. sampling temperature, CoT threshold


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("collect.temperature=-1", "`collect.temperature` must be a finite number >= 0 (0 = greedy); got -1"),
        ("evaluate.temperature=.nan", "`evaluate.temperature` must be a finite number >= 0 (0 = greedy); got nan"),
        ("evaluate.cot_threshold=5", "`evaluate.cot_threshold` must be in [0, 1]; got 5"),
        ("evaluate.cot_threshold=.nan", "`evaluate.cot_threshold` must be in [0, 1]; got nan"),
    ],
)
def test_run_sampling_settings(tmp_path, capsys, assignment, message):
    assert _run_fails(tmp_path, capsys, "--set", assignment) == f"error: preset smoke with --set: {message}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--temperature", "-1"], "--temperature must be a finite number >= 0 (0 = greedy); got -1.0"),
        (["--temperature", "nan"], "--temperature must be a finite number >= 0 (0 = greedy); got nan"),
        (["--cot_threshold", "5"], "--cot_threshold must be in [0, 1]; got 5.0"),
        (["--cot_threshold", "nan"], "--cot_threshold must be in [0, 1]; got nan"),
    ],
)
def test_evaluate_sampling_flags(tmp_path, capsys, argv, message):
    assert main(["evaluate", "--model", str(tmp_path), "--env", "hotpotqa", *argv]) == 2
    assert _err(capsys) == f"error: {message}"


def test_collect_temperature_flag(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["collect", "--env", "hotpotqa", "--temperature", "-0.5", "--out", str(out)]) == 2
    assert _err(capsys) == "error: --temperature must be a finite number >= 0 (0 = greedy); got -0.5"
    assert not out.exists()


# ---------------------------------------------------------------- 6. the embedded teacher's vocabulary


def test_run_vocab_size_below_the_byte_alphabet(tmp_path, capsys):
    err = _run_fails(tmp_path, capsys, "--set", "teacher.vocab_size=3")
    assert err == (
        "error: preset smoke with --set: `teacher.vocab_size` must be >= 260 (256 byte tokens + 4 special tokens); "
        "got 3"
    )
    assert load_run_config("smoke", sets=["teacher.vocab_size=260"]).teacher.vocab_size == 260


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["teacher.hidden_size=100", "teacher.num_heads=3"],
            "teacher: hidden_size 100 is not a multiple of num_heads 3",
        ),
        (
            ["distill.sizes=[{name: w, num_layers: 1, hidden_size: 30, num_heads: 4}]"],
            "distill.sizes[w]: hidden_size 30 is not a multiple of num_heads 4",
        ),
    ],
)
def test_hidden_size_must_split_into_the_heads(sets, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_run_config("smoke", sets=sets)


def test_sampling_seed_out_of_range_is_one_line(tmp_path, capsys):
    assert (
        main(["evaluate", "--env", "hotpotqa", "--model", "x/y", "--seed", "-1", "--out", str(tmp_path / "e.json")])
        == 2
    )
    assert capsys.readouterr().err == "error: --seed must be in 0..2**32 - 1 (numpy's seed range); got -1\n"
    with pytest.raises(ConfigError, match=re.escape("`collect.seed` must be in 0..2**32 - 1")):
        load_run_config("smoke", sets=["collect.seed=99999999999999999999"])


def test_a_teacher_cache_without_the_cached_signal_is_refused():
    from agentdistill.trainer import DistillConfig

    with pytest.raises(
        ConfigError, match=re.escape("--teacher_cache c.safetensors is read only with --teacher_signal cached")
    ):
        DistillConfig(output_dir="o", report_to="none", loss="sad", teacher_cache="c.safetensors")
    DistillConfig(output_dir="o", report_to="none", loss="sad", teacher_signal="cached", teacher_cache="c.safetensors")
