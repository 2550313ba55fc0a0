"""The ``distill`` stage: load teacher/student and data, score the curriculum, train, save.

agentdistill distill --teacher T --student S --data trajs.jsonl --loss sad --out DIR

A rerun resumes from the newest *complete* checkpoint; one torn by a kill or a full disk is set aside.
"""

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml

from agentdistill.checkpoints import checkpoint_problem, last_complete_checkpoint
from agentdistill.curriculum import complexity_scores
from agentdistill.data import DistillCollator, EncodedDataset, load_examples, num_supervised_positions
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_text
from agentdistill.markers import mark
from agentdistill.masks import Encoded
from agentdistill.modeling import check_vocab, load_causal_lm, load_tokenizer, student_from_config
from agentdistill.teacher import (
    TeacherCache,
    build_cache,
    entropy_sum,
    free_memory,
    load_cache,
    supervised_logits,
    teacher_id,
)
from agentdistill.trainer import DistillConfig, DistillTrainer

logger = logging.getLogger(__name__)


@dataclass
class DistillArgs:
    """Models and data of a distillation run (training options live in ``DistillConfig``)."""

    data: str = field(default="", metadata={"help": "Trajectory JSONL (structured, raw transcripts or chat)."})
    teacher: str | None = field(
        default=None, metadata={"help": "Teacher: model directory or hub name (not needed for sft)."}
    )
    student: str | None = field(default=None, metadata={"help": "Student: model directory or hub name to start from."})
    student_config: str | None = field(
        default=None, metadata={"help": "Or a config.json to build a freshly initialised student from."}
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "Tokenizer (default: the student's, else the teacher's)."}
    )
    format: str = field(default="auto", metadata={"help": "Transcript format: auto|react|alfworld|webshop|chat."})
    skip_bad: bool = field(
        default=False, metadata={"help": "Skip malformed records (counted and reported) instead of failing."}
    )
    resume: bool = field(
        default=True,
        metadata={
            "help": "Resume from the newest complete checkpoint in the output dir when there is one "
            "(--resume_from_checkpoint PATH|true|false overrides it)."
        },
    )

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("--data is required: a trajectory JSONL file")
        if self.student is None and self.student_config is None:
            raise ConfigError("pass --student DIR_OR_HUB_NAME or --student_config config.json")


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")  # --resume_from_checkpoint as a switch


def _resume_point(dargs: DistillArgs, cfg: DistillConfig) -> Path | None:
    """The checkpoint to resume from: ``--resume_from_checkpoint`` (a path, or true/false), else the newest
    complete one in ``--output_dir`` when ``--resume`` (the default). Checked before any work is done.

    Raises:
        ConfigError: the path named is not a complete checkpoint, or true finds none.
    """
    flag = cfg.resume_from_checkpoint
    value = str(flag).strip().lower() if flag is not None else None
    if value in _FALSE or (value is None and not dargs.resume):
        return None
    if value is not None and value not in _TRUE:
        ck = Path(str(flag))
        problem = checkpoint_problem(ck)
        if problem == "not a directory":
            raise ConfigError(
                f"--resume_from_checkpoint {ck}: no such directory; pass a checkpoint-N directory of an earlier "
                "run, or true for the newest complete one in --output_dir"
            )
        if problem:
            raise ConfigError(
                f"--resume_from_checkpoint {ck} is not a complete checkpoint ({problem}); pass an older "
                f"checkpoint-N of {ck.parent}, or true for the newest complete one in --output_dir"
            )
        return ck
    with cfg.main_process_first(desc="checkpoint scan"):
        last = last_complete_checkpoint(cfg.output_dir, set_aside=cfg.should_save)
    if last is None and value is not None:
        raise ConfigError(
            f"--resume_from_checkpoint {flag}: no complete checkpoint-N in {cfg.output_dir}; "
            "drop the flag to train from the start"
        )
    return last


@torch.no_grad()
def teacher_entropies(
    teacher: torch.nn.Module, examples: list[Encoded], batch_size: int = 8, chunk_size: int = 1024
) -> list[float]:
    """Teacher's mean per-token entropy on each example's supervised positions (curriculum's H_T).

    The same pass as ``teacher.build_cache``, which stores these values for a cached run.
    """
    totals = [0.0] * len(examples)
    for i, logits in supervised_logits(teacher, examples, batch_size, chunk_size):
        totals[i] += entropy_sum(logits)
    return [t / max(num_supervised_positions(ex), 1) for t, ex in zip(totals, examples, strict=True)]


def _resolved_config(dargs: DistillArgs, cfg: DistillConfig) -> str:
    train = {k: v for k, v in cfg.to_dict().items() if not k.startswith("_")}
    return yaml.safe_dump({"distill_args": asdict(dargs), "training": train}, sort_keys=False)


