"""DistillConfig / DistillTrainer: Structured Agent Distillation on ``transformers.Trainer``.

The Trainer owns the loop, checkpoints, logging and Accelerate; this module only overrides
``compute_loss`` (span losses from the ``losses`` package), the train sampler (curriculum) and the batch
prefetch (global token counts, so the loss is normalised over the whole accumulated batch on all
processes), and adds per-span metrics to the logs.
"""

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from agentdistill.config import check_seed
from agentdistill.curriculum import CurriculumSampler
from agentdistill.data import TEACHER_KEYS
from agentdistill.errors import AgentDistillError, ConfigError
from agentdistill.files import append_jsonl, atomic_write_text, repair_jsonl_tail
from agentdistill.losses import (
    KINDS,
    chunked_ce,
    chunked_kd,
    chunked_kd_topk,
    fused_ce,
    fused_kd,
    fused_kd_topk,
    span_loss_sums,
    span_weights,
)
from agentdistill.modeling import final_hidden, output_head, teacher_dtype

logger = logging.getLogger(__name__)

TRAIN_LOG = "train_log.jsonl"


@dataclass
class DistillConfig(TrainingArguments):
    """Training options: every ``TrainingArguments`` flag plus the distillation ones.

    Groups: loss (``loss``, ``divergence``, ``beta``, ``temperature``, ``lambda_reason``,
    ``lambda_act``, ``normalize``, ``loss_chunk_size``, ``fused_loss``); teacher signal (``teacher_signal``,
    ``cache_topk``, ``teacher_cache``, ``teacher_dtype``); curriculum (``curriculum``,
    ``curriculum_weights``, ``num_buckets``); data (``max_length``, ``truncation``).

    Note: differs from ``TrainingArguments`` in ``learning_rate`` (1e-4), ``logging_steps`` (10),
    ``save_steps`` (200), ``save_total_limit`` (2), ``report_to`` ("none"),
    ``remove_unused_columns`` (False: the collator needs the masks) and ``dataloader_pin_memory`` (GPU only).
    """

    # loss
    loss: Literal["sad", "token-kd", "sft"] = field(
        default="sad",
        metadata={
            "help": "sad: λ_r·D on reasoning + λ_a·D on action tokens; token-kd: D on all generated tokens with one "
            "mask and weight 1; sft: cross-entropy on reasoning+action tokens (imitation, no teacher needed)."
        },
    )
    divergence: Literal["fkl", "rkl", "jsd", "skl", "srkl", "tvd"] = field(
        default="fkl",
        metadata={"help": "D: forward KL(t‖s), reverse KL, generalized JSD(β), skew KL/ reverse skew KL (α=β), TVD."},
    )
    beta: float = field(default=0.5, metadata={"help": "β of jsd, α (skew) of skl/srkl; in [0, 1]."})
    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature τ for teacher and student (> 0)."})
    lambda_reason: float = field(default=1.0, metadata={"help": "λ_r, weight of L_CoT (sad only)."})
    lambda_act: float = field(default=1.0, metadata={"help": "λ_a, weight of L_Act (sad only)."})
    normalize: Literal["token", "span"] = field(
        default="token",
        metadata={
            "help": "token: divide by supervised tokens in the accumulated batch; span: mean of per-span means."
        },
    )
    loss_chunk_size: int = field(
        default=512, metadata={"help": "Positions projected to the vocabulary at once (bounds (N, V) memory)."}
    )
    fused_loss: bool = field(
        default=True,
        metadata={
            "help": "Compute the loss's gradient (KD's and SFT's) in its forward pass, chunk by chunk (each chunk's logits "
            "projected once, none kept); false: checkpointed chunks that recompute their logits in backward (the "
            "reference path, same loss and gradients)."
        },
    )
    # teacher signal
    teacher_signal: Literal["live", "cached"] = field(
        default="live",
        metadata={
            "help": "live: run the teacher on every batch; cached: one teacher pass first stores its top-k "
            "log-probs per supervised token (--teacher_cache), then training holds only the student."
        },
    )
    cache_topk: int = field(
        default=64,
        metadata={"help": "Teacher tokens cached per supervised position (the rest is one tail bin); >= 1."},
    )
    teacher_cache: str | None = field(
        default=None,
        metadata={
            "help": "Cache file for --teacher_signal cached (default <output_dir>/teacher_cache.safetensors); "
            "reused when it matches the data, teacher, --cache_topk and --temperature."
        },
    )
    teacher_dtype: Literal["auto", "float32", "bfloat16"] = field(
        default="auto",
        metadata={
            "help": "dtype of the teacher's forward (live, and when building the cache): auto = bfloat16 where the CPU "
            "has bf16 instructions (AVX-512 BF16 or AMX, read from its flags) or the GPU computes in bf16 natively, "
            "else float32. Its logits then carry bf16 rounding; the loss stays float32."
        },
    )
    # curriculum
    curriculum: Literal["sorted", "buckets", "none"] = field(
        default="sorted",
        metadata={"help": "sorted: easy→hard every epoch; buckets: baby steps (add harder buckets); none: shuffle."},
    )
    curriculum_weights: str = field(
        default="1,1,1", metadata={"help": "α,β,γ of C = α·z(reason len) + β·z(act len) + γ·z(teacher entropy)."}
    )
    num_buckets: int = field(default=3, metadata={"help": "Buckets for --curriculum buckets (>= 2)."})
    # data
    max_length: int = field(default=1024, metadata={"help": "Longest training sequence in tokens."})
    truncation: Literal["windows", "left"] = field(
        default="windows",
        metadata={
            "help": "Longer trajectories: windows = split into windows that each start with the task prompt (every "
            "token trained once); left = keep the prompt and the last tokens that fit."
        },
    )
    # TrainingArguments defaults we change
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    logging_steps: float = field(default=10, metadata={"help": "Log (and write train_log.jsonl) every N steps."})
    save_steps: float = field(default=200, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Loggers: none, tensorboard, wandb, all."}
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Must stay False for distillation."})
    dataloader_pin_memory: bool = field(
        default=torch.cuda.is_available(), metadata={"help": "Pin batches in memory (default: only with a GPU)."}
    )

    def __post_init__(self) -> None:
        if launched_processes() > 1 and not self.use_cpu and not _distributed_accelerator():
            # accelerate's torchrun launcher on a machine without GPUs: without this each process
            # would train alone on all the data; with it they form one gloo process group.
            self.use_cpu = True
        self._check_numbers()  # before TrainingArguments' own checks: one line naming the flag, for all of them
        _check_report_to(self.report_to)
        try:
            super().__post_init__()
        except ValueError as e:  # TrainingArguments' own validation: a user error, one line
            raise ConfigError(str(e).strip().splitlines()[0]) from None
        if self.divergence not in KINDS:
            raise ConfigError(f"--divergence {self.divergence}: choose one of {', '.join(KINDS)}")
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"--beta must be in [0, 1]; got {self.beta}")
        if self.loss == "sad" and self.lambda_reason == 0 and self.lambda_act == 0:
            raise ConfigError("--lambda_reason 0 and --lambda_act 0 leave nothing to train; set one > 0")
        if self.loss_chunk_size < 1 or self.max_length < 8:
            raise ConfigError("--loss_chunk_size must be >= 1 and --max_length >= 8")
        if self.teacher_signal not in ("live", "cached"):
            raise ConfigError(f"--teacher_signal {self.teacher_signal}: choose live or cached")
        if self.teacher_signal == "cached" and self.loss == "sft":
            raise ConfigError("--teacher_signal cached has nothing to cache with --loss sft (it uses no teacher)")
        if self.teacher_cache and self.teacher_signal != "cached":
            raise ConfigError(
                f"--teacher_cache {self.teacher_cache} is read only with --teacher_signal cached; add it or drop "
                "--teacher_cache"
            )
        if self.teacher_dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"--teacher_dtype {self.teacher_dtype}: choose auto, float32 or bfloat16")
        if self.cache_topk < 1:
            raise ConfigError(f"--cache_topk must be >= 1; got {self.cache_topk}")
        self.weights()  # validates --curriculum_weights

    def _check_numbers(self) -> None:
        """One-line errors for numbers that would crash training later (a zero batch, a negative seed) or
        silently train something else (a NaN weight, a negative step count); NaN fails every check."""
        for name, low in (("temperature", 0.0), ("learning_rate", 0.0)):  # > low and finite
            v = getattr(self, name)
            if not (v > low and math.isfinite(v)):
                raise ConfigError(f"--{name} must be a finite number > {low:g}; got {v}")
        for name in ("lambda_reason", "lambda_act", "weight_decay", "warmup_steps"):  # >= 0 and finite
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"--{name} must be a finite number >= 0; got {v}")
        if not self.max_grad_norm >= 0:  # Trainer clips only when > 0
            raise ConfigError(f"--max_grad_norm must be >= 0 (0 = no clipping); got {self.max_grad_norm}")
        if not (self.num_train_epochs > 0 and math.isfinite(self.num_train_epochs)):
            raise ConfigError(f"--num_train_epochs must be a finite number > 0; got {self.num_train_epochs}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1; got {getattr(self, name)}")
        if self.dataloader_num_workers < 0:
            raise ConfigError(
                f"--dataloader_num_workers must be >= 0 (0 = load in the main process); got "
                f"{self.dataloader_num_workers}"
            )
        # TrainingArguments reads max_steps <= 0 as "not set" (train --num_train_epochs); -1 is its default,
        # 0 or another negative number is a slip that would silently train whole epochs
        if self.max_steps != -1 and self.max_steps < 1:
            raise ConfigError(
                f"--max_steps must be >= 1, or -1 (the default) to train --num_train_epochs; got {self.max_steps}"
            )
        for name in ("save_steps", "logging_steps", "eval_steps"):  # a float < 1 is a fraction of the steps
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ConfigError(
                    f"--{name} must be > 0 (a number of steps, or a fraction of the training steps if < 1); got {v}"
                )
        check_seed(self.seed, "--seed")
        check_seed(self.data_seed, "--data_seed")
        if self.num_buckets < 2:
            raise ConfigError(f"--num_buckets {self.num_buckets}: --curriculum buckets needs --num_buckets >= 2")

    def weights(self) -> tuple[float, float, float]:
        try:
            w = tuple(float(x) for x in str(self.curriculum_weights).split(","))
        except ValueError:
            w = ()
        if len(w) != 3:
            raise ConfigError(
                f"--curriculum_weights must be three numbers α,β,γ like 1,1,1; got {self.curriculum_weights!r}"
            )
        return w  # type: ignore[return-value]


