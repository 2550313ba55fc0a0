"""The configuration of ``agentdistill run``: dataclasses loaded from a preset, a YAML file and flags.

Precedence: preset (``--preset``, default ``quick``) < ``--config exp.yaml`` (deep-merged) <
``--envs`` / ``--teacher`` / ``--set key.path=value``. Every key is checked; a typo is a one-line
error with the closest valid key, and every value is checked against the type of the field it sets
(stage specs here, ``DistillConfig`` fields under ``train:``) before any stage runs.
"""

import copy
import dataclasses as dc
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from agentdistill.config import check_fields, check_keys, field_types, from_dict, parse_yaml, read_yaml
from agentdistill.errors import ConfigError

# Each method is a set of DistillConfig overrides on the shared training options; all cells of a
# seed start from the same initial student weights and see the same data and step budget.
METHODS: dict[str, dict[str, Any]] = {
    "sft": {"loss": "sft", "curriculum": "none"},
    "token-kd": {"loss": "token-kd", "curriculum": "none"},
    "sad": {"loss": "sad", "lambda_reason": 1.0, "lambda_act": 1.0},
    "sad-no-cot": {"loss": "sad", "lambda_reason": 0.0, "lambda_act": 1.0},
    "sad-no-act": {"loss": "sad", "lambda_reason": 1.0, "lambda_act": 0.0},
    "sad-no-curriculum": {"loss": "sad", "lambda_reason": 1.0, "lambda_act": 1.0, "curriculum": "none"},
}
ENV_NAMES = ("alfworld", "webshop", "hotpotqa")
ENV_NAME = Literal["alfworld", "webshop", "hotpotqa"]
# Training options the pipeline sets itself per stage or cell; a config may not override them.
_RESERVED_TRAIN_KEYS = {"output_dir", "loss", "lambda_reason", "lambda_act", "seed", "resume_from_checkpoint"}


@dataclass
class TeacherSpec:
    """The teacher: a user's model (``model``) or the embedded one trained here by SFT on expert runs."""

    model: str | None = None  # model directory or hub name; None = train the embedded teacher
    arch: Literal["llama", "gpt2"] = "llama"
    vocab_size: int = 2048  # BPE trained on the envs' expert transcripts
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int | None = None
    max_position_embeddings: int = 2048
    expert_episodes: int = 1000  # expert trajectories per env (train split) the teacher learns from
    train_size: int | None = None  # train tasks each env generates (None = its default; larger = new tasks)
    train: dict[str, Any] = field(default_factory=dict)  # DistillConfig options of the teacher's SFT

    def __post_init__(self) -> None:
        _at_least(self, "teacher", 1, "vocab_size", "hidden_size", "num_layers", "num_heads")
        _at_least(self, "teacher", 1, "intermediate_size", "max_position_embeddings", "expert_episodes", "train_size")


