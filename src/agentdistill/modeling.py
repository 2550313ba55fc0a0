"""Loading teacher/student models and tokenizers, the vocabulary check, and final hidden states.

The loss never asks a model for full ``(B, T, V)`` logits: it takes the decoder's final hidden
states and the output embedding and projects only supervised positions, chunk by chunk
(``losses.py``). ``final_hidden`` calls the (possibly DDP/FSDP-wrapped) model's own forward, so
gradient synchronisation hooks still fire, and captures the decoder output with a forward hook
while asking the head for a single position (``logits_to_keep=1``).
"""

import inspect
import logging
from pathlib import Path
from typing import Any

import torch

from agentdistill.errors import ConfigError, VocabMismatchError

logger = logging.getLogger(__name__)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def load_tokenizer(name_or_path: str | Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load a tokenizer from {name_or_path!r} ({e}); pass a model directory or hub name"
        ) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # causal LMs often ship without a pad token; padding is masked anyway
    return tok


def load_causal_lm(name_or_path: str | Path, dtype: str = "float32") -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=getattr(torch, dtype))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load a causal LM from {name_or_path!r} ({e}); pass a model directory or hub name"
        ) from None


def student_from_config(config_path: str | Path, seed: int = 0) -> Any:
    """A freshly initialised student from a ``config.json`` (file or directory)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(config_path))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read a model config from {config_path!r} ({e}); pass a config.json") from None
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def check_vocab(teacher_tok: Any, student_tok: Any, teacher: Any, student: Any, names: tuple[str, str]) -> None:
    """Raise ``VocabMismatchError`` unless teacher and student share one vocabulary and head size."""
    t_name, s_name = names
    if teacher_tok is not None and student_tok is not None and teacher_tok.get_vocab() != student_tok.get_vocab():
        raise VocabMismatchError(
            f"teacher tokenizer ({t_name}, {len(teacher_tok)} tokens) and student tokenizer ({s_name}, "
            f"{len(student_tok)} tokens) differ; distillation needs a shared vocabulary: use a student of the same family"
        )
    tv = teacher.get_output_embeddings().weight.shape[0]
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
