"""The configuration of ``agentdistill run``: dataclasses loaded from a preset, a YAML file and flags.

Precedence: preset (``--preset``, default ``quick``) < ``--config exp.yaml`` (deep-merged) <
``--envs`` / ``--teacher`` / ``--set key.path=value``. Every key is checked; a typo is a one-line
error with the closest valid key, and every value is checked against the type of the field it sets
(stage specs here, ``DistillConfig`` fields under ``train:``) before any stage runs.
"""

import copy
import dataclasses as dc
import inspect
import math
import re
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from agentdistill.config import (
    check_counts,
    check_fields,
    check_keys,
    check_seed,
    check_unit_interval,
    field_types,
    from_dict,
    parse_yaml,
    read_yaml,
)
from agentdistill.envs import ENVS, SOURCE_HELP, env_class, source_kwargs
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
ENV_NAMES = ("alfworld", "webshop", "hotpotqa", "webshop-http", "textworld", "alfworld-tw")
ENV_NAME = Literal["alfworld", "webshop", "hotpotqa", "webshop-http", "textworld", "alfworld-tw"]
GAME_ENVS = ("textworld", "alfworld-tw")  # their tasks are game files (``games``)
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
        from agentdistill.bpe import SPECIAL_TOKENS

        low = 256 + len(SPECIAL_TOKENS)  # the byte-level BPE's alphabet: every byte, then the special tokens
        if self.vocab_size < low:
            raise ConfigError(
                f"`teacher.vocab_size` must be >= {low} (256 byte tokens + {len(SPECIAL_TOKENS)} special tokens); "
                f"got {self.vocab_size}"
            )
        _at_least(self, "teacher", 1, "hidden_size", "num_layers", "num_heads")
        _at_least(self, "teacher", 1, "intermediate_size", "max_position_embeddings", "expert_episodes", "train_size")
        _check_heads(self.hidden_size, self.num_heads, "teacher")


@dataclass
class StudentSize:
    """A student's starting weights, one of three ``init``s (inferred when omitted: ``scratch`` when a
    width is given, ``pretrained`` with ``model``, else ``prune``):

    - ``prune`` (the default): the teacher itself with ``num_layers`` of its layers (``layers`` picks them,
      else they are evenly spaced, first and last kept); width, embeddings, final norm and head are the
      teacher's. The start of "prune, then distil".
    - ``scratch``: the teacher's config with ``num_layers``, ``hidden_size``, ``num_heads`` (and
      ``intermediate_size``) replaced, freshly initialised per seed.
    - ``pretrained``: a user's model (``model``: a directory or hub name) with the teacher's tokenizer.
    """

    name: str
    num_layers: int | None = None
    hidden_size: int | None = None
    num_heads: int | None = None
    intermediate_size: int | None = None
    init: Literal["scratch", "prune", "pretrained"] | None = None
    layers: list[int] | None = None
    model: str | None = None
    methods: list[str] | None = None  # the methods trained at this size (default: distill.methods)
    seeds: list[int] | None = None  # the seeds trained at this size (default: distill.seeds)

    def __post_init__(self) -> None:
        where = f"distill.sizes[{self.name}]"
        _at_least(self, "distill.sizes[]", 1, "hidden_size", "num_layers", "num_heads", "intermediate_size")
        width = [k for k in ("hidden_size", "num_heads", "intermediate_size") if getattr(self, k) is not None]
        if self.init is None:
            self.init = "pretrained" if self.model else "scratch" if width else "prune"
        if self.init == "scratch" and (self.hidden_size is None or self.num_heads is None or self.num_layers is None):
            raise ConfigError(f"{where}: init scratch needs num_layers, hidden_size and num_heads")
        if self.hidden_size is not None and self.num_heads is not None:
            _check_heads(self.hidden_size, self.num_heads, where)
        if self.init != "scratch" and width:
            raise ConfigError(f"{where}: {', '.join(width)} apply only to init: scratch (init is {self.init})")
        if self.init == "prune" and self.num_layers is None and self.layers is None:
            raise ConfigError(f"{where}: init prune needs num_layers (or layers: the teacher layers to keep)")
        if self.init == "prune" and self.num_layers is None:
            self.num_layers = len(self.layers)
        if self.layers is not None and self.init != "prune":
            raise ConfigError(f"{where}: layers (teacher layers to keep) go with init: prune, not {self.init}")
        if self.layers is not None and len(self.layers) != self.num_layers:
            raise ConfigError(f"{where}: layers {self.layers} are not num_layers {self.num_layers}")
        if (self.init == "pretrained") != bool(self.model):
            raise ConfigError(f"{where}: model (a directory or hub name) goes with init: pretrained, and it needs one")
        if self.init == "pretrained" and self.num_layers is not None:
            raise ConfigError(f"{where}: a pretrained student keeps its own layers; drop num_layers")