@dataclass
class StudentSize:
    """A student shape: the teacher's config with these fields replaced."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int | None = None

    def __post_init__(self) -> None:
        _at_least(self, "distill.sizes[]", 1, "hidden_size", "num_layers", "num_heads", "intermediate_size")


@dataclass
class CollectSpec:
    episodes: int | None = 300  # train tasks per env the teacher attempts (None = the whole split)
    train_size: int | None = None  # train tasks each env generates (None = its default)
    only_success: bool = True
    # below this many solved tasks (all envs together) the failed trajectories are kept as well,
    # and the report says so; 0 = never (a teacher that solves nothing is then an error)
    min_success: int = 0
    batch_size: int = 64
    max_new_tokens: int = 64
    max_steps: int | None = None  # step cap per episode (None = each env's own)
    device: str = "auto"  # where the teacher runs: auto | cpu | cuda | cuda:N | mps (modeling.DEVICE_HELP)
    torch_dtype: str = "auto"  # auto = float32 on cpu, bfloat16 on a GPU that supports it, else float16

    def __post_init__(self) -> None:
        _at_least(self, "collect", 1, "episodes", "batch_size", "max_new_tokens", "max_steps", "train_size")
        _at_least(self, "collect", 0, "min_success")


@dataclass
class DistillSpec:
    methods: list[str] = field(default_factory=lambda: ["sft", "token-kd", "sad"])
    sizes: list[StudentSize] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=dict)  # DistillConfig options shared by every cell


@dataclass
class EvalSpec:
    split: Literal["train", "dev", "test"] = "test"
    episodes: int | None = None  # first N tasks of the split per env (None = all)
    batch_size: int = 64
    max_new_tokens: int = 64
    max_steps: int | None = None  # step cap per episode (None = each env's own); failures count at the cap
    cot_matcher: Literal["rouge_l", "exact"] = "rouge_l"
    cot_threshold: float = 0.7
    device: str = "auto"  # where the evaluated models run: auto | cpu | cuda | cuda:N | mps
    torch_dtype: str = "auto"  # auto = float32 on cpu, bfloat16 on a GPU that supports it, else float16

    def __post_init__(self) -> None:
        _at_least(self, "evaluate", 1, "episodes", "batch_size", "max_new_tokens", "max_steps")
        if not 0.0 <= self.cot_threshold <= 1.0:
            raise ConfigError(f"`evaluate.cot_threshold` must be in [0, 1]; got {self.cot_threshold}")


@dataclass
class RunConfig:
    envs: list[ENV_NAME] = field(default_factory=lambda: list(ENV_NAMES))
    env_seed: int = 0
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    collect: CollectSpec = field(default_factory=CollectSpec)
    distill: DistillSpec = field(default_factory=DistillSpec)
    evaluate: EvalSpec = field(default_factory=EvalSpec)

    def to_dict(self) -> dict[str, Any]:
        return dc.asdict(self)


def _at_least(spec: Any, section: str, low: int, *names: str) -> None:
    """Raise ``ConfigError`` unless each of ``names`` is ``None`` (where allowed) or ``>= low``.

    Counts are used as slice bounds and loop sizes: 0 or a negative number would silently run
    nothing, or (``tasks[:-198]``) the wrong tasks.
    """
    for name in names:
        v = getattr(spec, name)
        if v is not None and v < low:
            optional = type(None) in typing.get_args(field_types(type(spec))[name])
            none = " (or null for the default)" if optional else ""
            raise ConfigError(f"`{section}.{name}` must be >= {low}{none}; got {v}")


def presets() -> dict[str, Path]:
    """The shipped presets, name -> YAML file."""
    root = resources.files("agentdistill") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in sorted(root.iterdir(), key=str) if str(p).endswith(".yaml")}


def preset_path(name: str) -> Path:
    found = presets()
    if name not in found:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(found)} (agentdistill configs list)")
    return found[name]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def apply_set(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``--set a.b.c=value`` (value parsed as YAML: ``1e-3`` is a float) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key.path=value, e.g. distill.train.max_steps=50")
    key, raw = assignment.split("=", 1)
    try:
        value = parse_yaml(raw)
    except Exception:  # noqa: BLE001 (any YAML error: the text is meant as a plain string)
        value = raw
    node: dict[str, Any] = data
    parts = key.strip().split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p, {}), dict):
            raise ConfigError(f"--set {assignment!r}: `{p}` is not a section")
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return data


def _fields(cls: type) -> list[str]:
    return [f.name for f in dc.fields(cls)]


def _check_train(train: dict[str, Any], where: str, key: str) -> dict[str, Any]:
    """Strict keys and every value checked against its ``DistillConfig`` field's type; returns the converted values."""
    from agentdistill.trainer import DistillConfig

    train = check_fields(DistillConfig, train, where, prefix=f"{key}.")
    bad = sorted(_RESERVED_TRAIN_KEYS & set(train))
    if bad:
        raise ConfigError(f"{where}: `{bad[0]}` is set by the pipeline per stage/cell; remove it")
    return train


