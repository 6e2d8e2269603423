"""Policies of `ewsjf bench --suite`, as specs: a base policy plus optional settings.

    "fcfs", "oracle-sjf", "hrrn", "ewsjf"          the bench's policies (bench/engines.py)
    "ewsjf:fcfs_wait_factor=2"                     EWSJF with EWSJFConfig overrides (the Pareto sweep)
    "sjf-aging:0.1"                                SJF with linear aging (AgingSJFQueue, below)
"""

from __future__ import annotations

import dataclasses

from ewsjf.bindings.baselines import HRRNQueue
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, SimResult, VirtualClock, Workload, simulate
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE

from . import engines


class AgingSJFQueue(HRRNQueue):
    """SJF with aging: highest aging * wait - S first, S the estimated service time (HRRN's estimate).

    aging 0 is SJF, large aging tends to FCFS: one second of waiting buys `aging` seconds of job size. (HRRN's
    ratio 1 + wait / S has no such knob: scaling it leaves its order unchanged.)
    """

    def __init__(self, clock=None, aging: float = 0.1) -> None:
        super().__init__(clock)
        if not aging >= 0:
            raise ValueError(f"aging must be >= 0, got {aging!r}")
        self.aging = float(aging)

    def rank(self, wait, service):
        return self.aging * wait - service


def parse(spec: str) -> tuple[str, dict]:
    """'ewsjf:a=1,b=2' -> ('ewsjf', {'a': 1.0, 'b': 2.0}); 'sjf-aging:0.1' -> ('sjf-aging', {'aging': 0.1})."""
    base, _, rest = spec.partition(":")
    if base == "sjf-aging":
        return base, {"aging": float(rest or 0.1)}
    if base not in engines.POLICY_NAMES:
        raise ValueError(f"unknown suite policy {spec!r}")
    settings = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        v = v.strip()
        settings[k.strip()] = int(v) if v.lstrip("-").isdigit() else float(v)   # int fields (max_queues) stay ints
    return base, settings


def run_policy(workload: Workload, spec: str, step_model, engine: EngineConfig,
               ewsjf_config: EWSJFConfig | None = None, ewsjf_head_share: float = DEFAULT_WAITING_HEAD_SHARE,
               ewsjf_preemption_guard: bool = DEFAULT_PREEMPTION_GUARD) -> SimResult:
    """Replay `workload` on the sim engine under the policy `spec` (EWSJF with its share of the chunk budget
    for the waiting queue's next request and its preemption guard: engines.policy_engine)."""
    base, settings = parse(spec)
    engine = engines.policy_engine(base, engine, ewsjf_head_share, ewsjf_preemption_guard)
    clock = VirtualClock()
    if base == "sjf-aging":
        queue = AgingSJFQueue(clock=clock, **settings)
    else:
        cfg = ewsjf_config or EWSJFConfig()
        if settings:
            cfg = dataclasses.replace(cfg, **settings)
        queue = engines.make_queue(base, clock, cfg, engine.with_kv_blocks(step_model))
    res = simulate(workload, queue, step_model, engine, clock=clock, oracle_output=(base == "oracle-sjf"))
    res.info["policy"] = spec
    return res
