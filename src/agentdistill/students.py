"""The students' initial weights: the teacher's architecture and vocabulary with a size's shape, one seeded
initialisation per (size, seed), saved once so that every method of a run starts from the same weights;
or the teacher itself with fewer layers (``depth_pruned``, ``agentdistill prune``).
"""

import copy
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentdistill.errors import ConfigError
from agentdistill.runconfig import StudentSize


def student_config(teacher_config: Any, size: StudentSize) -> Any:
    """The teacher's config with the size's shape (works for Llama-, Mistral-, Qwen- and GPT-2-style configs)."""
    cfg = teacher_config.__class__.from_dict(teacher_config.to_dict())
    cfg.hidden_size = size.hidden_size
    cfg.num_hidden_layers = size.num_layers
    cfg.num_attention_heads = size.num_heads
    if hasattr(cfg, "num_key_value_heads"):
        cfg.num_key_value_heads = size.num_heads
    if hasattr(cfg, "head_dim"):
        cfg.head_dim = size.hidden_size // size.num_heads
    if hasattr(cfg, "intermediate_size"):
        cfg.intermediate_size = size.intermediate_size or int(2.7 * size.hidden_size)
    elif hasattr(cfg, "n_inner"):
        cfg.n_inner = size.intermediate_size
    if hasattr(cfg, "layer_types") and getattr(cfg, "layer_types", None):
        cfg.layer_types = cfg.layer_types[: size.num_layers] + [cfg.layer_types[-1]] * max(
            0, size.num_layers - len(cfg.layer_types)
        )
    return cfg


def init_student(teacher_dir: Path, size: StudentSize, seed: int, out: Path) -> None:
    """Save the initial student and the teacher's tokenizer to ``out``, through a temporary directory renamed
    into place: the teacher depth-pruned, freshly initialised (``torch.manual_seed(seed)``), or a user's
    pretrained model (which must share the teacher's vocabulary: the divergences compare token ids)."""
    if size.init == "pretrained":
        from agentdistill.modeling import load_causal_lm, load_tokenizer

        teacher_tok, student_tok = load_tokenizer(teacher_dir), load_tokenizer(size.model)
        if student_tok.get_vocab() != teacher_tok.get_vocab():
            raise ConfigError(
                f"distill.sizes[{size.name}]: the tokenizer of {size.model} differs from the teacher's; "
                "distillation compares token ids, so the student needs the teacher's vocabulary"
            )
        _save(load_causal_lm(size.model), teacher_tok, out)
        return
    if size.init == "prune":
        from transformers import AutoConfig

        n = AutoConfig.from_pretrained(str(teacher_dir)).num_hidden_layers
        prune_student(teacher_dir, size.layers or even_layers(n, size.num_layers), out)
        return
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from agentdistill.modeling import load_tokenizer

    conf = student_config(AutoConfig.from_pretrained(str(teacher_dir)), size)
    torch.manual_seed(seed)
    _save(AutoModelForCausalLM.from_config(conf), load_tokenizer(teacher_dir), out)


def _save(model: Any, tokenizer: Any, out: Path) -> None:
    """``save_pretrained`` model and tokenizer into a temporary directory, then rename it to ``out``."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def even_layers(n_layers: int, keep: int) -> list[int]:
    """``keep`` of ``n_layers`` layer indices, evenly spaced, always the first and the last."""
    if not 1 <= keep <= n_layers:
        raise ConfigError(f"cannot keep {keep} of {n_layers} layers; choose 1..{n_layers}")
    if keep == 1:
        return [0]
    return sorted({round(i * (n_layers - 1) / (keep - 1)) for i in range(keep)})


def check_keep(keep: Sequence[int], n_layers: int) -> list[int]:
    """``keep`` as a list, if it names ascending, distinct layers of a model with ``n_layers``; else ``ConfigError``."""
    keep = list(keep)
    if not keep or keep != sorted(set(keep)) or keep[0] < 0 or keep[-1] >= n_layers:
        raise ConfigError(f"layers to keep {keep}: give ascending, distinct indices in 0..{n_layers - 1}")
    return keep


def _decoder_layers(model: Any) -> tuple[Any, str]:
    """The module holding the decoder's layer list, and the list's attribute name (``layers``, ``h``...)."""
    import torch

    n = model.config.num_hidden_layers
    decoder = model.get_decoder()
    for name, child in decoder.named_children():
        if isinstance(child, torch.nn.ModuleList) and len(child) == n:
            return decoder, name
    raise ConfigError(f"cannot find the {n} decoder layers of {type(model).__name__}; depth pruning needs them")


def depth_pruned(model: Any, keep: Sequence[int]) -> Any:
    """A copy of a causal LM with only the decoder layers ``keep`` (ascending); embeddings, final norm
    and head are copied as they are. The start of "prune, then distil" (Minitron).

    Works for any Hugging Face causal LM whose decoder keeps its layers in one ``ModuleList``
    (Llama, Mistral, Qwen, GPT-2...): layers are renumbered (``layer_idx``, so the KV cache is indexed
    right) and the config's layer count and per-layer ``layer_types`` follow.

    Raises:
        ConfigError: ``keep`` is empty, unsorted, repeats a layer or names one the model does not have.
    """
    keep = check_keep(keep, model.config.num_hidden_layers)
    import torch

    pruned = copy.deepcopy(model)
    owner, name = _decoder_layers(pruned)
    layers = torch.nn.ModuleList([getattr(owner, name)[i] for i in keep])
    for new, layer in enumerate(layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    setattr(owner, name, layers)
    if getattr(pruned.config, "layer_types", None):
        pruned.config.layer_types = [pruned.config.layer_types[i] for i in keep]
    pruned.config.num_hidden_layers = len(keep)
    return pruned


def prune_student(teacher: str | Path, keep: Sequence[int], out: str | Path) -> Path:
    """Save ``depth_pruned(teacher, keep)`` and the teacher's tokenizer to ``out`` (written to a temporary
    directory renamed into place); returns ``out``."""
    from agentdistill.modeling import load_causal_lm, load_tokenizer

    out = Path(out)
    _save(depth_pruned(load_causal_lm(teacher), keep), load_tokenizer(teacher), out)
    return out