def parse_run_config(data: dict[str, Any], where: str = "config") -> RunConfig:
    """Validate a merged config dict and build the ``RunConfig``.

    Every key is checked, and every value against the type of the field it sets (``config.check_value``),
    so a bad value fails here, before any stage runs.
    """
    check_keys(data, _fields(RunConfig), where)
    data = dict(data)
    if isinstance(data.get("envs"), str):
        data["envs"] = [e.strip() for e in data["envs"].split(",") if e.strip()]
    for i, e in enumerate(data.get("envs") or []):
        if isinstance(e, str) and e not in ENV_NAMES:
            raise ConfigError(f"{where}: unknown env {e!r} (envs[{i}]); choose from {', '.join(ENV_NAMES)}")
    data.setdefault("distill", {})
    if not isinstance(data["distill"], dict) or not data["distill"].get("sizes"):
        raise ConfigError(
            f"{where}: distill.sizes is empty; add e.g. {{name: s, hidden_size: 64, num_layers: 2, ...}}"
        )
    try:
        cfg = from_dict(RunConfig, data, "")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    teacher, distill = cfg.teacher, cfg.distill
    if not cfg.envs:
        raise ConfigError(f"{where}: envs is empty; name at least one of {', '.join(ENV_NAMES)}")
    teacher.train = _check_train(teacher.train, where, "teacher.train")
    if teacher.model:
        from agentdistill.modeling import check_model_path

        try:
            check_model_path(teacher.model, "teacher.model")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if not distill.sizes:
        raise ConfigError(
            f"{where}: distill.sizes is empty; add e.g. {{name: s, hidden_size: 64, num_layers: 2, ...}}"
        )
    names = [s.name for s in distill.sizes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: distill.sizes has duplicate names {names}")
    for m in distill.methods:
        if m not in METHODS:
            raise ConfigError(f"{where}: unknown method {m!r} in distill.methods; choose from {', '.join(METHODS)}")
    if not distill.seeds:
        raise ConfigError(f"{where}: distill.seeds is empty")
    distill.train = _check_train(distill.train, where, "distill.train")
    from agentdistill.modeling import check_device_dtype

    for name, spec in (("collect", cfg.collect), ("evaluate", cfg.evaluate)):
        check_device_dtype(spec.device, spec.torch_dtype, f"{where}: {name}.")
    # build every cell's training arguments once so a bad option fails now, not after an hour
    for m in distill.methods:
        cell_training_args(cfg, m, "/tmp/agentdistill-validate", distill.seeds[0])
    teacher_training_args(cfg, "/tmp/agentdistill-validate")
    return cfg


def load_run_config(
    preset: str | None = "quick",
    config: str | None = None,
    envs: str | None = None,
    teacher: str | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Preset < ``config`` < ``envs`` / ``teacher`` < ``sets``, merged and checked (``parse_run_config``).

    Raises:
        ConfigError: naming the file (or ``--set``), the key path, the bad value and what it must be.
    """
    data = read_yaml(preset_path(preset or "quick"))
    where = f"preset {preset or 'quick'}"
    if config:
        data = deep_merge(data, read_yaml(config))
        where = str(config)
    if envs:
        data["envs"] = [e.strip() for e in envs.split(",") if e.strip()]
    if teacher:
        data.setdefault("teacher", {})["model"] = teacher
    for s in sets or []:
        data = apply_set(data, s)
    if sets:
        where += " with --set"
    return parse_run_config(data, where)


def _training_args(overrides: dict[str, Any], where: str) -> Any:
    from agentdistill.trainer import DistillConfig

    try:
        return DistillConfig(**overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {str(e).strip().splitlines()[0]}") from None


def teacher_training_args(cfg: RunConfig, output_dir: str) -> Any:
    """DistillConfig of the embedded teacher's SFT."""
    base = {"curriculum": "none", "disable_tqdm": False, "save_total_limit": 1}
    return _training_args(
        {**base, **cfg.teacher.train, "output_dir": output_dir, "loss": "sft", "seed": cfg.env_seed},
        "teacher.train",
    )


def cell_training_args(cfg: RunConfig, method: str, output_dir: str, seed: int) -> Any:
    """DistillConfig of one (method, size, seed) cell: shared options + the method's overrides."""
    over = {**cfg.distill.train, **METHODS[method], "output_dir": output_dir, "seed": seed}
    if "curriculum" not in METHODS[method]:
        over.setdefault("curriculum", "sorted")
    over.setdefault("save_total_limit", 1)
    return _training_args(over, f"distill.train ({method})")
