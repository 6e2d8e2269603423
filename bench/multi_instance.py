"""Multi-instance simulation: N sim engines, each with its own scheduler, behind a router.

    ewsjf bench --instances 4 --routers round-robin,power-of-two,prefix-affinity,lmetric,ewsjf

The routers are the policies of `ewsjf.integrations.ray.policies` (the ones the Ray Serve router runs),
over the same `ReplicaTracker`: replicas publish `ReplicaStats` every `stats_period_s` of virtual time (as
Ray Serve polls `record_routing_stats`), and between two reports the router counts what it routed and
what completed. Loads are relative to the N instances' capacity: load 1.0 replays the workload at N times
its own rate (its arrival times divided by N), so every instance sees on average what the single-instance
bench gives one engine at that load.

Event loop in virtual time: the earliest of (the next stats report, the next arrival, the earliest step
start of an engine with work) happens next; an arrival is routed with the engines' state as of that
instant (an engine in the middle of a step takes the request at its next step, as vLLM does).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ewsjf.integrations.ray.policies import routing_policy
from ewsjf.integrations.ray.state import QueueLoad, ReplicaStats, RequestInfo
from ewsjf.integrations.ray.tracker import ReplicaTracker
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.field_checks import as_float, is_integer, short
from ewsjf_core.sim import EngineConfig, SimResult, VirtualClock, Workload
from ewsjf_core.sim.sim_engine import SimEngine
from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS

from .engines import POLICY_NAMES, make_queue
from .multi_instance_cli import MIN_STATS_PERIOD_S


@dataclass(frozen=True)
class ClusterConfig:
    instances: int
    router: str = "ewsjf"
    replica_policy: str = "ewsjf"
    """Each engine's scheduler (a bench policy name)."""
    stats_period_s: float = 0.5
    seed: int = 0
    """The power-of-two router's seed (the only place to give it: router_options may not)."""
    router_options: tuple[tuple[str, float], ...] = ()
    """Keyword arguments of the router policy, e.g. (("long_pool", 0.75),) for the tradeoff curve."""

    def __post_init__(self) -> None:
        if not is_integer(self.instances) or self.instances < 1:
            raise ValueError(f"instances must be an integer >= 1, got {self.instances!r}")
        period = as_float(self.stats_period_s)
        if not MIN_STATS_PERIOD_S <= period < math.inf:
            raise ValueError(f"stats_period_s must be a finite number >= {MIN_STATS_PERIOD_S:g}, got "
                             f"{self.stats_period_s!r}")
        if self.replica_policy not in POLICY_NAMES:
            raise ValueError(f"replica_policy must be one of {', '.join(POLICY_NAMES)}, got {self.replica_policy!r}")
        if not all(isinstance(o, tuple) and len(o) == 2 for o in self.router_options):
            raise ValueError(f"router_options must be (name, value) pairs, got {short(self.router_options)}")
        if self.router == "power-of-two" and any(name == "seed" for name, _ in self.router_options):
            # make_router gives ClusterConfig.seed to the power-of-two router: a second one would collide.
            raise ValueError("router_options sets seed, which ClusterConfig.seed sets for the power-of-two router: "
                             "give the seed as ClusterConfig.seed only")
        self.make_router()  # an unknown router or option: ValueError naming it

    def make_router(self):
        """A fresh router policy for this cluster (ClusterConfig.seed to power-of-two, router_options to any)."""
        return routing_policy(self.router, self.seed, **dict(self.router_options))


def replica_stats(engine: SimEngine, now: float, waiting_tokens: float | None) -> ReplicaStats:
    """What a replica publishes: its batch, its waiting requests, and, when it runs EWSJF, its queues and the
    prefill rate of the queue's fitted cost model (what `VLLMReplica` publishes from the same stats)."""
    queues: tuple[QueueLoad, ...] = ()
    rate = 0.0
    stats = getattr(engine.queue, "stats", None)
    if stats is not None and waiting_tokens is None:
        s = stats()
        queues = tuple(QueueLoad(q["lo"], q["hi"], q["depth"], q["mean"]) for q in s.get("queues", ()))
        rate = float(s.get("cost_model", {}).get("prefill_rate_tps", 0.0) or 0.0)  # as VLLMReplica publishes
    run = engine.running
    prefilling = sum(run.target[r] - run.computed[r] for r in run.prefilling)
    return ReplicaStats(time=now, running=engine.num_running, waiting=engine.num_waiting, queues=queues,
                        waiting_tokens=waiting_tokens, prefilling_tokens=float(prefilling), prefill_rate_tps=rate)


