"""Statistics of the report: confidence intervals of success rates and paired tests between methods.

Every success rate the report prints carries a 95 % confidence interval, and SAD is compared with
each baseline by a paired test over the same test tasks. The arithmetic is SciPy's; this module
only decides what is paired with what and how one row's seeds combine.

- one seed: the Wilson score interval of ``k`` successes in ``n`` episodes (``wilson_ci``);
- several seeds: the Student-t interval of the mean over seeds, never narrower than the Wilson
  interval of all the row's episodes pooled (three seeds that agree by chance do not make a
  zero-width interval) (``success_ci``);
- two methods on the same tasks: the exact McNemar test (a two-sided binomial test on the pairs
  where exactly one method succeeds) and a paired bootstrap interval of the difference in success
  (``paired_test``). With several seeds, pairs are (task, seed) matched by seed.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000


def wilson_ci(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a success rate, in % (``(0, 100)`` when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 100.0
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return 100.0 * float(ci.low), 100.0 * float(ci.high)


def t_ci(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The Student-t interval of the mean of ``values`` (at least two; a point when they are all equal)."""
    x = np.asarray(values, dtype=float)
    mean, sem = float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * sem
    return mean - half, mean + half


def success_ci(per_seed: Sequence[tuple[int, int]], level: float = LEVEL) -> dict:
    """Mean success % over seeds and its interval, from each seed's ``(successes, episodes)``.

    Returns:
        ``{"mean", "low", "high", "method" ("wilson" | "t+wilson"), "episodes"}``; all ``None``
        but ``episodes`` when no seed ran an episode.
    """
    runs = [(k, n) for k, n in per_seed if n > 0]
    episodes = sum(n for _, n in runs)
    if not runs:
        return {"mean": None, "low": None, "high": None, "method": None, "episodes": 0}
    rates = [100.0 * k / n for k, n in runs]
    pooled = wilson_ci(sum(k for k, _ in runs), episodes, level)
    if len(runs) == 1:
        low, high, method = *pooled, "wilson"
    else:
        t_low, t_high = t_ci(rates, level)
        low, high, method = max(0.0, min(t_low, pooled[0])), min(100.0, max(t_high, pooled[1])), "t+wilson"
    return {"mean": float(np.mean(rates)), "low": low, "high": high, "method": method, "episodes": episodes}


@dataclass
class PairedTest:
    """``a`` against ``b`` on the same ``pairs``: who alone succeeded, the difference and its p-value."""

    pairs: int
    a_only: int  # pairs where a succeeds and b fails
    b_only: int
    diff: float  # success % of a minus that of b, in points
    diff_low: float  # paired bootstrap interval of diff
    diff_high: float
    p_value: float  # exact McNemar, two-sided

    def to_json(self) -> dict:
        """Points to 6 decimals, the p-value to 6 significant digits."""
        out = {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}
        return out | {"p_value": float(f"{self.p_value:.6g}")}


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of ``a_only`` in ``a_only + b_only`` at 1/2."""
    n = a_only + b_only
    return 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5).pvalue)


def paired_test(a: Sequence[bool], b: Sequence[bool], level: float = LEVEL, seed: int = 0) -> PairedTest:
    """Compare two methods' successes on the same pairs (``a[i]`` and ``b[i]`` are one task [and seed])."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_test needs two equally long, non-empty outcome lists (got {len(a)} and {len(b)})")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = 100.0 * (x - y)
    a_only, b_only = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    if np.all(d == d[0]):  # no spread: every resample has the same mean
        low = high = float(d[0])
    else:
        res = stats.bootstrap(
            (d,), np.mean, confidence_level=level, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
            rng=np.random.default_rng(seed),
        )  # fmt: skip
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return PairedTest(len(d), a_only, b_only, float(d.mean()), low, high, mcnemar_p(a_only, b_only))
