"""Easy-to-hard curriculum: complexity scores and the sampler the Trainer draws batches from.

``C(τ) = α·z(|τ_r|) + β·z(|τ_a|) + γ·z(H_T(τ))`` (DESIGN §2): reasoning and action lengths in
student tokens and the teacher's mean per-token entropy on supervised tokens, each z-scored over
the dataset. Pacing ``sorted`` sweeps easy → hard every epoch, ``buckets`` (baby steps) trains on
the easiest bucket first and adds one harder bucket per stage, ``none`` shuffles.

Under ``accelerate`` the Trainer shards the batches of this sampler across processes in order
(process ``r`` takes batches ``r, r+W, ...``), so every process sees its own shard in curriculum
order; all processes build the same order from the same seed.
"""

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from torch.utils.data import Sampler

Pacing = Literal["sorted", "buckets", "none"]


def zscore(x: Sequence[float]) -> np.ndarray:
    """``(x - mean) / std``; a constant feature gives zeros (it cannot rank anything)."""
    a = np.asarray(x, dtype=np.float64)
    std = a.std()
    return np.zeros_like(a) if std == 0 or not np.isfinite(std) else (a - a.mean()) / std


def complexity_scores(
    reason_lens: Sequence[float],
    act_lens: Sequence[float],
    entropies: Sequence[float] | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Complexity ``C`` of every trajectory (higher = harder).

    Args:
        reason_lens: REASON tokens per trajectory, shape (N,).
        act_lens: ACT tokens per trajectory, shape (N,).
        entropies: teacher's mean entropy per supervised token, shape (N,); ``None`` drops the term.
        weights: ``(α, β, γ)``.

    Returns:
        float64 array of shape (N,).
    """
    alpha, beta, gamma = weights
    c = alpha * zscore(reason_lens) + beta * zscore(act_lens)
    if entropies is not None and gamma != 0:
        c = c + gamma * zscore(entropies)
    return c


def curriculum_order(scores: Sequence[float]) -> list[int]:
    """Indices sorted by score ascending; ties keep dataset order (stable), so reruns agree."""
    return [int(i) for i in np.argsort(np.asarray(scores), kind="stable")]


class CurriculumSampler(Sampler[int]):
    """Yields dataset indices in curriculum order.

    Args:
        scores: complexity per example (only the order matters).
        pacing: ``sorted`` | ``buckets`` | ``none``.
        num_buckets: number of difficulty buckets for ``buckets``; an epoch then has ``num_buckets``
            stages, stage ``j`` shuffles buckets ``1..j`` together (so easy examples are revisited).
        seed: seeds the shuffles; combined with the epoch set by the Trainer.
    """

    def __init__(
        self, scores: Sequence[float], pacing: Pacing = "sorted", num_buckets: int = 3, seed: int = 0
    ) -> None:
        self.order = curriculum_order(scores)
        self.pacing, self.num_buckets, self.seed, self.epoch = pacing, num_buckets, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.pacing == "sorted":
            return list(self.order)
        if self.pacing == "none":
            return [self.order[i] for i in rng.permutation(len(self.order))]
        buckets = np.array_split(np.asarray(self.order, dtype=np.int64), self.num_buckets)
        out: list[int] = []
        for stage in range(1, self.num_buckets + 1):
            pool = np.concatenate(buckets[:stage])
            out.extend(int(i) for i in pool[rng.permutation(len(pool))])
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        if self.pacing != "buckets":
            return len(self.order)
        sizes = [len(b) for b in np.array_split(np.arange(len(self.order)), self.num_buckets)]
        return sum(sum(sizes[:s]) for s in range(1, self.num_buckets + 1))
