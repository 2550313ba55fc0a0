"""Loading teacher/student models and tokenizers, the vocabulary check, and final hidden states.

The loss never asks a model for full ``(B, T, V)`` logits: it takes the decoder's final hidden
states and the output embedding and projects only supervised positions, chunk by chunk
(``losses``). ``final_hidden`` calls the (possibly DDP/FSDP-wrapped) model's own forward, so
gradient synchronisation hooks still fire, and captures the decoder output with a forward hook
while asking the head for a single position (``logits_to_keep=1``).
"""

import functools
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from agentdistill.bpe import BOS_ID, EOS_ID, PAD_ID
from agentdistill.errors import ConfigError, VocabMismatchError
from agentdistill.runconfig import check_device_dtype

logger = logging.getLogger(__name__)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def looks_local(name_or_path: str | Path) -> bool:
    """Whether a model name can only be a local path, never a hub id.

    A hub id is ``name`` or ``namespace/name`` (``Qwen/Qwen2.5-0.5B``): one ``/`` at most, no leading
    ``/``, ``.`` or ``~``, no backslash. So a ``Path``, or a name that starts with ``/``, ``./``,
    ``../`` or ``~``, is ``.`` or ``..``, has a backslash, or has two or more ``/`` is local.
    ``runs/x`` is not: it is a valid hub id, and only the hub can say it does not exist.
    """
    if isinstance(name_or_path, Path):
        return True
    s = str(name_or_path)
    return s in (".", "..") or s.startswith(("/", "./", "../", "~")) or "\\" in s or s.count("/") >= 2


def check_model_path(name_or_path: str | Path, flag: str = "model") -> None:
    """Raise ``ConfigError`` at once for a local-looking model path that does not exist (``looks_local``);
    without this check ``from_pretrained`` retries the hub for about 30 s before failing."""
    if looks_local(name_or_path) and not Path(name_or_path).expanduser().exists():
        raise ConfigError(
            f"{flag} {name_or_path}: no such file or directory; pass an existing model directory or a hub id "
            "(namespace/name)"
        )


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def check_model_dir(name_or_path: str | Path, flag: str = "model") -> None:
    """Raise ``ConfigError`` at once, before any work, for a local model directory that cannot load: no
    ``config.json``, one that is not a JSON object with a ``model_type``, or a ``.safetensors`` weights file
    whose header does not read (corrupt or truncated: the header says how long the file must be). A hub id,
    or a path that is not a directory, is left to ``from_pretrained``."""
    path = Path(name_or_path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{flag} {name_or_path} is a file; pass a model directory (config.json, weights) or a hub id"
        )
    if not path.is_dir():
        return
    config = path / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{flag} {name_or_path}: no config.json there, so it is not a model directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{flag} {name_or_path}: config.json does not read as JSON ({e}); re-save the model"
        ) from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise ConfigError(
            f"{flag} {name_or_path}: config.json is not a model config (a JSON object with a model_type); re-save the model"
        )
    from safetensors import safe_open

    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as e:  # SafetensorError and OSError: the header does not read or the file is short
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"{flag} {name_or_path}: weights file {weights.name} is corrupt or truncated ({first}); "
                "re-save or re-download the model"
            ) from None


def load_tokenizer(name_or_path: str | Path) -> Any:
    from transformers import AutoTokenizer

    check_model_path(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ConfigError(
            f"{name_or_path}: no tokenizer there (none of {', '.join(TOKENIZER_FILES)}); save the tokenizer "
            "beside the model (tokenizer.save_pretrained(DIR)) or pass a directory that has one"
        )
    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"cannot load a tokenizer from {name_or_path!r} ({first}); pass a model directory or hub name"
        ) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # causal LMs often ship without a pad token; padding is masked anyway
    return tok


def load_causal_lm(name_or_path: str | Path, dtype: str = "float32") -> Any:
    from transformers import AutoModelForCausalLM

    check_model_path(name_or_path)
    check_model_dir(name_or_path)
    try:
        return AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=getattr(torch, dtype))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load a causal LM from {name_or_path!r} ({e}); pass a model directory or hub name"
        ) from None


