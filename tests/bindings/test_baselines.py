"""Baseline policies: the WaitingQueue contract and each policy's order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ewsjf.bindings.baselines import POLICIES, FCFSQueue, HRRNQueue, OracleSJFQueue, SJFQueue
from .helpers import drain

ALL = list(POLICIES.values())


@pytest.mark.parametrize("cls", ALL)
def test_contract(cls):
    t = [100.0]
    q = cls(clock=lambda: t[0])
    q.add("a", 100, 1.0)
    q.add("b", 10)                       # arrival defaults to the clock
    with pytest.raises(KeyError, match="'a'"):
        q.add("a", 5, 2.0)
    with pytest.raises(KeyError, match="'a'"):
        q.prepend("a", 5, 2.0)
    with pytest.raises(ValueError, match="prompt_tokens"):
        q.add("c", 0, 1.0)
    with pytest.raises(ValueError, match="arrival_time"):
        q.add("c", 5, -1.0)
    with pytest.raises(TypeError, match="not hashable"):   # well-typed fields (the fast path) or not
        q.add(["unhashable"], 5, 1.0)
    with pytest.raises(TypeError, match="not hashable"):
        q.add(["unhashable"], 5, 1.0, predicted_output_tokens=10)
    assert len(q) == 2 and "a" in q and "c" not in q and [] not in q
    with pytest.raises(KeyError, match="'zz'"):
        q.remove(["a", "zz"])
    assert len(q) == 2                   # unchanged after a failed remove
    q.begin_step(101.0)
    order = list(q)
    assert sorted(order) == ["a", "b"]
    assert q.peek() == order[0]
    q.prepend("p", 50, 0.5)
    assert q.peek() == "p"               # prepended goes first
    q.observe_step(0.05, 100, 3)
    with pytest.raises(ValueError):
        q.observe_step(0.0, 1, 1)
    q.remove(["a"])
    assert "a" not in q
    assert drain(q) == ["p", "b"]
    with pytest.raises(IndexError):
        q.peek()
    with pytest.raises(IndexError):
        q.pop()
    assert not q


@pytest.mark.parametrize("cls", ALL)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "prepend", "pop", "remove"]), st.integers(0, 15),
                              st.integers(1, 5000)), max_size=60))
def test_iter_matches_pop_order_and_nothing_lost(cls, ops):
    q = cls(clock=lambda: 0.0)
    live = set()
    for i, (op, rid, tokens) in enumerate(ops):
        q.begin_step(float(i))
        if op in ("add", "prepend") and rid not in live:
            getattr(q, op)(rid, tokens, float(i), 0, 0, tokens // 2)
            live.add(rid)
        elif op == "pop" and live:
            live.discard(q.pop())
        elif op == "remove" and rid in live:
            q.remove([rid])
            live.discard(rid)
        assert len(q) == len(live)
    expected = list(q)
    assert drain(q) == expected
    assert set(expected) == live


def test_fcfs_order():
    q = FCFSQueue()
    for i, n in enumerate([500, 5, 50]):
        q.add(i, n, float(i))
    q.prepend(9, 1, 0.0)
    q.prepend(8, 1, 0.0)
    assert drain(q) == [8, 9, 0, 1, 2]


def test_sjf_uses_effective_tokens():
    q = SJFQueue()
    q.add("long-cached", 4000, 0.0, cached_tokens=3990)
    q.add("mid", 100, 0.0)
    q.add("short", 20, 1.0)
    q.add("short2", 20, 2.0)
    assert drain(q) == ["long-cached", "short", "short2", "mid"]


def test_oracle_sjf_uses_output():
    q = OracleSJFQueue()
    q.add("short-prompt-long-out", 10, 0.0, predicted_output_tokens=5000)
    q.add("long-prompt-short-out", 1000, 0.0, predicted_output_tokens=1)
    assert drain(q) == ["long-prompt-short-out", "short-prompt-long-out"]


def test_hrrn_ages_long_requests():
    q = HRRNQueue(c0=0.0, sec_per_token=0.001)    # S = 1 s for 1000 tokens, 0.01 s for 10
    q.add("long", 1000, 0.0)
    q.add("short", 10, 9.9)
    q.begin_step(10.0)        # long: (10 + 1) / 1 = 11; short: (0.1 + 0.01) / 0.01 = 11 -> tie to earlier slot
    q.begin_step(10.05)       # short: 16, long: 11.05
    assert q.peek() == "short"
    q.begin_step(20.0)        # long: 21, short: ~1011
    assert q.peek() == "short"
    q2 = HRRNQueue(c0=0.0, sec_per_token=0.001)
    q2.add("long", 1000, 0.0)
    q2.add("short", 10, 100.0)
    q2.begin_step(100.001)    # long: 101, short: 1.1
    assert q2.pop() == "long"
    # the service estimate follows observed prefill cost
    q2.observe_step(2.0, 1000, 0)
    assert q2.c1 > 0.001
