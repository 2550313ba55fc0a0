"""The record of a run directory: ``run.yaml`` (the resolved config, checked on every rerun),
``versions.json``, and ``manifest.json``: the layout ``report`` reads (teacher, methods, sizes and
cells with their directories and eval files), parameter counts, stage times and the notes the report
must show. Also the layout's names (``cell_key``, ``eval_path``, ``teacher_dir``), so the pipeline
and the manifest cannot disagree about where things are.
"""

import datetime as _dt
import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

import yaml

from agentdistill import markers
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_json, atomic_write_text
from agentdistill.runconfig import RunConfig, StudentSize, cell_options, run_methods, size_methods, size_seeds

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- layout
def cell_key(method: str, size: str, seed: int) -> str:
    return f"{method}__{size}__s{seed}"


def cells(cfg: RunConfig) -> list[tuple[str, StudentSize, int]]:
    """Every (method, size, seed) of the run, in the order they train and appear in the report."""
    d = cfg.distill
    seeds = list(dict.fromkeys([*d.seeds, *(seed for s in d.sizes for seed in size_seeds(cfg, s))]))
    return [
        (m, s, seed) for seed in seeds for s in d.sizes if seed in size_seeds(cfg, s) for m in size_methods(cfg, s)
    ]


def teacher_dir(root: Path, cfg: RunConfig) -> Path:
    """The user's teacher, or the embedded one trained in ``RUN/teacher/model``."""
    return Path(cfg.teacher.model) if cfg.teacher.model else root / "teacher" / "model"


def eval_path(root: Path, key: str, env: str) -> Path:
    return root / "eval" / key / f"{env}.json"


# --------------------------------------------------------------------------- machine and versions
def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram_s = f", {ram:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        ram_s = ""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cores} CPU cores{ram_s}, {gpu} ({platform.system()} {platform.machine()})"


def versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    from agentdistill import __version__

    return {
        "agentdistill": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


# token and position embeddings and the output head (tied or not): what "non-embedding" parameters exclude
_EMBEDDING_NAMES = ("embed_tokens", "embed_positions", "wte", "wpe", "lm_head", "word_embeddings")


def count_params(model_dir: Path, non_embedding: bool = False) -> int:
    """Parameters of a saved model, read from its safetensors headers (no weights are loaded);
    ``non_embedding`` leaves out the embeddings and the output head (the count scaling laws use)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                if non_embedding and any(part in _EMBEDDING_NAMES for part in k.split(".")):
                    continue
                n = 1
                for d in st.get_slice(k).get_shape():
                    n *= d
                total += n
    return total


def _measured(size: dict | None) -> dict:
    """A size's measured shape, without the unknowns (the config's values stand for those)."""
    return {k: v for k, v in (size or {}).items() if v is not None}


def model_size(model_dir: Path) -> dict[str, int | None]:
    """``{"params", "non_embedding_params", "num_layers"}`` of a saved model (all ``None`` when it is not there)."""
    if not model_dir.is_dir():
        return dict.fromkeys(("params", "non_embedding_params", "num_layers"))
    try:
        conf = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        layers = conf.get("num_hidden_layers", conf.get("n_layer"))
    except (OSError, ValueError):
        layers = None
    return {
        "params": count_params(model_dir),
        "non_embedding_params": count_params(model_dir, True),
        "num_layers": layers,
    }


# --------------------------------------------------------------------------- run.yaml
def check_config(root: Path, cfg: RunConfig, forced: bool) -> None:
    """Write ``run.yaml`` and ``versions.json``; a rerun with a different config needs ``--force``.

    Raises:
        ConfigError: ``run.yaml`` exists, differs from ``cfg`` and no stage is forced.
    """
    path = root / "run.yaml"
    new = cfg.to_dict()
    old = _read_run_yaml(path)
    if old is not None:
        diff = _first_diff(old, new)
        if diff and not forced:
            raise ConfigError(
                f"{root}: this command's config differs from the run's run.yaml at `{diff}`; "
                "use a new --out, or --force STAGE to redo from that stage with the new config"
            )
    atomic_write_text(path, yaml.safe_dump(new, sort_keys=False))
    atomic_write_json(root / "versions.json", versions())


def _read_run_yaml(path: Path) -> dict[str, Any] | None:
    """The config recorded in ``run.yaml``, or ``None`` when there is none to compare with.

    An empty or damaged ``run.yaml`` (0 bytes, not UTF-8, not YAML, not a mapping: never written so by
    this program, whose writes are atomic, but left by a full disk, a crash of the file system or a
    hand edit) is treated as absent, with a warning: it is rewritten from this command's config and
    the run resumes. Refusing would wedge every rerun on a file that records nothing; the stages' markers
    still check what they depend on (teacher, data, initial weights), and ``--force STAGE`` redoes a
    stage that ran with another config.
    """
    if not path.exists():
        return None
    try:
        old = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (ValueError, OSError, yaml.YAMLError):  # UnicodeDecodeError is a ValueError
        old = None
    if isinstance(old, dict) and old:
        return old
    logger.warning(
        "%s is empty or unreadable; rewriting it from this command's config (if the run's finished stages "
        "used another config, rerun with --force STAGE to redo them)",
        path,
    )
    return None


def _first_diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _first_diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    return None if a == b else (path or "<root>")


# --------------------------------------------------------------------------- manifest.json
def write_manifest(root: Path, cfg: RunConfig, preset: str | None, command: str, stages: dict[str, Any]) -> dict:
    """Write ``manifest.json`` from the config and what is on disk; ``started`` and the times of stages
    done by earlier calls are kept from the previous manifest."""
    shape: dict[str, dict[str, int | None]] = {}
    for _, size, seed in cells(cfg):
        if (shape.get(size.name) or {}).get("params") is None:
            shape[size.name] = model_size(root / "students" / f"{size.name}-s{seed}")
    params = {name: v["params"] for name, v in shape.items()}
    tdir = teacher_dir(root, cfg)

    def evals(key: str) -> dict[str, str]:
        return {e: str(eval_path(root, key, e).relative_to(root)) for e in cfg.envs}

    manifest = {
        "name": root.name,
        "preset": preset,
        "command": command,
        "machine": machine(),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
        "envs": cfg.envs,
        "eval": {"split": cfg.evaluate.split, "episodes": {e: _eval_episodes(cfg, e) for e in cfg.envs}},
        "teacher": {
            "key": "teacher",
            "source": cfg.teacher.model or "embedded",
            **model_size(tdir),
            "eval": evals("teacher"),
        },
        "methods": {m: _method_settings(cfg, m) for m in run_methods(cfg)},
        "sizes": {s.name: {**s.__dict__, **_measured(shape.get(s.name))} for s in cfg.distill.sizes},
        "cells": [
            {
                "key": cell_key(m, s.name, seed),
                "method": m,
                "size": s.name,
                "seed": seed,
                "params": params.get(s.name),
                "dir": f"distill/{cell_key(m, s.name, seed)}",
                "eval": evals(cell_key(m, s.name, seed)),
            }
            for m, s, seed in cells(cfg)
        ],
        "stages": stages,
        "notes": notes(root, cfg),
    }
    old = root / "manifest.json"
    try:  # a missing or damaged manifest (not UTF-8 JSON, not an object) is rewritten from scratch
        prev = json.loads(old.read_bytes().decode("utf-8")) if old.is_file() else {}
    except (ValueError, OSError):
        prev = {}
    if isinstance(prev, dict):
        if isinstance(prev.get("started"), str):
            manifest["started"] = prev["started"]
        if isinstance(prev.get("stages"), dict):
            manifest["stages"] = {**prev["stages"], **stages}
    atomic_write_json(old, manifest)
    return manifest


def notes(root: Path, cfg: RunConfig) -> list[str]:
    """Caveats the report must show (read from the stage markers, so `report` rebuilds them)."""
    out = turn_notes(root, cfg)
    collect_notes = (markers.read(root, "collect") or {}).get("notes", [])
    out += [n for n in collect_notes if isinstance(n, str)] if isinstance(collect_notes, list) else []
    if cfg.evaluate.max_steps:
        out.append(f"episodes were capped at {cfg.evaluate.max_steps} steps (evaluate.max_steps)")
    return out


def turn_notes(root: Path, cfg: RunConfig) -> list[str]:
    """A note per stage whose generation budget is shorter than the embedded teacher's longest expert turn."""
    longest = (markers.read(root, "teacher") or {}).get("longest_turn")
    if not isinstance(longest, int) or not longest:
        return []
    return [
        f"{name}.max_new_tokens = {spec.max_new_tokens} is shorter than the longest expert turn ({longest} "
        f"tokens): longer turns were cut, so even a perfect agent fails some tasks; set it to at least {longest}"
        for name, spec in (("collect", cfg.collect), ("evaluate", cfg.evaluate))
        if spec.max_new_tokens < longest
    ]


def _eval_episodes(cfg: RunConfig, env: str) -> int:
    from agentdistill.envs import make_env
    from agentdistill.runconfig import CollectArgs

    e = make_env(env, **CollectArgs(env=env, **cfg.env_options(env)).env_kwargs())
    n = len(e.task_ids(cfg.evaluate.split))
    return min(n, cfg.evaluate.episodes) if cfg.evaluate.episodes else n


def _method_settings(cfg: RunConfig, method: str) -> dict[str, Any]:
    """What tells a method's cells apart, read from its options (``DistillConfig``'s defaults where unset)."""
    import dataclasses

    from agentdistill.trainer import DistillConfig

    defaults = {f.name: f.default for f in dataclasses.fields(DistillConfig)}
    options = cell_options(cfg, method)
    return {
        k: options.get(k, defaults[k]) for k in ("loss", "lambda_reason", "lambda_act", "curriculum", "divergence")
    }