# ---- how collect and evaluate run the agent: one set of fields, types, defaults and help for the CLI
# flags (CollectArgs, EvalArgs) and the run config's sections (CollectSpec, EvalSpec)
DEVICE_HELP = (
    "Where the agent's model runs: auto (cuda if a CUDA GPU is visible, else mps, else cpu) "
    "| cpu | cuda | cuda:N | mps."
)
DTYPE_HELP = (
    "Dtype of the agent's model: auto (float32 on cpu, bfloat16 on a CUDA GPU that supports it, else float16) "
    "| float32 | bfloat16 | float16."
)
TorchDtype = Literal["auto", "float32", "bfloat16", "float16"]
_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _key(flag: str, name: str) -> str:
    """An option's name in a message: ``--name`` for a CLI flag, ```section.name``` in a run config."""
    return f"--{name}" if flag == "--" else f"`{flag}{name}`"


def check_device_dtype(device: str, torch_dtype: str, flag: str = "--") -> None:
    """Raise a one-line ``ConfigError`` unless ``device`` and ``torch_dtype`` are values the flags accept;
    ``flag`` prefixes the option names in the message (``--`` for a CLI flag, ``collect.`` in a run config)."""
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device):
        raise ConfigError(f"{flag}device {device!r}: choose auto, cpu, cuda, cuda:N (N = GPU index) or mps")
    if torch_dtype not in typing.get_args(TorchDtype):
        raise ConfigError(f"{flag}torch_dtype {torch_dtype!r}: choose auto, float32, bfloat16 or float16")


@dataclass
class AgentRun:
    """How a stage runs the agent on a split's tasks."""

    episodes: int | None = field(default=None, metadata={"help": "First N tasks of the split (default: all)."})
    batch_size: int = field(default=32, metadata={"help": "Episodes per batched generate call."})
    max_new_tokens: int = field(
        default=128, metadata={"help": "Longest generation per turn (>= the longest expert turn, or turns are cut)."}
    )
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; > 0 samples."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "Step cap per episode, at most the env's own (default: the env's); failures count at the cap."
        },
    )
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    torch_dtype: TorchDtype = field(default="auto", metadata={"help": DTYPE_HELP})

    def check_sampling(self, flag: str = "--") -> None:
        """Raise a one-line ``ConfigError`` unless ``temperature`` is a finite number >= 0 and ``seed`` a seed
        numpy takes; ``flag`` prefixes the option names as in ``check_device_dtype``."""
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError(
                f"{_key(flag, 'temperature')} must be a finite number >= 0 (0 = greedy); got {self.temperature}"
            )
        check_seed(self.seed, _key(flag, "seed"))

    def load_policy(self, model: str | Path) -> Any:  # -> agent.HFPolicy
        """``model`` (a directory or hub name) as a policy that generates with these settings."""
        from agentdistill.agent import AgentConfig, HFPolicy

        cfg = AgentConfig(self.max_new_tokens, self.temperature, seed=self.seed, batch_size=self.batch_size)
        return HFPolicy.from_pretrained(model, cfg, self.device, self.torch_dtype)