def _check_report_to(report_to: None | str | list[str]) -> None:
    """``--report_to`` names loggers ``transformers`` knows and that are installed (``Trainer`` would fail on
    them only after the data and models are loaded)."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    if names in (["none"], ["all"]):
        return
    known = sorted(INTEGRATION_TO_CALLBACK)
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ConfigError(f"--report_to {name!r}: choose none, all or loggers among {', '.join(known)}")
        if name not in get_available_reporting_integrations():
            raise ConfigError(f"--report_to {name}: its package is not installed; install it or pass --report_to none")


def launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE``), 1 without a launcher.

    Raises:
        ConfigError: when ``accelerate launch`` was asked for several processes but started only
            this one (its simple launcher, used on a CPU without ``--multi_gpu`` and on one GPU).
    """
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    mpi = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
    if world == 1 and "ACCELERATE_USE_CPU" in env and "MASTER_PORT" in env and not any(k in env for k in mpi):
        raise ConfigError(
            "accelerate launch started 1 process although --num_processes > 1 was asked for; add --multi_gpu "
            "(without GPUs too: accelerate starts several processes only through torchrun; README: Several processes)"
        )
    return world


def _distributed_accelerator() -> bool:
    """Whether there is an accelerator that several training processes can share a process group on."""
    if torch.cuda.is_available():
        return True
    acc = getattr(torch, "accelerator", None)
    dev = acc.current_accelerator() if acc is not None and hasattr(acc, "current_accelerator") else None
    return dev is not None and dev.type != "mps"  # MPS has no distributed backend


