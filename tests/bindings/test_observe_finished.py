"""Completion feedback (WaitingQueue.observe_finished): validated on every policy; EWSJFQueue learns output
lengths per prompt-length class from it and, with kv_work_weight > 0 under KV pressure, counts a request's work
in the starvation bound in KV memory-time."""

import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.bindings.baselines import POLICIES
from .helpers import Clock, drain


@pytest.mark.parametrize("cls", [EWSJFQueue, *POLICIES.values()])
@pytest.mark.parametrize("bad, field", [((0, 5), "prompt_tokens"), ((10, -1), "output_tokens"),
                                        ((10.5, 5), "prompt_tokens"), ((10, True), "output_tokens"),
                                        ((2 ** 53 + 1, 5), "prompt_tokens"), ((10, None), "output_tokens")])
def test_bad_completion_raises_naming_the_field(cls, bad, field):
    q = cls(clock=Clock(0.0))
    with pytest.raises(ValueError, match=f"observe_finished: {field}"):
        q.observe_finished(*bad)
    q.observe_finished(10, 0)   # a well-formed completion is accepted by every policy


def test_bad_completion_leaves_the_history_unchanged():
    q = EWSJFQueue(clock=Clock(0.0))
    q.observe_finished(100, 40)
    before = q._kv_work.mean_output(100)
    with pytest.raises(ValueError):
        q.observe_finished(100, -3)
    assert q._kv_work.mean_output(100) == before == 40.0


def _pressured(weight: float) -> EWSJFQueue:
    """A queue whose engine ran KV-held steps with requests waiting, after short prompts finished with long
    outputs and long prompts with short ones."""
    q = EWSJFQueue(EWSJFConfig(kv_work_weight=weight), clock=Clock(0.0))
    for _ in range(64):
        q.observe_finished(100, 2000)
        q.observe_finished(4000, 50)
    q.add("w", 10, arrival_time=0.0)       # someone waits while the steps run
    q.observe_step(0.05, 8000, 100)        # a full step: the token budget as seen
    for _ in range(4000):
        q.observe_step(0.02, 0, 100)       # requests wait, the budget is unused: KV memory holds them
    q.remove(["w"])
    return q


def test_kv_work_counts_memory_time_under_pressure_and_prefill_when_off():
    works = {}
    for weight in (1.0, 0.0):
        q = _pressured(weight)
        q.add("short", 100, arrival_time=1.0)
        q.add("long", 4000, arrival_time=1.0)
        q.begin_step(2.0)
        assert q.pop() == "short"
        q.begin_step(3.0)
        works[weight] = q.stats()["admitted_work"]
        assert drain(q) == ["long"]
    assert works[0.0] == 100.0   # prefill alone
    # Under KV pressure the short prompt with ~2000-token outputs counts its KV memory-time, in prefill units
    # (the completions' prompt tokens per token-step): far more than its 100 tokens, about the mix's mean
    # prompt times its share of the memory-time.
    assert works[1.0] > 20 * works[0.0]