def resolve_device_dtype(device: str = "auto", torch_dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The device and dtype the agent's model runs in (DESIGN §8: fp32 on CPU, bf16 on GPUs that support it).

    ``auto`` device: ``cuda`` (the current CUDA device) when CUDA is available, else ``mps``, else
    ``cpu``. ``auto`` dtype: float32 on a CPU, bfloat16 on a CUDA device that computes in it natively,
    float16 on other accelerators. Nothing is allocated on the device.

    Raises:
        ConfigError: for a value the flags do not accept, or a device that is not there.
    """
    check_device_dtype(device, torch_dtype)
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA device is visible to torch; use --device auto or cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible (cuda:0..); pick another"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available on this machine; use --device auto or cpu")
    if torch_dtype != "auto":
        return dev, getattr(torch, torch_dtype)
    if dev.type == "cpu":
        return dev, torch.float32
    if dev.type == "cuda":
        return dev, torch.bfloat16 if _native_bf16() else torch.float16
    return dev, torch.float16


def _native_bf16() -> bool:
    """Whether the current CUDA device computes in bfloat16 natively (emulated bf16 is slower than fp16)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3 has no emulation flag
        return bool(torch.cuda.is_bf16_supported())


_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # instructions torch's oneDNN kernels use for bf16 matmuls


@functools.cache
def cpu_bf16_native(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 matmul instructions (AVX-512 BF16 or AMX), read from its flags: a fact of
    the machine, so every process and every rerun of a run decides alike (a timing would not).
    ``False`` where the flags cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[-1].split()}
    return bool(flags & _CPU_BF16_FLAGS)


@functools.cache
def cpu_bf16_speedup(n: int = 768, repeats: int = 7) -> float:
    """How many times faster an ``n × n`` bfloat16 matmul runs than a float32 one on this CPU.

    Measured, not read from CPU flags, since what counts is whether torch's kernels use them: about
    2-3 on a 2-core EPYC with AVX-512 BF16, about 0.01 on one without native bf16. The two dtypes take
    turns (best of ``repeats`` each), so a busy machine slows both alike; a first bf16 run far slower
    than float32 ends the probe at once (~1 s on a CPU without bf16). Runs once per process.
    """
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    torch.mm(a32[:64, :64], b32[:64, :64])  # kernel set-up (oneDNN primitives) outside the timing
    torch.mm(a16[:64, :64], b16[:64, :64])
    best = {torch.float32: float("inf"), torch.bfloat16: float("inf")}
    for i in range(repeats):
        for a, b in ((a32, b32), (a16, b16)):
            t = time.perf_counter()
            torch.mm(a, b)
            best[a.dtype] = min(best[a.dtype], time.perf_counter() - t)
        if i == 0 and best[torch.bfloat16] > 8 * best[torch.float32]:
            break
    return best[torch.float32] / best[torch.bfloat16]


def teacher_dtype(choice: str, device: torch.device | str) -> torch.dtype:
    """The dtype the teacher runs in for ``--teacher_dtype``.

    ``auto``: bfloat16 where bf16 matmuls are native (a CUDA device that computes in bf16 natively, a
    CPU with AVX-512 BF16 or AMX: ``cpu_bf16_native``; about 2x float32 on such a CPU,
    ``cpu_bf16_speedup``), float32 elsewhere. Decided from the hardware, never from a timing, so
    processes and reruns agree. Only the teacher's forward changes: its logits carry bf16 rounding, and
    the loss is still computed in float32.
    """
    if choice != "auto":
        return getattr(torch, choice)
    device = torch.device(device)
    if device.type == "cuda":
        fast, why = _native_bf16(), "native bf16" if _native_bf16() else "no native bf16"
    elif device.type == "cpu":
        fast = cpu_bf16_native()
        why = "the CPU has bf16 instructions" if fast else "the CPU has no bf16 instructions"
    else:
        fast, why = False, f"not measured on {device.type}"
    dtype = torch.bfloat16 if fast else torch.float32
    logger.info("--teacher_dtype auto: the teacher runs in %s (%s)", str(dtype).removeprefix("torch."), why)
    return dtype


def load_agent_model(name_or_path: str | Path, device: str = "auto", torch_dtype: str = "auto") -> Any:
    """``load_causal_lm`` in the resolved dtype, moved to the resolved device (``resolve_device_dtype``)."""
    dev, dtype = resolve_device_dtype(device, torch_dtype)
    model = load_causal_lm(name_or_path, dtype=str(dtype).removeprefix("torch.")).to(dev)
    logger.info("%s: on %s in %s", name_or_path, dev, str(dtype).removeprefix("torch."))
    return model


def student_from_config(config_path: str | Path, seed: int = 0) -> Any:
    """A freshly initialised student from a ``config.json`` (file or directory)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    check_model_path(config_path)
    try:
        config = AutoConfig.from_pretrained(str(config_path))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read a model config from {config_path!r} ({e}); pass a config.json") from None
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def causal_lm_config(
    vocab_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    arch: str = "llama",
) -> Any:
    """A ``transformers`` config for a small causal LM (Llama: RoPE, RMSNorm, SiLU, untied head; or GPT-2),
    with the special-token ids of the tokenizers ``bpe`` trains (pad 0, eos 2, bos 3)."""
    from transformers import GPT2Config, LlamaConfig

    if arch == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size or int(2.7 * hidden_size),
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_position_embeddings,
            tie_word_embeddings=False,
            pad_token_id=PAD_ID,
            eos_token_id=EOS_ID,
            bos_token_id=BOS_ID,
        )
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=intermediate_size,
            n_positions=max_position_embeddings,
            pad_token_id=PAD_ID,
            eos_token_id=EOS_ID,
            bos_token_id=BOS_ID,
        )
    raise ConfigError(f"unknown architecture {arch!r}; choose llama or gpt2")


def check_vocab(
    teacher_tok: Any,
    student_tok: Any,
    teacher: Any,
    student: Any,
    names: tuple[str, str],
    teacher_vocab_size: int | None = None,
) -> None:
    """Raise ``VocabMismatchError`` unless teacher and student share one vocabulary and head size.

    ``teacher`` may be ``None`` when ``teacher_vocab_size`` gives its head size (a cached teacher).
    """
    t_name, s_name = names
    if teacher_tok is not None and student_tok is not None and teacher_tok.get_vocab() != student_tok.get_vocab():
        raise VocabMismatchError(
            f"teacher tokenizer ({t_name}, {len(teacher_tok)} tokens) and student tokenizer ({s_name}, "
            f"{len(student_tok)} tokens) differ; distillation needs a shared vocabulary: use a student of the same family"
        )
    tv = teacher.get_output_embeddings().weight.shape[0] if teacher is not None else teacher_vocab_size
    sv = student.get_output_embeddings().weight.shape[0]
    if tv != sv:
        raise VocabMismatchError(
            f"teacher ({t_name}) predicts {tv} tokens but student ({s_name}) predicts {sv}; resize the student's "
            "embeddings to the teacher's vocabulary"
        )


def output_head(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output projection ``(weight (V, H), bias (V,) or None)`` of a causal LM."""
    head = _unwrap(model).get_output_embeddings()
    return head.weight, getattr(head, "bias", None)


def final_hidden(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The decoder's final (normed) hidden states, (B, T, H), computed through ``model``'s forward."""
    inner = _unwrap(model)
    decoder = inner.get_decoder()
    captured: list[torch.Tensor] = []

    def hook(_m: torch.nn.Module, _a: Any, out: Any) -> None:
        captured.append(out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0])

    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    if "logits_to_keep" in inspect.signature(inner.forward).parameters:
        kwargs["logits_to_keep"] = 1  # the head runs on one position; the loss projects the rest in chunks
    handle = decoder.register_forward_hook(hook)
    try:
        model(**kwargs)
    finally:
        handle.remove()
    if not captured:
        raise ConfigError(f"could not capture the decoder output of {type(inner).__name__}; unsupported architecture")
    return captured[-1]
