"""The students' initial weights: the teacher's architecture and vocabulary with a size's shape, one seeded
initialisation per (size, seed), saved once so that every method of a run starts from the same weights.
"""

import shutil
from pathlib import Path
from typing import Any

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
    """Save a freshly initialised student (``torch.manual_seed(seed)``) and the teacher's tokenizer to ``out``,
    through a temporary directory renamed into place."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from agentdistill.modeling import load_tokenizer

    conf = student_config(AutoConfig.from_pretrained(str(teacher_dir)), size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(conf)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    load_tokenizer(teacher_dir).save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
