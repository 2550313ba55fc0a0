"""The fused KD loss (the default): each chunk's gradient is computed in the forward pass, so backward
neither keeps nor recomputes logits."""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from agentdistill.losses.divergences import _NEG_INF, DIVERGENCES, _check, _dtype, _log_mix, _logsumexp


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


def _ce_rows(logits: Tensor, targets: Tensor, w: Tensor, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """Cross-entropy (as ``chunked_ce`` computes it) and w·∂CE/∂logits = w·(softmax − one-hot); a target of
    -100 (``F.cross_entropy``'s ignore_index) gives 0 and no gradient."""
    div = F.cross_entropy(logits, targets, reduction="none")
    if not need_grad:
        return div, None
    g = logits.softmax(-1)
    rows = torch.arange(len(targets), device=targets.device)
    g[rows, targets.clamp_min(0)] -= 1.0
    return div, g.mul_(torch.where(targets == -100, 0.0, w).unsqueeze(-1))


def fused_ce(
    student_hidden: Tensor,
    student_weight: Tensor,
    targets: Tensor,
    row_weights: Tensor,
    chunk_size: int = 512,
    bias: Tensor | None = None,
) -> FusedOut:
    """Σ_i w_i·CE(student logits_i, targets_i) (the SFT loss), its gradient computed in the forward pass.

    Equal to ``(row_weights * chunked_ce(...).loss).sum()`` in value and in gradient, each chunk's logits
    projected once (see ``fused_kd``).

    Args:
        student_hidden: ``(N, H)``; student_weight: ``(V, H)``; bias: ``(V,)`` or None.
        targets: ``(N,)`` int64 next-token ids; -100 adds nothing.
        row_weights: ``(N,)`` as in ``fused_kd``.
        chunk_size: rows per chunk.

    Returns:
        ``FusedOut``; ``div`` is the per-row cross-entropy and ``teacher_top1`` the targets.
    """

    def row_fn(
        logits: Tensor, start: int, end: int, w: Tensor, top1: Tensor, need_grad: bool
    ) -> tuple[Tensor, Tensor | None, None]:
        return (*_ce_rows(logits, targets[start:end], w, need_grad), None)

    loss, div, s_top1, _ = _fused(student_hidden, student_weight, bias, row_weights, row_fn, chunk_size)
    return FusedOut(loss, div, s_top1, targets)
