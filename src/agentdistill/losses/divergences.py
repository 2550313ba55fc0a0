"""The divergences between teacher and student next-token distributions, from logits or normalised log-probs,
against a full teacher or a cached top-k one (K bins + a tail bin). Shapes as in ``agentdistill.losses``."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

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
