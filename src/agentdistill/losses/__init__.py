"""Divergences between teacher and student next-token distributions, and the SAD span sums.

Pure functions; nothing here reduces over positions, so the trainer can weight reasoning and action
tokens (L_CoT, L_Act of arXiv 2505.13820) and divide once by counts taken over the whole accumulated
batch. Shapes: B batch, T sequence length, V vocabulary, K cached top-k size, H hidden size, N number
of supervised positions (the B·(T-1) shifted positions with m_r + m_a = 1, flattened).
"""

from agentdistill.losses.chunked import CEOut, KDOut, chunked_ce, chunked_kd, chunked_kd_topk
from agentdistill.losses.divergences import DIVERGENCES, KINDS, divergence, divergence_topk, topk_from_logits
from agentdistill.losses.fused import FusedOut, fused_ce, fused_kd, fused_kd_topk
from agentdistill.losses.spans import span_loss_sums, span_weights

__all__ = [
    "CEOut",
    "DIVERGENCES",
    "FusedOut",
    "KDOut",
    "KINDS",
    "chunked_ce",
    "chunked_kd",
    "chunked_kd_topk",
    "divergence",
    "divergence_topk",
    "fused_ce",
    "fused_kd",
    "fused_kd_topk",
    "span_loss_sums",
    "span_weights",
    "topk_from_logits",
]