@dataclass
class EnvSource:
    """Which env a stage plays and where its tasks come from (``envs.SOURCE_HELP``): the same flags on
    collect, evaluate and play."""

    env: str = field(default="alfworld", metadata={"help": f"Environment: {' | '.join(ENVS)}."})
    env_seed: int = field(default=0, metadata={"help": "Seed that fixes the env's task sets."})
    data: str | None = field(default=None, metadata={"help": SOURCE_HELP["data"]})
    questions: int | None = field(default=None, metadata={"help": SOURCE_HELP["questions"]})
    wiki: str | None = field(default=None, metadata={"help": SOURCE_HELP["wiki"]})
    webshop_url: str | None = field(default=None, metadata={"help": SOURCE_HELP["webshop_url"]})
    games: str | None = field(default=None, metadata={"help": SOURCE_HELP["games"]})

    def __post_init__(self) -> None:
        check_counts(self, 1, "questions")
        check_seed(self.env_seed, "--env_seed")

    def env_kwargs(self) -> dict:
        """``make_env``'s keyword arguments."""
        return {
            "seed": self.env_seed,
            **source_kwargs(self.env, self.data, self.questions, self.wiki, self.webshop_url, self.games),
        }


@dataclass
class CollectSettings(AgentRun):
    train_size: int | None = field(
        default=None,
        metadata={"help": "Train tasks the env generates (default: its own); more are new, distinct tasks."},
    )
    only_success: bool = field(default=False, metadata={"help": "Keep successful episodes only."})


@dataclass
class CollectSpec(CollectSettings):
    """The run's ``collect:`` section: the teacher on each env's train tasks."""

    # below this many solved tasks (all envs together) the failed trajectories are kept as well,
    # and the report says so; 0 = never (a teacher that solves nothing is then an error)
    min_success: int = 0

    def __post_init__(self) -> None:
        _at_least(self, "collect", 1, "episodes", "batch_size", "max_new_tokens", "max_steps", "train_size")
        _at_least(self, "collect", 0, "min_success")
        check_device_dtype(self.device, self.torch_dtype, "collect.")
        self.check_sampling("collect.")


@dataclass
class CollectArgs(EnvSource, CollectSettings):
    """Options of ``agentdistill collect``."""

    agent: str = field(
        default="expert", metadata={"help": "`expert` (the env's oracle) or a model directory / hub name."}
    )
    split: str = field(default="train", metadata={"help": "Task split: train | dev | test."})
    out: str = field(default="trajs.jsonl", metadata={"help": "Trajectory JSONL to write (appended to and resumed)."})

    def __post_init__(self) -> None:
        check_device_dtype(self.device, self.torch_dtype)
        check_counts(self, 1, "episodes", "batch_size", "max_new_tokens", "max_steps", "train_size", "questions")
        check_seed(self.env_seed, "--env_seed")
        self.check_sampling()

    def env_kwargs(self) -> dict:
        kw = super().env_kwargs()
        if self.train_size is None:
            return kw
        if "train_size" not in inspect.signature(env_class(self.env)).parameters:
            raise ConfigError(
                f"train_size {self.train_size}: {self.env} does not generate its train tasks (only alfworld, webshop "
                "and hotpotqa do); drop train_size"
            )
        return {**kw, "train_size": self.train_size}


@dataclass
class DistillSpec:
    methods: list[str] = field(default_factory=lambda: ["sft", "token-kd", "sad"])
    sizes: list[StudentSize] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=dict)  # DistillConfig options shared by every cell


