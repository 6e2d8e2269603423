"""Compile (or load from the on-disk cache) every jitted kernel before the first engine step.

Kernels are compiled with cache=True: the first import on a machine pays the compile once and writes the
cache next to the package (or under NUMBA_CACHE_DIR); later processes load it in well under a second.
Engines call compile_kernels() at start-up so no request pays for it.
"""

from __future__ import annotations

import time
from array import array

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel
from ewsjf_core.scoring import pack_params
from ewsjf_core.waiting import WaitingSet


def compile_kernels() -> float:
    """Run every kernel once on a tiny input, through the same calls (so with the same argument types) as
    the engine's hot path; returns the seconds it took. tests/ewsjf_core/test_warmup.py checks, in a
    fresh interpreter, that no kernel is left uncompiled and that a run compiles nothing more."""
    start = time.perf_counter()
    cfg = EWSJFConfig(window=16, min_partition_samples=4, max_bubbles=1, initial_edges=(1.0, 256.0))
    ws = WaitingSet(cfg, capacity=16)
    row0, row1 = ws.class_row(0), ws.class_row(1)
    for i, size in enumerate((5.0, 6.0, 40.0, 45.0, 900.0, 950.0)):
        ws.stage(ws.alloc(), size, size, float(i), row0 if i % 2 else row1, front=False)
    ws.stage(ws.alloc(), 7.0, 7.0, 0.5, row0, front=True)        # the resume lane (push_front)
    ws.flush()
    cost = PrefillCostModel(cfg)
    cost.observe(0.01, 100, 10)
    ws.repartition(cfg, 50.0)                                   # refine_and_prune, members_in_order
    ws.stage(ws.alloc(), 1.0e7, 1.0e7, 7.0, row0, front=False)  # beyond every queue: opens a bubble
    params = pack_params(cfg, *cost.coefficients[:3])
    slots, reasons, *_ = ws.order(10.0, 8, params)
    ws.discard(slots[:2])
    ws.discard([int(slots[2])])                                 # single removals take the list path
    ws.age_bubbles(1)                                           # flush (unlink) + age_bubbles
    ws.retire_empty_classes()
    ws.stage(ws.alloc(), 2.0e7, 2.0e7, 8.0, row0, front=False)  # a step's start: admit, flush, age, order
    ws.discard([int(slots[5])])
    ws.begin(slots, reasons, slots[3:5].tolist(), 11.0, 4, params, 2, cost.state, array("d", (0.02, 200, 10)), 0.0)
    ws.start_partition(cfg, 50.0)                               # a periodic one, on the worker thread
    ws.stage(ws.alloc(), 3.0, 3.0, 12.0, row0, front=False)     # changes meanwhile, replayed at its install
    ws.discard(slots[5:6])
    ws.flush()
    ws.finish_partition()
    slots, reasons, *_ = ws.order(13.0, 2, params)
    ws.admit(slots, reasons, 13.0)                              # an order popped outside a round (EWSJFQueue._sync)
    ws.set_time_floor(1.0e4, 1.0)                               # the admission-count waits' quantile
    ws.delay_due(5.0, 100.0)                                    # a preempted request put back (delay_later_due)
    return time.perf_counter() - start