class Cluster:
    """The engines, the router and the bookkeeping of one multi-instance replay."""

    def __init__(self, workload: Workload, step_model, engine_config: EngineConfig, cluster: ClusterConfig,
                 ewsjf_config: EWSJFConfig | None = None) -> None:
        self.workload, self.cfg = workload, cluster
        self.engines: list[SimEngine] = []
        for _ in range(cluster.instances):
            clock = VirtualClock()
            queue = make_queue(cluster.replica_policy, clock, ewsjf_config, engine_config.with_kv_blocks(step_model))
            self.engines.append(SimEngine(workload, queue, step_model, engine_config, clock=clock,
                                          oracle_output=cluster.replica_policy == "oracle-sjf"))
        self.ids = [f"replica-{i}" for i in range(cluster.instances)]
        kv = self.engines[0].blocks.total * engine_config.block_size // PREFIX_BLOCK_TOKENS
        self.tracker = ReplicaTracker(prefix_capacity_blocks=max(1, min(kv, 10_000_000)))
        self.tracker.set_replicas(self.ids)
        self.router = cluster.make_router()
        n = len(workload)
        self.assigned = np.full(n, -1, dtype=np.int64)
        self.ongoing: list[set[int]] = [set() for _ in self.engines]
        self._done_seen = [0] * len(self.engines)
        self._exact_tokens = getattr(self.engines[0].queue, "stats", None) is None
        self._prefix = workload.prefix_blocks

    # ------------------------------------------------------------------ router side
    def publish(self, now: float) -> None:
        for i, eng in enumerate(self.engines):
            tokens = self._waiting_tokens(i) if self._exact_tokens else None
            self.tracker.update_stats(self.ids[i], replica_stats(eng, now, tokens))

    def _waiting_tokens(self, i: int) -> float:
        req = self.engines[i].requests
        return float(sum(req.prompt[r] for r in self.ongoing[i] if req.first_scheduled[r] != req.first_scheduled[r]))

    def route(self, rid: int, now: float) -> int:
        w = self.workload
        blocks = tuple(int(b) for b in self._prefix[rid]) if self._prefix is not None else ()
        request = RequestInfo(str(rid), int(w.prompt_tokens[rid]), blocks, PREFIX_BLOCK_TOKENS)
        best = self.router.rank(request, self.tracker.views(request, self.ids))[0]
        i = self.ids.index(best.replica_id)
        self.tracker.routed(best.replica_id, request, now)
        eng = self.engines[i]
        eng.advance_to(now)  # an idle engine waits until now; a busy one takes it at its next step
        eng.submit(rid)
        self.assigned[rid] = i
        self.ongoing[i].add(rid)
        return i

    def collect_finished(self, i: int) -> None:
        eng = self.engines[i]
        if eng.done == self._done_seen[i]:
            return
        self._done_seen[i] = eng.done
        req = eng.requests
        fin = [r for r in self.ongoing[i] if req.finish[r] == req.finish[r] or req.rejected[r]]
        for r in fin:
            self.ongoing[i].discard(r)
            self.tracker.completed(str(r))

    # ------------------------------------------------------------------ the loop
    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        wall0 = time.perf_counter()
        arr = self.workload.arrival_s.tolist()
        n, nxt, engines = len(arr), 0, self.engines
        period = self.cfg.stats_period_s
        tick = arr[0] if n else 0.0
        finished = 0
        while finished < n:
            t_arr = arr[nxt] if nxt < n else math.inf
            i_eng, t_eng = -1, math.inf
            for i, eng in enumerate(engines):
                if eng.now < t_eng and eng.has_work():
                    i_eng, t_eng = i, eng.now
            if tick <= t_arr and tick <= t_eng and (nxt < n or i_eng >= 0):
                self.publish(tick)
                tick += period
            elif t_arr <= t_eng:
                self.route(nxt, t_arr)
                nxt += 1
            elif i_eng >= 0:
                eng = engines[i_eng]
                if not eng.step():
                    if not eng.has_work():
                        self.collect_finished(i_eng)
                    elif math.isfinite(min(t_arr, tick)):
                        eng.advance_to(min(t_arr, tick))  # nothing fits now: wait for the next event
                    else:
                        raise RuntimeError(f"multi-instance sim: {self.ids[i_eng]} can never schedule its "
                                           "waiting requests (KV cache or budget too small)")
                self.collect_finished(i_eng)
                finished = sum(e.done for e in engines)
                if progress is not None and eng.steps % 2000 == 0:
                    progress(finished, n)
            else:
                raise RuntimeError("multi-instance sim: requests left but no event to run")
            if i_eng < 0 and nxt >= n:
                finished = sum(e.done for e in engines)
        if progress is not None:
            progress(n, n)
        return self.result(time.perf_counter() - wall0)

    def result(self, wall_s: float) -> SimResult:
        """One SimResult over all requests (each from the engine that served it), GPU time per instance."""
        n = len(self.workload)
        cols = {k: np.full(n, np.nan) for k in ("first_token", "finish", "first_scheduled")}
        pre = np.zeros(n, dtype=np.int64)
        cached = np.zeros(n, dtype=np.int64)
        rejected = np.zeros(n, dtype=bool)
        for i, eng in enumerate(self.engines):
            mine = np.nonzero(self.assigned == i)[0]
            req = eng.requests
            for k, arr in cols.items():
                arr[mine] = np.asarray(getattr(req, k))[mine]
            pre[mine] = np.asarray(req.preemptions)[mine]
            cached[mine] = np.asarray(req.cached_at_admit)[mine]
            rejected[mine] = np.asarray(req.rejected)[mine]
        logs = [e.step_log() for e in self.engines]
        log = {k: np.concatenate([lg[k] for lg in logs]) for k in logs[0]} if logs and logs[0] else {}
        info = dict(self.engines[0].info())
        info.update(instances=len(self.engines), router=self.cfg.router, spread=self.spread())
        return SimResult(workload=self.workload, first_token_s=cols["first_token"], finish_s=cols["finish"],
                         first_scheduled_s=cols["first_scheduled"], preemptions=pre, cached_tokens=cached,
                         rejected=rejected, steps=sum(e.steps for e in self.engines),
                         scheduler_cpu_s=sum(e.scheduler_cpu_s for e in self.engines),
                         sim_end_s=max(e.now for e in self.engines),
                         busy_s=sum(e.busy_s for e in self.engines) / len(self.engines), wall_s=wall_s,
                         step_log=log, step_model=self.engines[0].step_model, info=info)

    def spread(self) -> dict[str, float]:
        """Per-replica load spread: max/mean of requests, prefill tokens and busy time across replicas."""
        counts = np.bincount(self.assigned[self.assigned >= 0], minlength=len(self.engines)).astype(float)
        tokens = np.bincount(self.assigned[self.assigned >= 0],
                             weights=self.workload.prompt_tokens[self.assigned >= 0],
                             minlength=len(self.engines))
        busy = np.array([e.busy_s for e in self.engines])

        def ratio(x: np.ndarray) -> float:
            return float(x.max() / x.mean()) if x.mean() > 0 else 1.0

        return {"requests_max_over_mean": ratio(counts), "prefill_tokens_max_over_mean": ratio(tokens),
                "busy_max_over_mean": ratio(busy), "busy_cv": float(busy.std() / busy.mean()) if busy.mean() else 0.0}


def simulate_cluster(workload: Workload, step_model, engine_config: EngineConfig, cluster: ClusterConfig,
                     ewsjf_config: EWSJFConfig | None = None,
                     progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Replay `workload` (already at the cluster's rate) through `cluster.instances` engines behind a router."""
    return Cluster(workload, step_model, engine_config, cluster, ewsjf_config).run(progress)
