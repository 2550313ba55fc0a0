"""Losses from hidden states in row chunks under activation checkpointing: never a full (N, V) logits tensor;
backward recomputes each chunk's logits (the SFT cross-entropy, and the KD path before ``fused``)."""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from agentdistill.losses.divergences import _check, _dtype, divergence, divergence_topk


# ---- chunked from hidden states: never a full (N, V) logits tensor ------------------------------
class KDOut(NamedTuple):
    """``div`` ``(N,)`` float32; ``student_top1``, ``teacher_top1`` ``(N,)`` int64 (argmax ids)."""

    div: Tensor
    student_top1: Tensor
    teacher_top1: Tensor


class CEOut(NamedTuple):
    """``loss`` ``(N,)`` float32 cross-entropy; ``student_top1`` ``(N,)`` int64."""

    loss: Tensor
    student_top1: Tensor


def _chunked(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    chunk_size: int,
    row_fn: Callable[[Tensor, int, int], tuple[Tensor, ...]],
) -> tuple[Tensor, ...]:
    """Concatenate ``(row_fn(logits, start, end)[0], argmax, *row_fn(...)[1:])`` over row chunks.

    Each chunk runs under non-reentrant activation checkpointing: backward keeps only the chunk's
    inputs (a view of ``hidden``, ``weight``, ``bias``) and recomputes its (n, V) logits, so peak
    memory holds one chunk of logits in forward and in backward. Outside autograd it runs plainly.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    def one_chunk(h: Tensor, w: Tensor, b: Tensor | None, start: int, end: int) -> tuple[Tensor, ...]:
        logits = F.linear(h, w, b)
        value, *extra = row_fn(logits, start, end)
        return (value, logits.argmax(-1), *extra)

    n = hidden.shape[0]
    outs = []
    # N = 0 still runs one empty chunk, so the (empty) result stays attached to the graph.
    for start in range(0, max(n, 1), chunk_size):
        end = min(start + chunk_size, n)
        args = (hidden[start:end], weight, bias, start, end)
        if torch.is_grad_enabled():
            outs.append(checkpoint(one_chunk, *args, use_reentrant=False, preserve_rng_state=False))
        else:
            outs.append(one_chunk(*args))
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def chunked_kd(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_logits_fn: Callable[[int, int], Tensor],
    kind: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    bias: Tensor | None = None,
) -> KDOut:
    """``divergence(student_hidden @ student_weight.T + bias, teacher logits)`` chunk by chunk.

    ``teacher_logits_fn(start, end)`` returns the teacher's ``(end − start, V)`` logits for rows
    ``start:end``. It is called under ``no_grad`` (the teacher is a fixed target), and again for
    each chunk during backward, so it must be deterministic; projecting the teacher's cached
    hidden states through its head, or slicing a precomputed tensor, both are.

    Args:
        student_hidden: ``(N, H)`` final hidden states at supervised positions.
        student_weight: ``(V, H)`` the student's output embedding.
        teacher_logits_fn: ``(start, end) -> (end − start, V)`` float.
        kind, beta, temperature: as in ``divergence``.
        chunk_size: rows per chunk.
        bias: ``(V,)`` optional lm_head bias.

    Returns:
        ``KDOut``; ``div`` is differentiable w.r.t. ``student_hidden``, ``student_weight`` and ``bias``.
    """
    _check(kind, beta, temperature)

    def row_fn(logits: Tensor, start: int, end: int) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            teacher = teacher_logits_fn(start, end)
        return divergence(logits, teacher, kind, beta, temperature), teacher.argmax(-1)

    return KDOut(*_chunked(student_hidden, student_weight, bias, chunk_size, row_fn))


def chunked_kd_topk(
    student_hidden: Tensor,
    student_weight: Tensor,
    topk_ids: Tensor,
    topk_logprobs: Tensor,
    tail_logprob: Tensor,
    kind: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    bias: Tensor | None = None,
) -> KDOut:
    """``chunked_kd`` against a cached teacher (``divergence_topk`` per chunk).

    Args:
        student_hidden: ``(N, H)``; student_weight: ``(V, H)``; bias: ``(V,)`` or None.
        topk_ids, topk_logprobs, tail_logprob: ``(N, K)``, ``(N, K)``, ``(N,)`` as in ``divergence_topk``.
        kind, beta, temperature, chunk_size: as in ``chunked_kd`` (τ tempers the student only).

    Returns:
        ``KDOut``; ``teacher_top1`` is the cached id with the largest log-prob.
    """
    _check(kind, beta, temperature)
    teacher_top1 = topk_ids.gather(-1, topk_logprobs.argmax(-1, keepdim=True)).squeeze(-1)

    def row_fn(logits: Tensor, start: int, end: int) -> tuple[Tensor]:
        args = (topk_ids[start:end], topk_logprobs[start:end], tail_logprob[start:end])
        return (divergence_topk(logits, *args, kind, beta, temperature),)

    div, student_top1 = _chunked(student_hidden, student_weight, bias, chunk_size, row_fn)
    return KDOut(div, student_top1, teacher_top1)


def chunked_ce(
    student_hidden: Tensor, student_weight: Tensor, targets: Tensor, chunk_size: int = 1024, bias: Tensor | None = None
) -> CEOut:
    """Per-position cross-entropy of the student on ``targets`` (SFT baseline), chunk by chunk.

    Args:
        student_hidden: ``(N, H)``; student_weight: ``(V, H)``; bias: ``(V,)`` or None.
        targets: ``(N,)`` int64 next-token ids; -100 gives a loss of 0 (``F.cross_entropy``'s ignore_index).
        chunk_size: rows per chunk.

    Returns:
        ``CEOut`` with ``loss`` ``(N,)`` float32 (float64 for float64 inputs), no reduction.
    """

    def row_fn(logits: Tensor, start: int, end: int) -> tuple[Tensor]:
        return (F.cross_entropy(logits.to(_dtype(logits)), targets[start:end], reduction="none"),)

    return CEOut(*_chunked(student_hidden, student_weight, bias, chunk_size, row_fn))
