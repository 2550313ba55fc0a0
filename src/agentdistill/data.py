"""Trajectory files -> encoded training examples -> padded batches.

``encode_records`` segments each record (``segment.py``), builds its masks (``masks.py``) and fits
it to ``max_length``; ``DistillCollator`` right-pads a list of examples into tensors.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


class EncodedDataset(torch.utils.data.Dataset):
    """A list of ``Encoded`` examples as a map-style dataset."""

    def __init__(self, examples: Sequence[Encoded]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Encoded:
        return self.examples[i]


@dataclass
class DistillCollator:
    """Right-pads examples into ``input_ids``/``attention_mask``/``reason_mask``/``act_mask``/``span_ids``.

    All tensors are (B, T). Masks are per *token* (``reason_mask[b, t]`` = token ``t`` is REASON);
    the trainer shifts them to the positions that predict those tokens. ``span_ids`` are made unique
    within the batch (``row * stride + span``) so per-span averages never merge two rows' spans.
    """

    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None

    def __call__(self, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
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
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "reason_mask": reason,
            "act_mask": act,
            "span_ids": span_ids,
        }