def _shifted(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masks of the positions that *predict* a supervised token, (B, T-1) bool, and their span ids."""
    reason, act, spans = inputs["reason_mask"][:, 1:], inputs["act_mask"][:, 1:], inputs["span_ids"][:, 1:]
    return reason, act, spans


def _cached_teacher(inputs: dict[str, torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's cached teacher rows (``data.TEACHER_KEYS``), checked against its ``n`` supervised positions."""
    if any(key not in inputs for key in TEACHER_KEYS):
        raise ConfigError(
            "--teacher_signal cached needs batches with cached teacher rows: build the dataset with "
            "EncodedDataset(examples, teacher_cache=load_cache(...))"
        )
    ids, logprobs, tail = (inputs[key] for key in TEACHER_KEYS)
    if ids.shape[0] != n:
        raise AgentDistillError(
            f"the batch has {n} supervised positions but {ids.shape[0]} cached teacher rows; the teacher cache "
            "belongs to other examples (delete it to rebuild)"
        )
    return ids.long(), logprobs, tail


class _TrainLogCallback(TrainerCallback):
    """Appends every training log entry to ``<output_dir>/train_log.jsonl`` (main process only)."""

    def on_train_begin(self, args: TrainingArguments, state: Any, control: Any, **kw: Any) -> None:
        path = Path(args.output_dir) / TRAIN_LOG
        if not state.is_world_process_zero or not path.exists():
            return
        repair_jsonl_tail(path)  # a line torn by a kill mid-append: its step is logged again below
        # A resumed run rewrites what came after its checkpoint, so the log has each step once.
        keep = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)["step"]
            except (ValueError, KeyError, TypeError):
                raise AgentDistillError(
                    f"{path}:{i}: not a train-log entry (corrupted, not an interrupted write); "
                    "delete the file to restart the log"
                ) from None
            if step <= state.global_step:
                keep.append(line)
        atomic_write_text(path, "".join(line + "\n" for line in keep))

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        append_jsonl(Path(args.output_dir) / TRAIN_LOG, row)


