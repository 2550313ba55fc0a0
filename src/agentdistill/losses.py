"""Divergences between teacher and student next-token distributions, and the SAD span sums.

Pure functions; nothing here reduces over positions, so the trainer can weight reasoning and action
tokens (L_CoT, L_Act of arXiv 2505.13820) and divide once by counts taken over the whole accumulated
batch. Shapes: B batch, T sequence length, V vocabulary, K cached top-k size, H hidden size, N number
of supervised positions (the B·(T-1) shifted positions with m_r + m_a = 1, flattened).
"""

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

_NEG_INF = float("-inf")


# ---- log-space helpers (0·log 0 = 0, and no NaN gradients from -inf log-probs) ---------------
def _logsumexp(x: Tensor) -> Tensor:
    """logsumexp over the last dim; -inf where every entry is -inf, with zero (not NaN) gradients."""
    empty = (x == _NEG_INF).all(-1, keepdim=True)
    return x.masked_fill(empty, 0.0).logsumexp(-1).masked_fill(empty.squeeze(-1), _NEG_INF)


def _log_mix(log_p: Tensor, log_q: Tensor, w: float) -> Tensor:
    """log(w·p + (1 − w)·q), elementwise, for w in [0, 1]."""
    log_w = math.log(w) if w > 0 else _NEG_INF
    log_1mw = math.log1p(-w) if w < 1 else _NEG_INF
    return _logsumexp(torch.stack([log_p + log_w, log_q + log_1mw], dim=-1))


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) over the last dim, with 0·log 0 = 0.

    Entries outside p's support are filled with 0 *before* the product so that their gradient is
    0 rather than 0·inf = NaN. KL is +inf where p > 0 and q = 0, as it should be.
    """
    off = log_p == _NEG_INF
    lp, lq = log_p.masked_fill(off, 0.0), log_q.masked_fill(off, 0.0)
    return (lp.exp() * (lp - lq)).masked_fill(off, 0.0).sum(-1)


# ---- the divergences, on normalised log-probs: (log_s, log_t, beta) (..., V) -> (...) ------------
def _jsd(log_s: Tensor, log_t: Tensor, beta: float) -> Tensor:
    # TRL GKD's generalized_jsd_loss special-cases the endpoints; the formula itself tends to 0 there.
    if beta == 0:
        return _kl(log_t, log_s)
    if beta == 1:
        return _kl(log_s, log_t)
    log_m = _log_mix(log_t, log_s, beta)
    return beta * _kl(log_t, log_m) + (1 - beta) * _kl(log_s, log_m)


DIVERGENCES: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "fkl": lambda log_s, log_t, beta: _kl(log_t, log_s),
    "rkl": lambda log_s, log_t, beta: _kl(log_s, log_t),
    "jsd": _jsd,
    "skl": lambda log_s, log_t, beta: _kl(log_t, _log_mix(log_t, log_s, beta)),
    "srkl": lambda log_s, log_t, beta: _kl(log_s, _log_mix(log_t, log_s, 1 - beta)),
    "tvd": lambda log_s, log_t, beta: 0.5 * (log_t.exp() - log_s.exp()).abs().sum(-1),
}
KINDS = tuple(DIVERGENCES)


def _check(kind: str, beta: float, temperature: float) -> None:
    if kind not in DIVERGENCES:
        raise ValueError(f"unknown divergence {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _dtype(*xs: Tensor) -> torch.dtype:
    """At least float32 (bf16/fp16 logits are upcast); float64 stays float64."""
    dtype = torch.float32
    for x in xs:
        dtype = torch.promote_types(dtype, x.dtype)
    return dtype


def divergence(
    student_logits: Tensor, teacher_logits: Tensor, kind: str, beta: float = 0.5, temperature: float = 1.0
) -> Tensor:
    """Per-position divergence D(p_T, p_S) between teacher and student next-token distributions.

    With s = softmax(student_logits / τ) and t = softmax(teacher_logits / τ):

    - ``fkl``: KL(t ‖ s) (the paper's D); ``rkl``: KL(s ‖ t);
    - ``jsd``: β·KL(t ‖ m) + (1 − β)·KL(s ‖ m), m = β·t + (1 − β)·s (TRL GKD's generalized JSD). As in
      TRL, β = 0 returns exactly FKL and β = 1 exactly RKL. These are special cases: the formula
      itself goes to 0 at both ends (JSD ≈ β·FKL as β → 0 and ≈ (1 − β)·RKL as β → 1);
    - ``skl``: KL(t ‖ α·t + (1 − α)·s) and ``srkl``: KL(s ‖ (1 − α)·t + α·s), DistiLLM's skew KLs with
      α = ``beta``. α = 0 gives FKL / RKL and α = 1 gives 0, with no special cases;
    - ``tvd``: ½·Σ_v |t_v − s_v|.

    Computed in log space in float32 or wider. Tokens with -inf logits (masked vocabulary) have
    probability 0 and add 0 (0·log 0 = 0) with finite gradients. The value is +inf only where it is
    mathematically infinite, e.g. FKL where the student gives probability 0 to a token the teacher
    does not.
    The loss is *not* multiplied by τ²: SAD has no hard-label term to balance, so the scale is left
    to λ_r, λ_a and the learning rate.

    Args:
        student_logits: ``(..., V)`` float, any float dtype.
        teacher_logits: ``(..., V)`` float, same shape.
        kind: one of ``KINDS``.
        beta: β of ``jsd``, α of ``skl``/``srkl``, in [0, 1]; ignored by the other kinds.
        temperature: τ > 0 applied to both logits.

    Returns:
        ``(...)`` float32 (float64 for float64 inputs): one value per position, summed over V.

    Raises:
        ValueError: unknown kind, β outside [0, 1], τ ≤ 0, or mismatched shapes.
    """
    _check(kind, beta, temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} != teacher {tuple(teacher_logits.shape)}")
    dtype = _dtype(student_logits, teacher_logits)
    log_s = F.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.to(dtype) / temperature, dim=-1)
    return DIVERGENCES[kind](log_s, log_t, beta)


# ---- cached teacher: top-k log-probs + one tail bin ---------------------------------------------
@torch.no_grad()
def topk_from_logits(teacher_logits: Tensor, k: int, temperature: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """What the cache writer stores for each supervised position: top-k log-probs and the tail.

    The temperature of a cached teacher is applied here, once; ``divergence_topk`` then tempers
    only the student. The tail is the logsumexp of the log-probs outside the top k (not
    log(1 − Σ top-k), which cancels catastrophically when the top k hold nearly all the mass), so
    it is exactly -inf when k = V.

    Args:
        teacher_logits: ``(N, V)`` float.
        k: 1 ≤ k ≤ V.
        temperature: τ > 0.

    Returns:
        ``ids`` ``(N, K)`` int64, ``logprobs`` ``(N, K)`` float32 (sorted, descending) and
        ``tail_logprob`` ``(N,)`` float32, all log-probs of softmax(teacher_logits / τ).
    """
    log_t = F.log_softmax(teacher_logits.to(_dtype(teacher_logits)) / temperature, dim=-1)
    logprobs, ids = log_t.topk(k, dim=-1)
    return ids, logprobs, _logsumexp(log_t.scatter(-1, ids, _NEG_INF))


def divergence_topk(
    student_logits: Tensor,
    topk_ids: Tensor,
    topk_logprobs: Tensor,
    tail_logprob: Tensor,
    kind: str,
    beta: float = 0.5,
    temperature: float = 1.0,
) -> Tensor:
    """``divergence`` against a cached teacher, over K + 1 bins: the K cached tokens and "the rest".

    The teacher's bins are ``topk_logprobs`` and ``tail_logprob`` (already tempered by the cache
    writer, see ``topk_from_logits``). The student's are its log-probs at τ on the same ids and the
    logsumexp of its log-probs on every other token (exact; -inf when the ids cover the vocabulary).
    With K = V and tail = -inf this equals ``divergence`` on full logits; with K < V it is the
    divergence between the coarse-grained distributions, never larger than the full one.

    Args:
        student_logits: ``(N, V)`` float, raw (untempered) logits.
        topk_ids: ``(N, K)`` int64, distinct ids per row.
        topk_logprobs: ``(N, K)`` float, teacher log-probs of those ids.
        tail_logprob: ``(N,)`` float, log of the teacher's remaining mass (-inf if none).
        kind: one of ``KINDS``.
        beta: as in ``divergence``.
        temperature: τ > 0, applied to the student only.

    Returns:
        ``(N,)`` float32 (float64 for float64 inputs).
    """
    _check(kind, beta, temperature)
    dtype = _dtype(student_logits, topk_logprobs)
    log_s_full = F.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    log_s_rest = _logsumexp(log_s_full.scatter(-1, topk_ids, _NEG_INF))
    log_s = torch.cat([log_s_full.gather(-1, topk_ids), log_s_rest.unsqueeze(-1)], dim=-1)
    log_t = torch.cat([topk_logprobs.to(dtype), tail_logprob.to(dtype).unsqueeze(-1)], dim=-1)
    return DIVERGENCES[kind](log_s, log_t, beta)


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


# ---- fused: the gradient computed in the forward pass, chunk by chunk ----------------------------
# ∂D/∂log_s for each divergence, (log_s, log_t, beta) -> (..., V), 0 where the student's probability is 0.
def _d_fkl(log_s: Tensor, log_t: Tensor, beta: float) -> Tensor:
    return -log_t.exp()  # D = Σ t (log t − log s)


def _d_rkl(log_s: Tensor, log_t: Tensor, beta: float) -> Tensor:
    s = log_s.exp()  # D = Σ s (log s − log t)
    return torch.where(s > 0, s * (log_s - log_t + 1), 0.0)


def _d_jsd(log_s: Tensor, log_t: Tensor, beta: float) -> Tensor:
    if beta == 0:
        return _d_fkl(log_s, log_t, beta)
    if beta == 1:
        return _d_rkl(log_s, log_t, beta)
    s = log_s.exp()  # the t-term and the s-term's ∂m/∂s parts cancel: (1 − β)·s·(log s − log m)
    return torch.where(s > 0, (1 - beta) * s * (log_s - _log_mix(log_t, log_s, beta)), 0.0)


def _d_skl(log_s: Tensor, log_t: Tensor, alpha: float) -> Tensor:
    both = (log_s > _NEG_INF) & (log_t > _NEG_INF)  # D = Σ t (log t − log m), m = α·t + (1 − α)·s
    return torch.where(both, -(1 - alpha) * (log_t + log_s - _log_mix(log_t, log_s, alpha)).exp(), 0.0)


def _d_srkl(log_s: Tensor, log_t: Tensor, alpha: float) -> Tensor:
    s = log_s.exp()  # D = Σ s (log s − log m), m = (1 − α)·t + α·s
    r = log_s - _log_mix(log_t, log_s, 1 - alpha)
    return torch.where(s > 0, s * (r + 1 - alpha * r.exp()), 0.0)


def _d_tvd(log_s: Tensor, log_t: Tensor, beta: float) -> Tensor:
    s = log_s.exp()  # D = ½ Σ |t − s|; sign(0) = 0, as autograd's abs
    return 0.5 * torch.sign(s - log_t.exp()) * s


_D_LOG_S: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "fkl": _d_fkl,
    "rkl": _d_rkl,
    "jsd": _d_jsd,
    "skl": _d_skl,
    "srkl": _d_srkl,
    "tvd": _d_tvd,
}


def _log_softmax(logits: Tensor, temperature: float) -> Tensor:
    return F.log_softmax(logits / temperature if temperature != 1 else logits, dim=-1)


def _weighted_grad(a: Tensor, s: Tensor, sum_a: Tensor, w: Tensor, temperature: float) -> Tensor:
    """w·∂D/∂logits = w·(a − s·Σ_v a_v)/τ, in place of ``a`` (a = ∂D/∂log_s, s the student's probabilities).

    The chain rule through log_softmax(logits / τ): the ops autograd runs for ``divergence``.
    """
    scale = (w / temperature).unsqueeze(-1)
    return a.mul_(scale).addcmul_(s, sum_a * scale, value=-1)


def _fkl_rows(
    logits: Tensor, log_t: Tensor, w: Tensor, temperature: float, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Forward KL and its weighted gradient w·(s − t)/τ in few passes over (n, V): the default's fast path.

    D is computed exactly as ``_kl`` computes it (so it is bit-for-bit the checkpointed path's); the
    gradient takes Σ_v t_v = 1 rather than summing it.
    """
    log_s = _log_softmax(logits, temperature)
    t = log_t.exp()
    terms = (log_t - log_s).mul_(t)
    div = terms.sum(-1)
    if not torch.isfinite(div).all():  # 0·log 0 = 0 where the teacher gives probability 0, as in ``_kl``
        div = terms.masked_fill_(log_t == _NEG_INF, 0.0).sum(-1)
    if not need_grad:
        return div, None
    del terms
    scale = (w / temperature).unsqueeze(-1)
    return div, t.mul_(-scale).addcmul_(log_s.exp_(), scale)


def _rows(
    logits: Tensor, log_t: Tensor, w: Tensor, kind: str, beta: float, temperature: float, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """``(D (n,), w·∂D/∂logits (n, V) or None)`` from raw student logits and teacher log-probs at τ."""
    if kind == "fkl" or (kind == "jsd" and beta == 0):
        return _fkl_rows(logits, log_t, w, temperature, need_grad)
    log_s = _log_softmax(logits, temperature)
    div = DIVERGENCES[kind](log_s, log_t, beta)
    if not need_grad:
        return div, None
    a = _D_LOG_S[kind](log_s, log_t, beta)
    return div, _weighted_grad(a, log_s.exp_(), a.sum(-1, keepdim=True), w, temperature)


def _topk_rows(
    logits: Tensor,
    top1: Tensor,
    ids: Tensor,
    log_t: Tensor,
    w: Tensor,
    kind: str,
    beta: float,
    temperature: float,
    need_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """``_rows`` against K cached teacher bins and a tail bin: ``log_t`` is ``(n, K + 1)``.

    One softmax over the vocabulary; the student's log-probs at ``ids`` are z − log Σ exp z with the
    normaliser taken from its top-1 token (whose probability is ≥ 1/V), so they never underflow. Its
    tail mass is the sum of its probabilities outside ``ids`` (zeroed in place: exact, no cancelling
    1 − Σ top-k), and the logsumexp of their log-probs where that sum is within 8 orders of magnitude
    of underflowing. The tail bin's gradient goes back to the vocabulary as autograd would take it:
    a_tail·s_v / s_tail on each token v outside ``ids``.
    """
    z = logits / temperature if temperature != 1 else logits
    s = torch.softmax(z, dim=-1)  # (n, V)
    top = top1.unsqueeze(-1)
    lse = z.gather(-1, top) - s.gather(-1, top).log()  # (n, 1)
    s_k = s.gather(-1, ids)
    tail = s.scatter_(-1, ids, 0.0).sum(-1, keepdim=True)  # s is now 0 at ids; exactly 0 when K = V
    log_tail = tail.log()
    tiny = torch.finfo(s.dtype).tiny * 1e8
    exact = (tail < tiny).squeeze(-1).nonzero().squeeze(-1) if ids.shape[-1] < s.shape[-1] else ids[:0, 0]
    if exact.numel():  # rows whose tail would underflow: in log space
        log_rest = z[exact].scatter(-1, ids[exact], _NEG_INF) - lse[exact]  # (m, V), -inf at ids
        log_tail[exact] = _logsumexp(log_rest).unsqueeze(-1)
    log_s = torch.cat([z.gather(-1, ids) - lse, log_tail], dim=-1)  # (n, K + 1)
    div = DIVERGENCES[kind](log_s, log_t, beta)
    if not need_grad:
        return div, None
    a = _D_LOG_S[kind](log_s, log_t, beta)  # (n, K + 1)
    scale = (w / temperature).unsqueeze(-1)
    sum_a = a.sum(-1, keepdim=True)
    a_tail = a[:, -1:]
    # tokens outside ids: s_v·(a_tail/s_tail − Σa)·w/τ
    spread = torch.where(tail > 0, a_tail / tail.clamp_min(tiny), 0.0)
    g = s.mul_((spread - sum_a) * scale)
    if exact.numel():  # a_tail·exp(log s_v − log s_tail) − s_v·Σa, as autograd takes it
        g_exact = (log_rest - log_tail[exact]).exp_().mul_(a_tail[exact])
        g[exact] = g_exact.sub_(log_rest.exp_().mul_(sum_a[exact])).mul_(scale[exact])
    return div, g.scatter_(-1, ids, (a[:, :-1] - s_k * sum_a) * scale)


class FusedOut(NamedTuple):
    """``loss`` 0-d Σ_i w_i·D_i (differentiable); ``div`` ``(N,)`` detached D_i; top-1 ids ``(N,)`` int64."""

    loss: Tensor
    div: Tensor
    student_top1: Tensor
    teacher_top1: Tensor


# (student logits (n, V), start, end, row weights (n,), student top-1 (n,), need_grad)
#   -> (D (n,), w·∂D/∂logits (n, V) or None, teacher top-1 (n,) or None)
RowFn = Callable[[Tensor, int, int, Tensor, Tensor, bool], tuple[Tensor, Tensor | None, Tensor | None]]


class _FusedHeadLoss(torch.autograd.Function):
    """Σ_i w_i·D_i over rows of ``hidden @ weight.T + bias``, with its gradient computed in forward.

    Forward projects ``chunk_size`` rows at a time, asks ``row_fn`` for D and w·∂D/∂logits of the
    chunk and multiplies the latter into the gradients of ``hidden``, ``weight`` and ``bias``, which
    are all it keeps. Backward only scales them by the upstream gradient: no logits are kept or
    recomputed.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        row_weights: Tensor,
        row_fn: RowFn,
        chunk_size: int,
        need_grad: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n = hidden.shape[0]
        dtype = _dtype(hidden, weight)
        div = hidden.new_empty(n, dtype=dtype)
        s_top1 = torch.empty(n, dtype=torch.long, device=hidden.device)
        t_top1 = torch.empty(n, dtype=torch.long, device=hidden.device)
        g_hidden = torch.empty(hidden.shape, dtype=dtype, device=hidden.device) if need_grad else None
        g_weight = torch.zeros(weight.shape, dtype=dtype, device=weight.device) if need_grad else None
        g_bias = torch.zeros(bias.shape, dtype=dtype, device=bias.device) if need_grad and bias is not None else None
        w_all = row_weights.to(dtype)
        weight_c = weight.to(dtype)
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            h, w = hidden[start:end], w_all[start:end]
            logits = F.linear(h, weight, bias)
            top1 = s_top1[start:end] = logits.argmax(-1)
            d, g, t1 = row_fn(logits.to(dtype), start, end, w, top1, need_grad)
            div[start:end] = d
            if t1 is not None:
                t_top1[start:end] = t1
            if g is None:
                continue
            if not torch.isfinite(d).all():  # a row left out (w = 0) must not bring its inf/nan gradient
                g[w == 0] = 0.0
            torch.mm(g, weight_c, out=g_hidden[start:end])
            g_weight.addmm_(g.T, h.to(dtype))
            if g_bias is not None:
                g_bias += g.sum(0)
        loss = torch.where(w_all != 0, w_all * div, 0.0).sum()
        ctx.save_for_backward(g_hidden, g_weight, g_bias)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        ctx.mark_non_differentiable(div, s_top1, t_top1)
        return loss, div, s_top1, t_top1

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        grads = [
            None if g is None or not need else (g * grad_loss).to(dt)
            for g, need, dt in zip(ctx.saved_tensors, ctx.needs_input_grad[:3], ctx.dtypes, strict=True)
        ]
        return (*grads, None, None, None, None)


def _fused(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    row_weights: Tensor,
    row_fn: RowFn,
    chunk_size: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if row_weights.shape != hidden.shape[:1]:
        raise ValueError(f"row_weights {tuple(row_weights.shape)} != ({hidden.shape[0]},): one weight per row")
    params = (hidden, weight) if bias is None else (hidden, weight, bias)
    need_grad = torch.is_grad_enabled() and any(p.requires_grad for p in params)
    return _FusedHeadLoss.apply(hidden, weight, bias, row_weights.detach(), row_fn, chunk_size, need_grad)


def fused_kd(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_logits_fn: Callable[[int, int], Tensor],
    row_weights: Tensor,
    kind: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    chunk_size: int = 512,
    bias: Tensor | None = None,
) -> FusedOut:
    """Σ_i w_i·``divergence``(student logits_i, teacher logits_i), its gradient computed in the forward pass.

    Equal to ``(row_weights * chunked_kd(...).div).sum()`` in value and in gradient, but each chunk's
    logits are projected once: forward computes D and w·∂D/∂logits per chunk (analytically: a =
    ∂D/∂log_s per divergence, then the chain rule through log_softmax) and keeps only the gradients
    of ``student_hidden`` ``(N, H)``, ``student_weight`` ``(V, H)`` and ``bias``; backward scales
    them by the upstream gradient. So the weights must be known before the loss, as the trainer's
    are. ``teacher_logits_fn(start, end)`` is called once per chunk, under ``no_grad``.

    Args:
        student_hidden: ``(N, H)`` final hidden states at supervised positions.
        student_weight: ``(V, H)`` the student's output embedding; bias: ``(V,)`` or None.
        teacher_logits_fn: ``(start, end) -> (end − start, V)`` float.
        row_weights: ``(N,)`` w_i, e.g. ``span_weights(...) / count``; rows with w_i = 0 add nothing.
        kind, beta, temperature: as in ``divergence``.
        chunk_size: rows per chunk.

    Returns:
        ``FusedOut``: ``loss`` is differentiable w.r.t. ``student_hidden``, ``student_weight`` and ``bias``.
    """
    _check(kind, beta, temperature)

    def row_fn(
        logits: Tensor, start: int, end: int, w: Tensor, top1: Tensor, need_grad: bool
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        teacher = teacher_logits_fn(start, end)
        log_t = _log_softmax(teacher.to(logits.dtype), temperature)
        return (*_rows(logits, log_t, w, kind, beta, temperature, need_grad), teacher.argmax(-1))

    return FusedOut(*_fused(student_hidden, student_weight, bias, row_weights, row_fn, chunk_size))


def fused_kd_topk(
    student_hidden: Tensor,
    student_weight: Tensor,
    topk_ids: Tensor,
    topk_logprobs: Tensor,
    tail_logprob: Tensor,
    row_weights: Tensor,
    kind: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    chunk_size: int = 512,
    bias: Tensor | None = None,
) -> FusedOut:
    """``fused_kd`` against a cached teacher: Σ_i w_i·``divergence_topk`` over K + 1 bins (see ``_topk_rows``).

    Args:
        student_hidden: ``(N, H)``; student_weight: ``(V, H)``; bias: ``(V,)`` or None.
        topk_ids, topk_logprobs, tail_logprob: ``(N, K)``, ``(N, K)``, ``(N,)`` as in ``divergence_topk``.
        row_weights: ``(N,)`` as in ``fused_kd``.
        kind, beta, temperature, chunk_size: as in ``fused_kd`` (τ tempers the student only).

    Returns:
        ``FusedOut``; ``teacher_top1`` is the cached id with the largest log-prob.
    """
    _check(kind, beta, temperature)
    teacher_top1 = topk_ids.gather(-1, topk_logprobs.argmax(-1, keepdim=True)).squeeze(-1)

    def row_fn(
        logits: Tensor, start: int, end: int, w: Tensor, top1: Tensor, need_grad: bool
    ) -> tuple[Tensor, Tensor | None, None]:
        ids = topk_ids[start:end].long()
        log_t = torch.cat([topk_logprobs[start:end], tail_logprob[start:end].unsqueeze(-1)], dim=-1)
        return (*_topk_rows(logits, top1, ids, log_t.to(logits.dtype), w, kind, beta, temperature, need_grad), None)

    loss, div, s_top1, _ = _fused(student_hidden, student_weight, bias, row_weights, row_fn, chunk_size)
    return FusedOut(loss, div, s_top1, teacher_top1)


def span_weights(
    reason: Tensor,
    act: Tensor,
    span_ids: Tensor | None = None,
    normalize: Literal["token", "span"] = "token",
    lambda_reason: float = 1.0,
    lambda_act: float = 1.0,
) -> Tensor:
    """Per-position weights w with Σ_i w_i·D_i = λ_r·``reason_sum`` + λ_a·``act_sum`` of ``span_loss_sums``.

    ``token``: w = λ_r on reasoning and λ_a on action positions; ``span``: λ over the number of the
    span's positions in the batch, so each span contributes the mean of D over its tokens.

    Args:
        reason, act, span_ids, normalize: as in ``span_loss_sums``.
        lambda_reason, lambda_act: λ_r, λ_a.

    Returns:
        ``(N,)`` float64 (the fused losses cast it to their compute dtype); 0 at positions that are neither
        reasoning nor action.
    """
    if normalize not in ("token", "span"):
        raise ValueError(f"normalize must be 'token' or 'span', got {normalize!r}")
    if normalize == "span" and span_ids is None:
        raise ValueError("normalize='span' needs span_ids")
    w = reason.double() * lambda_reason + act.double() * lambda_act
    if normalize == "span":
        sup = reason | act
        _, inverse = torch.unique(span_ids[sup], return_inverse=True)
        w[sup] = w[sup] / torch.bincount(inverse)[inverse]
    return w


# ---- span sums: L_CoT and L_Act before normalisation -------------------------------------------
def span_loss_sums(
    div: Tensor,
    reason: Tensor,
    act: Tensor,
    span_ids: Tensor | None = None,
    normalize: Literal["token", "span"] = "token",
) -> dict[str, Tensor]:
    """Numerators and denominators of L_CoT and L_Act (arXiv 2505.13820), to divide by global counts.

    ``token``: ``reason_sum`` = Σ_t m_r(t)·D_t (L_CoT), ``act_sum`` = Σ_t m_a(t)·D_t (L_Act), and the
    counts are the numbers of reasoning / action tokens. ``span``: each span contributes the mean
    of D over its tokens, so ``*_sum`` is the sum of per-span means and ``*_count`` the number of
    spans; a 3-token action then weighs as much as a 60-token thought. Summing these over all
    micro-batches and processes before dividing gives the same loss as one big batch.

    Args:
        div: ``(N,)`` float per-position divergence (or cross-entropy).
        reason: ``(N,)`` bool, m_r.
        act: ``(N,)`` bool, m_a (disjoint from ``reason``).
        span_ids: ``(N,)`` int64 span index, unique within the batch; required for ``span``.
        normalize: ``"token"`` or ``"span"``.

    Returns:
        ``{"reason_sum", "act_sum"}``: 0-d float tensors attached to ``div``'s graph;
        ``{"reason_count", "act_count"}``: 0-d int64 tensors.
    """
    if normalize not in ("token", "span"):
        raise ValueError(f"normalize must be 'token' or 'span', got {normalize!r}")
    if normalize == "span" and span_ids is None:
        raise ValueError("normalize='span' needs span_ids")
    out: dict[str, Tensor] = {}
    for name, mask in (("reason", reason), ("act", act)):
        values = div[mask]
        if normalize == "token":
            out[f"{name}_sum"], out[f"{name}_count"] = values.sum(), mask.sum()
            continue
        ids, inverse = torch.unique(span_ids[mask], return_inverse=True)
        sums = values.new_zeros(ids.numel()).index_add(0, inverse, values)
        counts = torch.bincount(inverse, minlength=ids.numel())
        out[f"{name}_sum"] = (sums / counts).sum()
        out[f"{name}_count"] = torch.tensor(ids.numel(), device=div.device)
    return out
