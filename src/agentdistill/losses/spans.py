"""SAD's span terms: per-position weights, and the sums and counts of L_CoT and L_Act."""

from typing import Literal

import torch
from torch import Tensor


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
