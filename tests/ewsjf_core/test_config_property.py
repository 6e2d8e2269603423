"""Any config that passes validation runs: begin_step, pop, repartition never raise (issue 10, defect 3).

Values are drawn up to (and at) every field's bounds, so a bound too loose for some kernel shows here.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.config import FLOAT_BOUNDS, INT_BOUNDS, EWSJFConfig

# Resource-heavy fields are drawn over a smaller range (a million-entry window per example would make the
# test slow, not stronger: the kernels' arithmetic does not depend on it); every other field spans its bounds.
_SMALL = {"window": (16, 2000), "min_partition_samples": (2, 64), "order_chunk": (1, 300)}


def _value(name):
    if name in INT_BOUNDS:
        lo, hi = _SMALL.get(name, INT_BOUNDS[name])
        return st.one_of(st.just(lo), st.just(hi), st.integers(lo, hi))
    b = FLOAT_BOUNDS[name]
    lo = b.low if b.low_inclusive else math.nextafter(b.low, math.inf)
    options = [st.just(lo), st.just(b.high), st.floats(lo, b.high, allow_nan=False)]
    if b.allow_inf:
        options.append(st.just(math.inf))
    return st.one_of(*options)


@st.composite
def configs(draw):
    names = sorted(INT_BOUNDS) + sorted(FLOAT_BOUNDS)
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=8))
    values = {n: draw(_value(n)) for n in chosen}
    values.setdefault("initial_edges", (1.0,))
    try:
        return EWSJFConfig(**values)
    except ValueError:
        return EWSJFConfig(initial_edges=(1.0,))   # cross-field rules: the default for this draw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), seed=st.integers(0, 2 ** 31))
def test_any_valid_config_runs(cfg, seed):
    rng = np.random.default_rng(seed)
    t = [0.0]
    q = EWSJFQueue(cfg, clock=lambda: t[0])
    ids = 0
    for step in range(12):
        t[0] += 0.5
        for _ in range(int(rng.integers(0, 40))):
            ids += 1
            q.add(ids, int(rng.choice([1, 7, 300, 5000, 2 ** 40])), arrival_time=t[0],
                  priority=int(rng.integers(0, 3)), predicted_output_tokens=int(rng.integers(0, 10 ** 6)))
        q.begin_step(t[0])
        for _ in range(min(len(q), int(rng.integers(0, 30)))):
            q.pop()
        q.observe_step(float(rng.uniform(1e-3, 2.0)), int(rng.integers(0, 9000)), int(rng.integers(0, 300)))
        if step % 4 == 3:
            q.repartition()
        q.stats()
    while len(q):
        q.begin_step(t[0])
        q.pop()
