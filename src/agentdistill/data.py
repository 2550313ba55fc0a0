"""Trajectory files -> encoded training examples -> padded batches.

``encode_records`` segments each record (``segment.py``), builds its masks (``masks.py``) and fits
it to ``max_length``; ``DistillCollator`` right-pads a list of examples into tensors. With a cached
teacher (``teacher_cache.py``) each example travels with its cached rows and the collator
concatenates them in the order the trainer flattens the batch's supervised positions.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from agentdistill.errors import TrajectoryError
from agentdistill.masks import CONTEXT_SPAN, Encoded, build_masks, fit_length
from agentdistill.segment import segment
from agentdistill.trajectory import BadRecord, Record, read_records

logger = logging.getLogger(__name__)


def encode_records(
    records: Sequence[Record],
    tokenizer: Any,
    fmt: str = "auto",
    max_length: int = 1024,
    truncation: Literal["windows", "left"] = "windows",
    skip_bad: bool = False,
    bad: list[BadRecord] | None = None,
    path: str | Path | None = None,
) -> list[Encoded]:
    """Segment, tokenize and fit every record; ``meta`` keeps the record id and window index."""
    out: list[Encoded] = []
    for i, rec in enumerate(records):
        try:
            seg = segment(rec, fmt=fmt, tokenizer=tokenizer)
        except TrajectoryError as e:
            if not skip_bad:
                raise TrajectoryError(f"{e.msg}; fix the record or pass --skip_bad", e.path or path) from None
            if bad is not None:
                bad.append(BadRecord(str(path), i + 1, e.msg))
            continue
        ex = build_masks(seg.text, seg.spans, tokenizer)
        for w, win in enumerate(fit_length(ex, max_length, truncation)):
            win.meta = {"id": seg.id, "window": w, "format": seg.format}
            out.append(win)
    return out


def load_examples(
    path: str | Path,
    tokenizer: Any,
    fmt: str = "auto",
    max_length: int = 1024,
    truncation: Literal["windows", "left"] = "windows",
    skip_bad: bool = False,
) -> tuple[list[Encoded], list[BadRecord]]:
    """Read a trajectory JSONL file and encode it; returns the examples and the skipped records."""
    records, bad = read_records(path, skip_bad=skip_bad)
    examples = encode_records(records, tokenizer, fmt, max_length, truncation, skip_bad, bad, path)
    if not examples:
        raise TrajectoryError("no trainable example left (every record was skipped or had no span)", path)
    if bad:
        logger.warning("skipped %d bad record(s) in %s", len(bad), path)
    return examples, bad


# Batch keys of the cached teacher signal: (N, K) int32 ids, (N, K) float32 log-probs, (N,) float32 tail.
TEACHER_KEYS = ("teacher_topk_ids", "teacher_topk_logprobs", "teacher_tail_logprob")


class TeacherRows(NamedTuple):
    """One example's cached teacher signal: one row per supervised position, in position order.

    Row ``j`` belongs to the ``j``-th position ``t`` (ascending) whose next token ``t + 1`` is in
    ``reason_mask | act_mask``, i.e. the positions ``DistillTrainer`` selects.
    """

    ids: torch.Tensor  # (n, K) int32
    logprobs: torch.Tensor  # (n, K) float32
    tail: torch.Tensor  # (n,) float32


@dataclass
class CachedExample:
    """An example and its cached teacher rows, as ``EncodedDataset`` yields them in cached mode."""

    example: Encoded
    teacher: TeacherRows


def num_supervised_positions(example: Encoded) -> int:
    """Positions that predict a supervised token: ``t < T - 1`` with token ``t + 1`` REASON or ACT."""
    return sum(1 for r, a in zip(example.reason_mask[1:], example.act_mask[1:], strict=True) if r or a)


class EncodedDataset(torch.utils.data.Dataset):
    """A list of ``Encoded`` examples as a map-style dataset.

    Args:
        examples: the training examples.
        teacher_cache: optional per-example cached teacher signal (``teacher_cache.TeacherCache`` or any
            sequence of ``TeacherRows`` indexed like ``examples``); items are then ``CachedExample``.
            The cache is indexed by example index, so any sampler order works.
    """

    def __init__(self, examples: Sequence[Encoded], teacher_cache: Sequence[TeacherRows] | None = None) -> None:
        self.examples = list(examples)
        self.teacher_cache = teacher_cache
        if teacher_cache is not None and len(teacher_cache) != len(self.examples):
            raise ValueError(f"teacher cache has {len(teacher_cache)} examples, the dataset {len(self.examples)}")

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Encoded | CachedExample:
        if self.teacher_cache is None:
            return self.examples[i]
        return CachedExample(self.examples[i], self.teacher_cache[i])


@dataclass
class DistillCollator:
    """Right-pads examples into ``input_ids``/``attention_mask``/``reason_mask``/``act_mask``/``span_ids``.

    All tensors are (B, T). Masks are per *token* (``reason_mask[b, t]`` = token ``t`` is REASON);
    the trainer shifts them to the positions that predict those tokens. ``span_ids`` are made unique
    within the batch (``row * stride + span``) so per-span averages never merge two rows' spans.

    Given ``CachedExample`` items it also returns the ``TEACHER_KEYS`` tensors: the examples' cached
    rows concatenated in batch-row order, which is the row-major order of the trainer's
    ``hidden[:, :-1][reason_mask[:, 1:] | act_mask[:, 1:]]`` (padding is never supervised).
    """

    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None

    def __call__(self, items: Sequence[Encoded | CachedExample]) -> dict[str, torch.Tensor]:
        batch = [it.example if isinstance(it, CachedExample) else it for it in items]
        T = max(len(ex) for ex in batch)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            T = (T + m - 1) // m * m
        B = len(batch)
        input_ids = torch.full((B, T), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((B, T), dtype=torch.long)
        reason = torch.zeros((B, T), dtype=torch.bool)
        act = torch.zeros((B, T), dtype=torch.bool)
        span_ids = torch.full((B, T), CONTEXT_SPAN, dtype=torch.long)
        stride = max((max(ex.span_ids, default=0) for ex in batch), default=0) + 1
        for b, ex in enumerate(batch):
            n = len(ex)
            input_ids[b, :n] = torch.tensor(ex.input_ids)
            attention[b, :n] = 1
            reason[b, :n] = torch.tensor(ex.reason_mask, dtype=torch.bool)
            act[b, :n] = torch.tensor(ex.act_mask, dtype=torch.bool)
            sp = torch.tensor(ex.span_ids)
            span_ids[b, :n] = torch.where(sp >= 0, sp + b * stride, sp)
        # padding stays context: attention 0, both masks 0
        out = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "reason_mask": reason,
            "act_mask": act,
            "span_ids": span_ids,
        }
        if any(isinstance(it, CachedExample) for it in items):
            out.update(_teacher_batch(items, (reason | act)[:, 1:]))
        return out


def _teacher_batch(items: Sequence[Encoded | CachedExample], sup: torch.Tensor) -> dict[str, torch.Tensor]:
    rows = []
    for b, it in enumerate(items):
        if not isinstance(it, CachedExample):
            raise ValueError("a batch mixes examples with and without cached teacher rows")
        n = int(sup[b].sum())
        if it.teacher.ids.shape[0] != n:
            raise ValueError(
                f"example {it.example.meta.get('id', b)!r} has {n} supervised positions but "
                f"{it.teacher.ids.shape[0]} cached teacher rows; the cache belongs to other examples"
            )
        rows.append(it.teacher)
    return {key: torch.cat(parts) for key, parts in zip(TEACHER_KEYS, zip(*rows, strict=True), strict=True)}
