import numpy as np
import pytest

from agentdistill.curriculum import CurriculumSampler, complexity_scores, curriculum_order, zscore


def test_zscore_and_constant_feature():
    np.testing.assert_allclose(zscore([1, 2, 3]), [-1.224744871, 0.0, 1.224744871], rtol=1e-6)
    assert zscore([5, 5, 5]).tolist() == [0.0, 0.0, 0.0]


def test_complexity_weights_and_entropy_term():
    c = complexity_scores([10, 20, 30], [3, 2, 1], [0.1, 0.1, 0.9], weights=(1, 0, 0))
    assert np.argsort(c).tolist() == [0, 1, 2]
    c = complexity_scores([10, 20, 30], [3, 2, 1], [0.1, 0.1, 0.9], weights=(0, 1, 0))
    assert np.argsort(c).tolist() == [2, 1, 0]
    c = complexity_scores([10, 20, 30], [3, 2, 1], [0.5, 0.1, 0.9], weights=(0, 0, 1))
    assert np.argsort(c).tolist() == [1, 0, 2]
    both = complexity_scores([1, 2], [1, 2], None, (1, 1, 1))
    np.testing.assert_allclose(both, [-2.0, 2.0])


def test_sorted_pacing_is_easy_to_hard_every_epoch():
    s = CurriculumSampler([3.0, 1.0, 2.0, 0.5], pacing="sorted")
    assert list(s) == [3, 1, 2, 0]
    s.set_epoch(1)
    assert list(s) == [3, 1, 2, 0]
    assert len(s) == 4


def test_buckets_pacing_adds_harder_buckets():
    scores = list(range(6))  # index = difficulty
    s = CurriculumSampler(scores, pacing="buckets", num_buckets=3, seed=1)
    idx = list(s)
    assert len(idx) == len(s) == 2 + 4 + 6
    assert sorted(idx[:2]) == [0, 1]
    assert sorted(idx[2:6]) == [0, 1, 2, 3]
    assert sorted(idx[6:]) == list(range(6))


def test_none_pacing_shuffles_reproducibly():
    a = list(CurriculumSampler(list(range(50)), pacing="none", seed=3))
    b = list(CurriculumSampler(list(range(50)), pacing="none", seed=3))
    assert a == b and sorted(a) == list(range(50)) and a != list(range(50))


@pytest.mark.parametrize("pacing", ["sorted", "buckets", "none"])
def test_order_identical_across_reruns(pacing):
    scores = np.random.default_rng(0).normal(size=40).tolist()
    assert list(CurriculumSampler(scores, pacing, 4, seed=7)) == list(CurriculumSampler(scores, pacing, 4, seed=7))


def test_ties_keep_dataset_order():
    assert curriculum_order([1.0, 0.0, 1.0, 0.0]) == [1, 3, 0, 2]