def _load_cache(dargs: DistillArgs, cfg: DistillConfig, examples: list[Encoded]) -> TeacherCache:
    path = cfg.cache_path()
    cache = load_cache(
        path, examples, teacher=teacher_id(str(dargs.teacher)), topk=cfg.cache_topk, temperature=cfg.temperature
    )
    logger.info("reusing teacher cache %s (%d examples, top-%d)", path, len(cache), cache.topk)
    return cache


def _build_or_load_cache(
    dargs: DistillArgs, cfg: DistillConfig, examples: list[Encoded], teacher: torch.nn.Module
) -> TeacherCache:
    """The main process writes the cache; the others wait for it and read it."""
    path = cfg.cache_path()
    with cfg.main_process_first(desc="teacher cache"):
        if path.exists():  # another process wrote it while this one loaded the teacher
            return _load_cache(dargs, cfg, examples)
        logger.info("building teacher cache %s: %d examples, top-%d", path, len(examples), cfg.cache_topk)
        return build_cache(
            teacher.to(cfg.device),
            examples,
            path,
            topk=cfg.cache_topk,
            batch_size=cfg.per_device_train_batch_size,
            chunk_size=cfg.loss_chunk_size,
            temperature=cfg.temperature,
            teacher_name=teacher_id(str(dargs.teacher)),
        )


def distill(dargs: DistillArgs, cfg: DistillConfig) -> Path:
    """Run one distillation; returns the output directory holding the student.

    Writes ``config.yaml`` first, checkpoints while training, then the student
    (``save_pretrained`` + tokenizer), ``train_log.jsonl`` and the ``.distill.done`` marker last.
    """
    last = _resume_point(dargs, cfg)  # a bad --resume_from_checkpoint fails here, before any work
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", _resolved_config(dargs, cfg))

    tok_src = dargs.tokenizer or dargs.student or dargs.teacher
    if tok_src is None:
        raise ConfigError("--student_config needs --tokenizer or --teacher to know the vocabulary")
    tokenizer = load_tokenizer(tok_src)
    # data first: a malformed file fails in a second, before any model is loaded
    examples, bad = load_examples(dargs.data, tokenizer, dargs.format, cfg.max_length, cfg.truncation, dargs.skip_bad)
    teacher, cache = None, None
    cached = cfg.loss != "sft" and cfg.teacher_signal == "cached"
    if cfg.loss != "sft":
        if dargs.teacher is None:
            raise ConfigError(f"--loss {cfg.loss} needs --teacher (only sft trains without one)")
        if cached and cfg.cache_path().exists():
            cache = _load_cache(dargs, cfg, examples)  # a stale cache fails here, before any model is loaded
        if cache is None:
            teacher = load_causal_lm(dargs.teacher)
    student = load_causal_lm(dargs.student) if dargs.student else student_from_config(dargs.student_config, cfg.seed)
    if teacher is not None or cache is not None:
        t_tok = load_tokenizer(dargs.teacher) if dargs.tokenizer is None else tokenizer
        t_vocab = cache.vocab_size if cache is not None else None
        check_vocab(t_tok, tokenizer, teacher, student, (str(dargs.teacher), str(tok_src)), t_vocab)
    if cached and cache is None:
        cache = _build_or_load_cache(dargs, cfg, examples, teacher)
        teacher = None  # training holds only the student
        free_memory()

    if bad:
        logger.warning(
            "skipped %d malformed record(s); first: %s:%d %s", len(bad), bad[0].path, bad[0].line, bad[0].error
        )
    scores = None
    if cfg.curriculum != "none":
        alpha, beta, gamma = cfg.weights()
        ent = None
        if gamma != 0 and cache is not None:
            ent = cache.entropies()  # computed in the caching pass, exactly as teacher_entropies does
        elif gamma != 0 and teacher is not None:
            ent = teacher_entropies(teacher.to(cfg.device), examples, cfg.per_device_train_batch_size)
        scores = complexity_scores(
            [e.num_reason for e in examples], [e.num_act for e in examples], ent, (alpha, beta, gamma)
        ).tolist()
    trainer = DistillTrainer(
        model=student,
        args=cfg,
        teacher=teacher,
        curriculum_scores=scores,
        train_dataset=EncodedDataset(examples, teacher_cache=cache),
        data_collator=DistillCollator(pad_token_id=tokenizer.pad_token_id or 0),
        processing_class=tokenizer,
    )
    if last:
        logger.info("resuming from %s", last)
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        mark(
            out,
            "distill",
            info={
                "global_step": trainer.state.global_step,
                "train_loss": result.training_loss if math.isfinite(result.training_loss) else None,
                "examples": len(examples),
                "skipped_records": len(bad),
            },
        )
    return out