class DistillTrainer(Trainer):
    """``Trainer`` whose loss is the structured distillation loss of ``args.loss``.

    Args:
        model: the student.
        args: a ``DistillConfig``.
        teacher: the frozen teacher, moved to the device and ``--teacher_dtype`` in place (``None`` for
            ``loss="sft"`` and for ``teacher_signal="cached"``, whose batches carry the cached rows:
            ``EncodedDataset(examples, teacher_cache=...)``; a teacher passed then is not kept).
        curriculum_scores: complexity per training example (``None``: dataset order is shuffled).
        **kwargs: passed to ``Trainer`` (``train_dataset``, ``data_collator``, ``processing_class``...).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        args: DistillConfig,
        teacher: torch.nn.Module | None = None,
        curriculum_scores: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        live = args.loss != "sft" and args.teacher_signal == "live"
        if live and teacher is None:
            raise ConfigError(f"--loss {args.loss} needs --teacher (only sft trains without one)")
        super().__init__(model=model, args=args, **kwargs)
        world = launched_processes()
        if world > 1 and self.accelerator.num_processes != world:
            raise ConfigError(
                f"the launcher started {world} processes but training runs in {self.accelerator.num_processes}: "
                "each would train alone on all the data; launch as the README's 'Several processes' section shows"
            )
        self.add_callback(_TrainLogCallback())
        self.teacher = None
        if teacher is not None and not live and args.loss != "sft":
            logger.warning("--teacher_signal cached: the teacher model passed to the trainer is not used")
        if teacher is not None and live:
            dtype = teacher_dtype(args.teacher_dtype, self.args.device)
            self.teacher = teacher.to(self.args.device, dtype=dtype).eval()
            self.teacher.requires_grad_(False)
        self.curriculum_scores = curriculum_scores
        self.loss_is_scaled_for_ga = True  # we divide by the global count of the accumulated batch ourselves
        self._counts = {"reason": 1.0, "act": 1.0, "spans": 1.0}
        self._stats: dict[str, float] = {}
        self._t_last = time.perf_counter()

    # ---- curriculum -------------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler:
        ds = train_dataset if train_dataset is not None else self.train_dataset
        scores = self.curriculum_scores if self.curriculum_scores is not None else [0.0] * len(ds)
        pacing = self.args.curriculum if self.curriculum_scores is not None else "none"
        return CurriculumSampler(scores, pacing=pacing, num_buckets=self.args.num_buckets, seed=self.args.seed)

    # ---- global normalisation ---------------------------------------------------------------
    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: torch.device) -> tuple[list, Any]:
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        reason = act = spans = 0
        for b in batch_samples:
            r, a, s = _shifted(b)
            reason += int(r.sum())
            act += int(a.sum())
            spans += int(torch.unique(s[(r | a)]).numel())
        counts = torch.tensor([reason, act, spans], dtype=torch.float64, device=device)
        if self.args.world_size > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        self._counts = dict(zip(("reason", "act", "spans"), counts.tolist(), strict=True))
        return batch_samples, num_items

    # ---- loss -------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        args = self.args
        ids, attn = inputs["input_ids"], inputs["attention_mask"]
        reason, act, span_ids = _shifted(inputs)
        sup = reason | act  # (B, T-1): positions whose next token is supervised
        hidden = final_hidden(model, ids, attn)[:, :-1][sup]  # (N, H)
        weight, bias = output_head(model)
        r, a, sp = reason[sup], act[sup], span_ids[sup]  # (N,)
        if args.loss == "sft":
            targets = ids[:, 1:][sup]
            if args.fused_loss:
                fused = fused_ce(hidden, weight, targets, self._row_weights(r, a, sp), args.loss_chunk_size, bias)
                loss, per_pos, top1 = fused.loss, fused.div, fused.student_top1
            else:
                out = chunked_ce(hidden, weight, targets, chunk_size=args.loss_chunk_size, bias=bias)
                loss, per_pos, top1 = self._combine(out.loss, r, a, sp), out.loss, out.student_top1
            agree = top1 == targets
        else:
            loss, per_pos, agree = self._kd(hidden, weight, bias, inputs, sup, r, a, sp)
        self._accumulate(per_pos.detach(), agree, r, a, int(attn.sum()))
        if args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; our divisor is already global
        return (loss, None) if return_outputs else loss

    def _kd(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        inputs: dict[str, torch.Tensor],
        sup: torch.Tensor,
        r: torch.Tensor,
        a: torch.Tensor,
        sp: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, per-position divergence (N,), top-1 agreement (N,))`` against the live or cached teacher.

        ``--fused_loss`` (the default) gives the loss the position weights up front (``_row_weights``) so that
        its gradient is computed in the forward pass; otherwise ``_combine`` weighs the checkpointed chunks' output.
        """
        args = self.args
        kd: dict[str, Any] = {"kind": args.divergence, "beta": args.beta, "temperature": args.temperature}
        kd.update(chunk_size=args.loss_chunk_size, bias=bias)
        if args.teacher_signal == "cached":
            teacher: tuple = _cached_teacher(inputs, hidden.shape[0])
            fused, chunked = fused_kd_topk, chunked_kd_topk
        else:
            with torch.no_grad():
                t_hidden = final_hidden(self.teacher, inputs["input_ids"], inputs["attention_mask"])[:, :-1][sup]
                t_weight, t_bias = output_head(self.teacher)

            def teacher_logits(start: int, end: int) -> torch.Tensor:
                return torch.nn.functional.linear(t_hidden[start:end], t_weight, t_bias)

            teacher, fused, chunked = (teacher_logits,), fused_kd, chunked_kd
        if args.fused_loss:
            out = fused(hidden, weight, *teacher, self._row_weights(r, a, sp), **kd)
            loss = out.loss
        else:
            out = chunked(hidden, weight, *teacher, **kd)
            loss = self._combine(out.div, r, a, sp)
        return loss, out.div, out.student_top1 == out.teacher_top1

    def _row_weights(self, r: torch.Tensor, a: torch.Tensor, sp: torch.Tensor) -> torch.Tensor:
        """Each position's weight in the loss (``losses.span_weights`` over the global count): ``_combine`` as weights."""
        args = self.args
        lam_r, lam_a = (args.lambda_reason, args.lambda_act) if args.loss == "sad" else (1.0, 1.0)
        return span_weights(r, a, sp, args.normalize, lam_r, lam_a) / max(self._denominator(), 1.0)

    def _denominator(self) -> float:
        c = self._counts
        return c["reason"] + c["act"] if self.args.normalize == "token" else c["spans"]

    def _combine(self, per_pos: torch.Tensor, r: torch.Tensor, a: torch.Tensor, sp: torch.Tensor) -> torch.Tensor:
        """Weighted per-kind sums (``losses.span_loss_sums``) over the global token or span count.

        ``span`` makes each span contribute its mean, so a 3-token action weighs as much as a
        60-token thought. token-kd and sft use one flat weight of 1 on both kinds.
        """
        args = self.args
        sums = span_loss_sums(per_pos, r, a, sp, args.normalize)
        lam_r, lam_a = (args.lambda_reason, args.lambda_act) if args.loss == "sad" else (1.0, 1.0)
        return (lam_r * sums["reason_sum"] + lam_a * sums["act_sum"]) / max(self._denominator(), 1.0)

    def _global_stats(self) -> dict[str, float]:
        """This logging window's span sums and counts, summed over all processes (rank 0's share is not the run)."""
        keys = [f"{stat}_{kind}" for kind in ("reason", "act") for stat in ("sum", "n", "agree")] + ["tokens"]
        values = [self._stats.get(k, 0.0) for k in keys]
        if self.accelerator.num_processes > 1:
            t = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
            values = self.accelerator.reduce(t, reduction="sum").tolist()
        return dict(zip(keys, values, strict=True))

    def _accumulate(
        self, per_pos: torch.Tensor, agree: torch.Tensor, r: torch.Tensor, a: torch.Tensor, tokens: int
    ) -> None:
        s = self._stats
        for name, m in (("reason", r), ("act", a)):
            s[f"sum_{name}"] = s.get(f"sum_{name}", 0.0) + float(per_pos[m].sum())
            s[f"n_{name}"] = s.get(f"n_{name}", 0.0) + float(m.sum())
            s[f"agree_{name}"] = s.get(f"agree_{name}", 0.0) + float(agree[m].sum())
        s["tokens"] = s.get("tokens", 0.0) + tokens

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Every rank logs the training loss at the same step (the Trainer gathers it), so the reduce cannot hang.
        s = self._global_stats() if "loss" in logs else {}
        if s.get("tokens"):
            now = time.perf_counter()
            for kind, key in (("reason", "cot"), ("act", "act")):
                n = s[f"n_{kind}"]
                logs[f"loss_{key}"] = s[f"sum_{kind}"] / n if n else 0.0
                logs[f"top1_agree_{kind}"] = s[f"agree_{kind}"] / n if n else 0.0
                logs[f"{kind}_tokens"] = int(n)
            logs["tokens_per_sec"] = round(s["tokens"] / max(now - self._t_last, 1e-9), 1)
            self._stats, self._t_last = {}, now
        super().log(logs, start_time)