@dataclass
class EvalSettings(AgentRun):
    split: Literal["train", "dev", "test"] = field(default="test", metadata={"help": "Task split."})
    cot_matcher: Literal["rouge_l", "exact"] = field(default="rouge_l", metadata={"help": "CoT matcher."})
    cot_threshold: float = field(default=0.7, metadata={"help": "Match when the matcher's score >= this."})

    def check_sampling(self, flag: str = "--") -> None:
        """``AgentRun.check_sampling``, and ``cot_threshold`` in [0, 1]."""
        super().check_sampling(flag)
        check_unit_interval(self.cot_threshold, _key(flag, "cot_threshold"))


@dataclass
class EvalSpec(EvalSettings):
    """The run's ``evaluate:`` section: teacher and students on each env's tasks."""

    def __post_init__(self) -> None:
        _at_least(self, "evaluate", 1, "episodes", "batch_size", "max_new_tokens", "max_steps")
        self.check_sampling("evaluate.")
        check_device_dtype(self.device, self.torch_dtype, "evaluate.")


@dataclass
class EvalArgs(EnvSource, EvalSettings):
    """Options of ``agentdistill evaluate``."""

    model: str = field(default="", metadata={"help": "Model directory or hub name to run as the agent."})
    reference: str | None = field(
        default=None, metadata={"help": "Teacher trajectories (same task ids) for CoT match."}
    )
    out: str = field(default="metrics.json", metadata={"help": "Metrics JSON; trajectories go beside it."})

    def __post_init__(self) -> None:
        check_device_dtype(self.device, self.torch_dtype)
        check_counts(self, 1, "episodes", "batch_size", "max_new_tokens", "max_steps", "questions")
        check_seed(self.env_seed, "--env_seed")
        self.check_sampling()


def stage_args(cls: type, spec: Any, **per_call: Any) -> Any:
    """A stage's arguments (``CollectArgs``/``EvalArgs``) from a run config section: every field the two
    share is copied, so a setting means the same thing from every entry point; ``per_call`` sets the rest."""
    shared = {f.name: getattr(spec, f.name) for f in dc.fields(spec) if f.name in {g.name for g in dc.fields(cls)}}
    return cls(**{**shared, **per_call})


@dataclass
class RunConfig:
    envs: list[ENV_NAME] = field(default_factory=lambda: list(ENV_NAMES[:3]))
    env_seed: int = 0
    # where an env's tasks come from (envs.SOURCE_HELP): hotpotqa's data / questions / wiki, webshop-http's server,
    # the game envs' games
    data: str | None = None
    questions: int | None = None
    wiki: str | None = None
    webshop_url: str | None = None
    games: str | None = None
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    collect: CollectSpec = field(default_factory=CollectSpec)
    distill: DistillSpec = field(default_factory=DistillSpec)
    evaluate: EvalSpec = field(default_factory=EvalSpec)

    def to_dict(self) -> dict[str, Any]:
        return dc.asdict(self)

    def env_options(self, env: str) -> dict[str, Any]:
        """The ``CollectArgs`` / ``EvalArgs`` fields that choose ``env``'s tasks in this run."""
        out: dict[str, Any] = {"env_seed": self.env_seed}
        if env == "hotpotqa":
            out.update(data=self.data, questions=self.questions, wiki=self.wiki)
        if env == "webshop-http":
            out["webshop_url"] = self.webshop_url
        if env in GAME_ENVS:
            out["games"] = self.games
        return out


