"""The replay budget (budget.py): the first window is free, later ones wait for the traffic that pays
for them, and a refused window is not snapshotted again before the arrivals cover it."""

import pytest

from ewsjf_core.tuner import TunerSettings
from ewsjf_core.tuner.budget import ReplayBudget


def test_unbounded_budget_allows_everything():
    b = ReplayBudget(None)
    b.charge(10 ** 9)
    assert b.may_open(0) and b.allows(0, 10 ** 9) and b.refused == 0


def test_first_window_is_free_later_ones_fit_in_the_arrivals():
    b = ReplayBudget(1.0)
    assert b.allows(arrivals=10, planned=8000)      # nothing replayed yet: the first window opens
    b.charge(8000)                                  # its trials
    b.charge(500)                                   # the guard's replay of its swap
    assert b.allows(arrivals=2000, planned=2000) and b.counted == 0   # the first window's are free
    b.charge(2000)
    assert not b.allows(arrivals=3999, planned=2000)    # 2000 counted + 2000 > 3999 arrivals
    assert b.refused == 1 and b.replayed == 10500 and b.counted == 2000
    assert not b.may_open(3999)                     # the refused window cannot fit yet: no snapshot
    assert b.may_open(4000)
    assert b.allows(arrivals=4000, planned=2000)
    half = ReplayBudget(0.5)
    half.charge(1000)
    assert half.allows(arrivals=0, planned=0)       # the second window is looked at: 1000 free
    half.charge(1000)
    assert not half.allows(arrivals=2999, planned=500) and half.allows(arrivals=3000, planned=500)


def test_guard_replays_count_against_the_budget():
    b = ReplayBudget(2.0)
    b.charge(100)
    assert b.allows(arrivals=0, planned=0)          # the first window's 100 are free
    b.charge(100)
    b.charge(50.0)        # metrics arrive as floats
    assert b.counted == 150 and b.allows(arrivals=100, planned=50) and not b.allows(arrivals=100, planned=51)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_settings_reject_a_budget_that_is_not_positive(bad):
    with pytest.raises(ValueError, match="replay_budget"):
        TunerSettings(replay_budget=bad)
