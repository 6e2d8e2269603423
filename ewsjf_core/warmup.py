"""Compile (or load from the on-disk cache) every jitted kernel before the first engine step.

Kernels are compiled with cache=True: the first import on a machine pays the compile once and writes the
cache next to the package (or under NUMBA_CACHE_DIR); later processes load it in well under a second.
Engines call compile_kernels() at start-up so no request pays for it.
"""

from __future__ import annotations

import time

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel
from ewsjf_core.scoring import pack_params
from ewsjf_core.waiting import WaitingSet


def compile_kernels() -> float:
    """Run every kernel once on a tiny input; returns the seconds it took."""
    start = time.perf_counter()
    cfg = EWSJFConfig(min_partition_samples=4, max_bubbles=1)
    ws = WaitingSet(cfg, capacity=16)
    for i, size in enumerate((5.0, 40.0, 900.0, 1e6)):
        ws.stage(ws.alloc(), size, size, float(i), ws.class_row(0), front=(i == 0))
    ws.flush()
    ws.repartition(cfg, 50.0)
    cost = PrefillCostModel(cfg)
    cost.observe(0.01, 100, 10)
    slots, *_ = ws.order(10.0, 4, pack_params(cfg, *cost.coefficients[:3]))
    ws.discard(slots)
    ws.age_bubbles(1)
    np.asarray(slots)
    return time.perf_counter() - start