def _check_env_sources(cfg: RunConfig, where: str) -> None:
    """``data``/``questions``/``wiki`` need hotpotqa among the envs (``questions``/``wiki`` need ``data``
    too), ``webshop-http`` needs ``webshop_url`` and ``webshop_url`` needs it."""
    for key, envs in (
        ("data", ("hotpotqa",)),
        ("questions", ("hotpotqa",)),
        ("wiki", ("hotpotqa",)),
        ("webshop_url", ("webshop-http",)),
        ("games", GAME_ENVS),
    ):
        if getattr(cfg, key) is not None and not set(envs) & set(cfg.envs):
            env = " or ".join(envs)
            raise ConfigError(
                f"{where}: `{key}` is for the {env} env, which is not in envs {cfg.envs}; add it or drop `{key}`"
            )
    if cfg.data is None and (cfg.questions is not None or cfg.wiki is not None):
        raise ConfigError(
            f"{where}: `questions` and `wiki` choose among HotPotQA's questions; set `data` (--data FILE)"
        )
    if cfg.questions is not None and cfg.questions < 1:
        raise ConfigError(f"{where}: `questions` must be >= 1 (or null for ReAct's 500); got {cfg.questions}")
    if "webshop-http" in cfg.envs and not cfg.webshop_url:
        raise ConfigError(f"{where}: envs has webshop-http; set its server: --webshop_url http://HOST:PORT")
    if "textworld" in cfg.envs and not cfg.games:
        raise ConfigError(f"{where}: envs has textworld; set its games: --games DIR (agentdistill make-games)")


