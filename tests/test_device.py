"""Where the agent's model runs: ``modeling.resolve_device_dtype`` and every path that loads a policy."""

import pytest
import torch

from agentdistill.agent import HFPolicy
from agentdistill.cli import main
from agentdistill.collect import CollectArgs, collect
from agentdistill.errors import ConfigError
from agentdistill.evaluate import EvalArgs, evaluate
from agentdistill.modeling import resolve_device_dtype
from agentdistill.pipeline import Pipeline
from agentdistill.runconfig import CollectSpec, EvalSpec, load_run_config


def _no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _fake_cuda(monkeypatch, bf16: bool, count: int = 2):
    """CUDA as far as the resolution logic can see; nothing is allocated on a device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)


@pytest.mark.parametrize(
    ("device", "dtype", "expected"),
    [
        ("auto", "auto", ("cpu", torch.float32)),
        ("cpu", "auto", ("cpu", torch.float32)),
        ("auto", "bfloat16", ("cpu", torch.bfloat16)),
        ("cpu", "float16", ("cpu", torch.float16)),
    ],
)
def test_without_a_gpu_auto_is_cpu_float32(monkeypatch, device, dtype, expected):
    _no_accelerator(monkeypatch)
    dev, dt = resolve_device_dtype(device, dtype)
    assert (dev.type, dt) == expected


@pytest.mark.parametrize(
    ("bf16", "device", "dtype", "expected"),
    [
        (True, "auto", "auto", (torch.device("cuda"), torch.bfloat16)),
        (False, "auto", "auto", (torch.device("cuda"), torch.float16)),  # e.g. a T4: bf16 only emulated
        (True, "cuda:1", "auto", (torch.device("cuda", 1), torch.bfloat16)),
        (True, "cuda", "float32", (torch.device("cuda"), torch.float32)),
        (True, "cpu", "auto", (torch.device("cpu"), torch.float32)),  # --device cpu on a GPU box stays fp32
    ],
)
def test_with_cuda_auto_is_the_gpu_in_bf16_where_supported(monkeypatch, bf16, device, dtype, expected):
    _fake_cuda(monkeypatch, bf16)
    assert resolve_device_dtype(device, dtype) == expected


def test_a_device_that_is_not_there_is_a_one_line_error(monkeypatch):
    _no_accelerator(monkeypatch)
    with pytest.raises(ConfigError, match=r"^--device cuda: no CUDA device is visible to torch; use --device auto"):
        resolve_device_dtype("cuda", "auto")
    _fake_cuda(monkeypatch, True, count=2)
    with pytest.raises(ConfigError, match=r"^--device cuda:2: only 2 CUDA device\(s\) visible"):
        resolve_device_dtype("cuda:2", "auto")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "gpu"}, "--device 'gpu': choose auto, cpu, cuda, cuda:N (N = GPU index) or mps"),
        ({"device": "cuda:x"}, "--device 'cuda:x': choose auto"),
        ({"torch_dtype": "fp16"}, "--torch_dtype 'fp16': choose auto, float32, bfloat16 or float16"),
    ],
)
def test_invalid_values_fail_when_the_arguments_are_built(kwargs, message):
    for cls in (EvalArgs, CollectArgs):
        with pytest.raises(ConfigError) as exc:
            cls(**kwargs)
        assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_cli_and_run_config_reject_a_bad_device_before_any_work(tmp_path, capsys):
    assert (
        main(["evaluate", "--model", str(tmp_path / "m"), "--device", "gpu", "--out", str(tmp_path / "m.json")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --device 'gpu': choose auto, cpu, cuda, cuda:N (N = GPU index) or mps"]
    assert not (tmp_path / "m.json").exists()
    with pytest.raises(SystemExit):  # --torch_dtype is a Literal: argparse lists the choices
        main(["collect", "--agent", "x", "--torch_dtype", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
    with pytest.raises(
        ConfigError,
        match=r"^preset smoke with --set: `evaluate\.torch_dtype` must be one of auto, float32, bfloat16, float16; got 'half'",
    ):
        load_run_config("smoke", sets=["evaluate.torch_dtype=half"])
    with pytest.raises(ConfigError, match=r"^preset smoke with --set: collect\.device 'gpu0': choose auto"):
        load_run_config("smoke", sets=["collect.device=gpu0"])


def _placement(policy: HFPolicy) -> set[tuple[str, torch.dtype]]:
    return {(p.device.type, p.dtype) for p in policy.model.parameters()}


def test_from_pretrained_places_the_model(tiny_pair):
    teacher, _ = tiny_pair
    assert _placement(HFPolicy.from_pretrained(teacher)) == {("cpu", torch.float32)}  # no GPU here: auto = cpu
    assert _placement(HFPolicy.from_pretrained(teacher, torch_dtype="bfloat16")) == {("cpu", torch.bfloat16)}


@pytest.fixture
def spy(monkeypatch):
    """Records every policy ``HFPolicy.from_pretrained`` builds."""
    built: list[HFPolicy] = []
    real = HFPolicy.from_pretrained.__func__

    def record(cls, *args, **kwargs):
        built.append(real(cls, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(HFPolicy, "from_pretrained", classmethod(record))
    return built


def test_every_command_loads_through_the_one_placement(tiny_pair, tmp_path, spy):
    """collect, evaluate and the run stages pass --device/--torch_dtype down (bf16 is checkable on a CPU)."""
    teacher, _ = tiny_pair
    common = {"env": "hotpotqa", "episodes": 1, "max_steps": 1, "max_new_tokens": 4, "torch_dtype": "bfloat16"}
    collect(CollectArgs(agent=str(teacher), split="dev", out=str(tmp_path / "c.jsonl"), **common))
    metrics = evaluate(EvalArgs(model=str(teacher), split="dev", out=str(tmp_path / "m.json"), **common))
    assert metrics["config"]["torch_dtype"] == "bfloat16"
    Pipeline._policy(None, teacher, CollectSpec(torch_dtype="bfloat16"))  # type: ignore[arg-type]
    Pipeline._policy(None, teacher, EvalSpec(device="cpu", torch_dtype="bfloat16"))  # type: ignore[arg-type]
    assert [_placement(p) for p in spy] == [{("cpu", torch.bfloat16)}] * 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_evaluate_runs_the_model_on_the_gpu(tiny_pair, tmp_path, spy):
    teacher, _ = tiny_pair
    metrics = evaluate(
        EvalArgs(
            model=str(teacher), env="alfworld", split="dev", episodes=2, max_steps=2, out=str(tmp_path / "m.json")
        )
    )
    assert metrics["overall"]["episodes"] == 2
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    assert _placement(spy[0]) == {("cuda", expected)}


# ---- the teacher's dtype in distillation: --teacher_dtype ------------------------------------------
@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_teacher_dtype_on_cpu_follows_the_cpus_bf16_instructions(monkeypatch, native, expected):
    import agentdistill.modeling as m

    monkeypatch.setattr(m, "cpu_bf16_native", lambda: native)
    assert m.teacher_dtype("auto", "cpu") == expected
    assert m.teacher_dtype("float32", "cpu") == torch.float32  # an explicit choice is not measured
    assert m.teacher_dtype("bfloat16", "cpu") == torch.bfloat16


def test_auto_teacher_dtype_on_cuda_is_bf16_where_native(monkeypatch):
    import agentdistill.modeling as m

    _fake_cuda(monkeypatch, bf16=True)
    assert m.teacher_dtype("auto", "cuda") == torch.bfloat16
    _fake_cuda(monkeypatch, bf16=False)
    assert m.teacher_dtype("auto", "cuda:0") == torch.float32


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx512f avx512_bf16 avx512_vnni", True), ("fpu amx_bf16 amx_tile", True), ("fpu avx2 avx512f", False)],
)
def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    from agentdistill.modeling import cpu_bf16_native

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_bf16_native(str(info)) is native
    assert cpu_bf16_native(str(tmp_path / "none")) is False


def test_bf16_probe_measures_this_cpu():
    from agentdistill.modeling import cpu_bf16_speedup

    speedup = cpu_bf16_speedup(n=128, repeats=2)
    assert speedup > 0 and speedup == cpu_bf16_speedup(n=128, repeats=2)  # measured once per process


def test_trainer_runs_the_live_teacher_in_the_chosen_dtype(monkeypatch, tiny_pair, tmp_path, tok):
    import agentdistill.modeling as m
    from agentdistill.data import DistillCollator, EncodedDataset, encode_records
    from agentdistill.modeling import load_causal_lm
    from agentdistill.trainer import DistillConfig, DistillTrainer
    from agentdistill.trajectory import record_from_json

    rows = [{"schema": 1, "id": "a", "prompt": "Find the mug.", "steps": [{"thought": "Look on the desk.", "action": "go to desk 1", "observation": "You see a mug 1."}]}]  # fmt: skip
    examples = encode_records([record_from_json(r) for r in rows], tok, fmt="react")
    losses = {}
    for native in (True, False):
        monkeypatch.setattr(m, "cpu_bf16_native", lambda n=native: n)
        args = DistillConfig(output_dir=str(tmp_path / str(native)), report_to="none", use_cpu=True)
        trainer = DistillTrainer(
            model=load_causal_lm(tiny_pair[1]), args=args, teacher=load_causal_lm(tiny_pair[0]),
            train_dataset=EncodedDataset(examples), data_collator=DistillCollator(),
        )  # fmt: skip
        dtype = next(trainer.teacher.parameters()).dtype
        batch = trainer._prepare_inputs(trainer.data_collator(examples))
        trainer.get_batch_samples(iter([batch]), 1, torch.device("cpu"))
        loss = trainer.compute_loss(trainer.model, batch)
        assert loss.dtype == torch.float32  # the loss stays float32 either way
        losses[dtype] = loss.item()
    assert set(losses) == {torch.bfloat16, torch.float32}
    assert losses[torch.bfloat16] == pytest.approx(losses[torch.float32], rel=1e-2)


def test_teacher_dtype_is_validated(tmp_path):
    from agentdistill.trainer import DistillConfig

    with pytest.raises(ConfigError, match="--teacher_dtype float16: choose auto, float32 or bfloat16"):
        DistillConfig(output_dir=str(tmp_path), teacher_dtype="float16")
