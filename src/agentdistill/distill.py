"""The ``distill`` stage: load data and models, get the teacher signal (live or cached), score the curriculum,
train, save.

agentdistill distill --teacher T --student S --data trajs.jsonl --loss sad --out DIR

A rerun resumes from the newest *complete* checkpoint; one torn by a kill or a full disk is set aside.
"""

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from agentdistill.checkpoints import checkpoint_problem, last_complete_checkpoint
from agentdistill.curriculum import complexity_scores
from agentdistill.data import DistillCollator, EncodedDataset, load_examples
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_text
from agentdistill.markers import mark
from agentdistill.masks import Encoded
from agentdistill.modeling import check_vocab, load_causal_lm, load_tokenizer, student_from_config, teacher_dtype
from agentdistill.teacher_cache import TeacherSignal, teacher_signal
from agentdistill.trainer import DistillConfig, DistillTrainer
from agentdistill.trajectory import BadRecord

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
        if problem and not ck.name.startswith("checkpoint-"):
            raise ConfigError(
                f"--resume_from_checkpoint {ck} is not a checkpoint-N directory ({problem}); pass one of an "
                "earlier run's checkpoint-N directories, or true for the newest complete one in --output_dir"
            )
        if problem:
            raise ConfigError(
                f"--resume_from_checkpoint {ck} is not a complete checkpoint ({problem}); pass an older "
                f"checkpoint-N of {ck.parent.resolve()}, or true for the newest complete one in --output_dir"
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


def _resolved_config(dargs: DistillArgs, cfg: DistillConfig) -> str:
    train = {k: v for k, v in cfg.to_dict().items() if not k.startswith("_")}
    return yaml.safe_dump({"distill_args": asdict(dargs), "training": train}, sort_keys=False)


def _tokenizer_source(dargs: DistillArgs) -> str:
    """``--tokenizer``, else the student's, else the teacher's."""
    src = dargs.tokenizer or dargs.student or dargs.teacher
    if src is None:
        raise ConfigError("--student_config needs --tokenizer or --teacher to know the vocabulary")
    return src


def _load_data(dargs: DistillArgs, cfg: DistillConfig) -> tuple[Any, list[Encoded], list[BadRecord]]:
    """The tokenizer, the encoded training examples and the skipped records."""
    tokenizer = load_tokenizer(_tokenizer_source(dargs))
    examples, bad = load_examples(dargs.data, tokenizer, dargs.format, cfg.max_length, cfg.truncation, dargs.skip_bad)
    return tokenizer, examples, bad


def _check_vocab(dargs: DistillArgs, tokenizer: Any, signal: TeacherSignal, student: torch.nn.Module) -> None:
    """Teacher (model or cache) and student share one vocabulary and head size; nothing to check for sft."""
    if signal.vocab_size is None:
        return
    t_tok = load_tokenizer(dargs.teacher) if dargs.tokenizer is None else tokenizer
    names = (str(dargs.teacher), str(_tokenizer_source(dargs)))
    check_vocab(t_tok, tokenizer, signal.teacher, student, names, signal.vocab_size)


def _curriculum_scores(
    cfg: DistillConfig, examples: list[Encoded], entropies: list[float] | None
) -> list[float] | None:
    """Each example's complexity (``curriculum.complexity_scores``), or None without a curriculum."""
    if cfg.curriculum == "none":
        return None
    counts = [e.num_reason for e in examples], [e.num_act for e in examples]
    return complexity_scores(*counts, entropies, cfg.weights()).tolist()


def distill(dargs: DistillArgs, cfg: DistillConfig) -> Path:
    """Run one distillation; returns the output directory holding the student.

    Reads the data first, then writes ``config.yaml``, checkpoints while training, then the student
    (``save_pretrained`` + tokenizer), ``train_log.jsonl`` and the ``.distill.done`` marker last.
    """
    last = _resume_point(dargs, cfg)  # a bad --resume_from_checkpoint fails here, before any work

    # 1. data, then models: a malformed file or a stale teacher cache fails in a second, before any model is loaded
    tokenizer, examples, bad = _load_data(dargs, cfg)
    out = Path(cfg.output_dir)  # made once the data reads: a refused file leaves nothing behind
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", _resolved_config(dargs, cfg))
    signal = teacher_signal(cfg, dargs.teacher, examples)
    if signal.needs_teacher:  # in --teacher_dtype, for the cache pass and the live teacher alike
        dtype = str(teacher_dtype(cfg.teacher_dtype, cfg.device)).removeprefix("torch.")
        signal.teacher = load_causal_lm(dargs.teacher, dtype=dtype)
    student = load_causal_lm(dargs.student) if dargs.student else student_from_config(dargs.student_config, cfg.seed)
    _check_vocab(dargs, tokenizer, signal, student)

    # 2. teacher signal: a cached run builds its cache and frees the teacher; the curriculum's entropies
    signal.prepare(cfg, examples)
    if bad:
        logger.warning(
            "skipped %d malformed record(s); first: %s:%d %s", len(bad), bad[0].path, bad[0].line, bad[0].error
        )

    # 3. curriculum scores
    scores = _curriculum_scores(cfg, examples, signal.entropies)

    # 4. train
    trainer = DistillTrainer(
        model=student,
        args=cfg,
        teacher=signal.teacher,
        curriculum_scores=scores,
        train_dataset=EncodedDataset(examples, teacher_cache=signal.cache),
        data_collator=DistillCollator(pad_token_id=tokenizer.pad_token_id or 0),
        processing_class=tokenizer,
    )
    if last:
        logger.info("resuming from %s", last)
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)

    # 5. save
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