def _check_heads(hidden_size: int, num_heads: int, where: str) -> None:
    """Attention splits the hidden size into ``num_heads`` equal heads (transformers fails later, mid-run)."""
    if hidden_size % num_heads:
        raise ConfigError(
            f"{where}: hidden_size {hidden_size} is not a multiple of num_heads {num_heads}; each head gets "
            "hidden_size / num_heads dimensions"
        )


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
    if "envs" in data and not isinstance(data["envs"], list):
        raise ConfigError(
            f"{where}: `envs` must be a list of env names, e.g. [{', '.join(ENV_NAMES[:2])}]; got {data['envs']!r}"
        )
    for i, e in enumerate(data.get("envs") or []):
        if isinstance(e, str) and e not in ENV_NAMES:
            raise ConfigError(f"{where}: unknown env {e!r} (envs[{i}]); choose from {', '.join(ENV_NAMES)}")
    for section in ("teacher", "collect", "distill", "evaluate"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            keys = ", ".join(_fields(field_types(RunConfig)[section]))
            raise ConfigError(f"{where}: `{section}` must be a mapping of {keys}; got {data[section]!r}")
    if data.get("distill") is None:
        data["distill"] = {}
    if not data["distill"].get("sizes"):
        raise ConfigError(
            f"{where}: distill.sizes is empty; add e.g. {{name: s, num_layers: 1}} (the teacher with 1 of its layers)"
        )
    try:
        cfg = from_dict(RunConfig, data, "")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    teacher, distill = cfg.teacher, cfg.distill
    if not cfg.envs:
        raise ConfigError(f"{where}: envs is empty; name at least one of {', '.join(ENV_NAMES)}")
    twice = sorted({e for e in cfg.envs if cfg.envs.count(e) > 1})
    if twice:
        raise ConfigError(f"{where}: envs names {', '.join(twice)} twice; name each env once")
    try:
        check_seed(cfg.env_seed, "`env_seed`")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    _check_env_sources(cfg, where)
    teacher.train = _check_train(teacher.train, where, "teacher.train")
    if teacher.model:
        from agentdistill.modeling import check_model_path

        try:
            check_model_path(teacher.model, "teacher.model")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if not distill.sizes:
        raise ConfigError(
            f"{where}: distill.sizes is empty; add e.g. {{name: s, num_layers: 1}} (the teacher with 1 of its layers)"
        )
    names = [s.name for s in distill.sizes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: distill.sizes has duplicate names {names}")
    lists = [("distill", distill.methods, distill.seeds)]
    lists += [(f"distill.sizes[{s.name}]", s.methods, s.seeds) for s in distill.sizes]
    for what, methods, seeds in lists:
        for m in methods or []:
            if m not in METHODS:
                raise ConfigError(f"{where}: unknown method {m!r} in {what}.methods; choose from {', '.join(METHODS)}")
        if methods is not None and not methods:
            raise ConfigError(f"{where}: {what}.methods is empty; omit it or name at least one method")
        if seeds is not None and not seeds:
            raise ConfigError(f"{where}: {what}.seeds is empty; omit it or give at least one seed")
        if len(set(methods or [])) != len(methods or []) or len(set(seeds or [])) != len(seeds or []):
            raise ConfigError(f"{where}: {what} names a method or seed twice")
        for i, seed in enumerate(seeds or []):
            try:
                check_seed(seed, f"`{what}.seeds[{i}]`")
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
    if teacher.model is None:  # the embedded teacher: its depth is known now, not only once it is trained
        for s in distill.sizes:
            _check_pruned_depth(s, teacher.num_layers, where)
    distill.train = _check_train(distill.train, where, "distill.train")
    # build every cell's training arguments (DistillConfig's checks; nothing is created) once, so that a bad
    # option fails now, not after the teacher's training and the collection
    try:
        for m in run_methods(cfg):
            cell_training_args(cfg, m, "/tmp/agentdistill-validate", distill.seeds[0])
        teacher_training_args(cfg, "/tmp/agentdistill-validate")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return cfg


def _check_pruned_depth(size: StudentSize, teacher_layers: int, where: str) -> None:
    """A pruned student keeps some of the teacher's ``teacher_layers`` layers: ``num_layers`` at most that many,
    ``layers`` indices below it."""
    if size.init != "prune":
        return
    name = f"distill.sizes[{size.name}]"
    if size.num_layers is not None and size.num_layers > teacher_layers:
        raise ConfigError(
            f"{where}: {name}: num_layers {size.num_layers} > the teacher's {teacher_layers} (teacher.num_layers); "
            f"a pruned student keeps 1..{teacher_layers} of its layers"
        )
    if size.layers is not None:
        from agentdistill.students import check_keep

        try:
            check_keep(size.layers, teacher_layers)
        except ConfigError as e:
            raise ConfigError(f"{where}: {name}: {e} (teacher.num_layers {teacher_layers})") from None


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
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{where}: {str(e).strip().splitlines()[0]}") from None


def teacher_training_args(cfg: RunConfig, output_dir: str) -> Any:
    """DistillConfig of the embedded teacher's SFT."""
    base = {"curriculum": "none", "disable_tqdm": False, "save_total_limit": 1}
    return _training_args(
        {**base, **cfg.teacher.train, "output_dir": output_dir, "loss": "sft", "seed": cfg.env_seed},
        "teacher.train",
    )


def size_methods(cfg: RunConfig, size: StudentSize) -> list[str]:
    """The methods trained at ``size``: its own ``methods``, else ``distill.methods``."""
    return size.methods if size.methods is not None else cfg.distill.methods


def size_seeds(cfg: RunConfig, size: StudentSize) -> list[int]:
    """The seeds trained at ``size``: its own ``seeds``, else ``distill.seeds``."""
    return size.seeds if size.seeds is not None else cfg.distill.seeds


def run_methods(cfg: RunConfig) -> list[str]:
    """Every method some size trains, ``distill.methods`` order first."""
    return list(dict.fromkeys([*cfg.distill.methods, *(m for s in cfg.distill.sizes for m in size_methods(cfg, s))]))


def cell_options(cfg: RunConfig, method: str) -> dict[str, Any]:
    """The ``DistillConfig`` options of a method's cells: the shared ones + the method's overrides."""
    over = {**cfg.distill.train, **METHODS[method]}
    if over["loss"] == "sft":  # no teacher: the teacher-signal options of the shared ones do not apply
        for key in ("teacher_signal", "cache_topk", "teacher_cache"):
            over.pop(key, None)
    if "curriculum" not in METHODS[method]:
        over.setdefault("curriculum", "sorted")
    over.setdefault("save_total_limit", 1)
    return over


def cell_training_args(cfg: RunConfig, method: str, output_dir: str, seed: int) -> Any:
    """DistillConfig of one (method, size, seed) cell (``cell_options`` with its directory and seed)."""
    return _training_args(
        {**cell_options(cfg, method), "output_dir": output_dir, "seed": seed}, f"distill.train ({method})"
    )
