"""pytest-benchmark microbenchmarks of the hot path (`pytest bench/bench_micro.py`).

The same workload and operations as `ewsjf micro`, timed by pytest-benchmark for its statistics and
comparison tooling (--benchmark-compare). Figures only: nothing here asserts a speed.
"""

import pytest

from ewsjf.bench.micro import POLICIES, POPS_PER_STEP, STEPS_PER_RUN, RequestStream, fill, run_steps

SIZES = (1_000, 100_000)


def _queue(policy: str, n: int):
    w = RequestStream(0)
    q = POLICIES[policy](lambda: w.t)
    fill(q, w, n)
    q.begin_step(w.t)
    return q, w


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("policy", list(POLICIES))
def test_step(benchmark, policy, n):
    """A run of STEPS_PER_RUN steps as `ewsjf micro` times them (each begin_step + popping 256; the run's
    deferred work settled), refilled (untimed) so the waiting set stays at n."""
    q, w = _queue(policy, n)
    popped: list = []

    def setup():
        for batch in popped:
            q.forget(batch)
        popped.clear()
        fill(q, w, n - len(q))
        q.begin_step(w.t)
        q.settle()

    def steps():
        popped[:] = run_steps(q, w.t, min(POPS_PER_STEP, len(q) // STEPS_PER_RUN))

    benchmark.pedantic(steps, setup=setup, rounds=30, warmup_rounds=2)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("policy", list(POLICIES))
def test_add_and_remove(benchmark, policy, n):
    """One add then one remove of the same request, committed (begin_step), at n waiting."""
    q, w = _queue(policy, n)
    (rid, length, t), = w.requests(1)

    def add_remove():
        q.add(rid, length, t)
        q.begin_step(w.t)
        q.settle()
        q.remove(rid)
        q.begin_step(w.t)
        q.settle()

    benchmark.pedantic(add_remove, rounds=200, warmup_rounds=5)
