import math

import numpy as np
import pytest

from ewsjf_core.tuner.reward import (RewardTerms, RewardWeights, compactness, latency_penalty, load_balance,
                                     partition_terms, queue_count_penalty)


def q(mean, spread, depth=0, lo=1.0, hi=2.0):
    return {"lo": lo, "hi": hi, "mean": mean, "spread": spread, "density": 1.0, "depth": depth}


def test_compactness_is_one_for_point_queues_and_half_when_spread_equals_mean():
    assert compactness([q(100, 0), q(1000, 0)]) == 1.0
    assert compactness([q(100, 100)]) == pytest.approx(0.5)
    assert compactness([]) == 1.0


def test_load_balance_is_jain_index_of_waiting_work():
    assert load_balance([q(100, 0, depth=10), q(1000, 0, depth=1)]) == pytest.approx(1.0)   # equal work
    lb = load_balance([q(100, 0, depth=1), q(100, 0, depth=0), q(100, 0, depth=9)])
    assert lb == pytest.approx(10 ** 2 / (2 * (1 + 81)))
    assert load_balance([q(100, 0, depth=0)]) == 1.0


def test_queue_count_penalty_scales_from_zero_to_one():
    assert queue_count_penalty(1, 8) == 0.0
    assert queue_count_penalty(8, 8) == 1.0
    assert queue_count_penalty(20, 8) == 1.0
    assert queue_count_penalty(3, 1) == 0.0


def test_latency_penalty_is_log_mean_slowdown_ignoring_unfinished():
    ttft = np.array([1.0, 3.0, np.nan])
    cost = np.array([1.0, 1.0, 1.0])
    assert latency_penalty(ttft, cost) == pytest.approx(math.log1p(2.0))
    assert latency_penalty(np.array([np.nan]), np.array([1.0])) == 0.0
    with pytest.raises(ValueError):
        latency_penalty(np.ones(2), np.ones(3))


def test_reward_combines_terms_with_weights():
    t = RewardTerms(compactness=0.5, load_balance=0.25, queue_count_penalty=0.5, latency_penalty=2.0)
    w = RewardWeights(l1=1, l2=2, l3=3, l4=4)
    assert t.reward(w) == pytest.approx(0.5 + 0.5 - 1.5 - 8.0)
    with pytest.raises(ValueError):
        RewardWeights(l1=-1)


def test_partition_terms_average_snapshots_and_default_when_none():
    assert partition_terms([], 8) == (1.0, 1.0, 0.0)
    c, b, p = partition_terms([[q(100, 0)], [q(100, 100), q(10, 0)]], 3)
    assert c == pytest.approx((1.0 + 0.75) / 2)
    assert p == pytest.approx((0 + 0.5) / 2)
