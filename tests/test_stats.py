"""The report's statistics against values computed by hand from their textbook formulas."""

import math

import pytest

from agentdistill.stats import mcnemar_p, paired_test, success_ci, t_ci, wilson_ci

Z95 = 1.959963984540054  # the 97.5 % normal quantile
T95_DF2 = 4.302652729911275  # the 97.5 % Student-t quantile, 2 degrees of freedom


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p, z2 = k / n, Z95**2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return 100 * (center - half), 100 * (center + half)


@pytest.mark.parametrize(("k", "n"), [(7, 20), (0, 50), (50, 50), (1, 3), (134, 134), (61, 200)])
def test_wilson_interval_equals_the_formula(k, n):
    low, high = wilson_ci(k, n)
    want = wilson_by_hand(k, n)
    assert low == pytest.approx(want[0], abs=1e-9)
    assert high == pytest.approx(want[1], abs=1e-9)
    assert 0.0 <= low <= 100 * k / n <= high <= 100.0


def test_wilson_interval_of_7_in_20_is_the_published_value():
    # Newcombe (1998), Table I style check: 7/20 -> 0.1812 to 0.5671
    low, high = wilson_ci(7, 20)
    assert (round(low / 100, 4), round(high / 100, 4)) == (0.1812, 0.5671)


def test_t_interval_over_three_seeds():
    low, high = t_ci([10.0, 20.0, 30.0])
    half = T95_DF2 * 10.0 / math.sqrt(3)
    assert (low, high) == (pytest.approx(20 - half), pytest.approx(20 + half))


def test_success_ci_one_seed_is_wilson():
    ci = success_ci([(7, 20)])
    assert ci["method"] == "wilson"
    assert ci["mean"] == pytest.approx(35.0)
    assert (ci["low"], ci["high"]) == (
        pytest.approx(wilson_by_hand(7, 20)[0]),
        pytest.approx(wilson_by_hand(7, 20)[1]),
    )
    assert ci["episodes"] == 20


def test_success_ci_several_seeds_is_t_clipped_to_0_100():
    ci = success_ci([(1, 10), (2, 10), (3, 10)])
    half = T95_DF2 * 10.0 / math.sqrt(3)
    assert ci["mean"] == pytest.approx(20.0)
    assert ci["low"] == 0.0  # 20 - 24.8 clipped
    assert ci["high"] == pytest.approx(20 + half)
    assert ci["method"] == "t+wilson"


def test_success_ci_seeds_that_agree_are_never_narrower_than_the_pooled_episodes():
    ci = success_ci([(5, 10), (5, 10), (5, 10)])  # t interval has zero width
    pooled = wilson_by_hand(15, 30)
    assert (ci["low"], ci["high"]) == (pytest.approx(pooled[0]), pytest.approx(pooled[1]))


def test_success_ci_without_episodes():
    assert success_ci([]) == {"mean": None, "low": None, "high": None, "method": None, "episodes": 0}


def test_mcnemar_exact_p_by_hand():
    # 2 vs 8 discordant pairs: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_p(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_p(8, 2) == pytest.approx(112 / 1024)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 5) == pytest.approx(1.0)
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)


def test_paired_test_counts_and_difference():
    a = [1, 1, 1, 0, 0, 1, 0, 1, 1, 1]
    b = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0]
    t = paired_test([bool(x) for x in a], [bool(x) for x in b])
    assert (t.pairs, t.a_only, t.b_only) == (10, 5, 1)
    assert t.diff == pytest.approx(40.0)
    assert t.p_value == pytest.approx(2 * (1 + 6) / 64)
    assert t.diff_low < t.diff < t.diff_high


def test_paired_bootstrap_interval_matches_the_normal_approximation_on_many_pairs():
    # 400 pairs: 120 where only a succeeds, 40 where only b does -> d has mean 20 points
    a = [True] * 120 + [False] * 40 + [True] * 100 + [False] * 140
    b = [False] * 120 + [True] * 40 + [True] * 100 + [False] * 140
    t = paired_test(a, b)
    n, mean = 400, 20.0
    var = (120 * (100 - mean) ** 2 + 40 * (-100 - mean) ** 2 + 240 * mean**2) / n
    half = Z95 * math.sqrt(var / n)
    assert t.diff == pytest.approx(mean)
    assert t.diff_low == pytest.approx(mean - half, abs=1.0)
    assert t.diff_high == pytest.approx(mean + half, abs=1.0)
    assert paired_test(a, b).to_json() == t.to_json()  # seeded: the same interval every time


def test_paired_test_without_spread_and_bad_input():
    t = paired_test([True] * 5, [True] * 5)
    assert (t.diff, t.diff_low, t.diff_high, t.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="equally long"):
        paired_test([True], [True, False])
