"""Replay mode (the default): every candidate replays the same recorded window through ewsjf_core.sim.

Per window (`prepare`, in the serving process, cheap): snapshot the recorder's last `window_s` seconds
(at most `max_replay_requests` most recent requests), read the queue's fitted prefill-cost coefficients,
and package both; with a replay budget (budget.py), only once the recorded traffic pays for the window's
trials. Per trial (`evaluate`, usually in the tuner's worker process):
1. The step-time model is the fitted cost model itself: a step that prefills p tokens and decodes d takes
   c0 + c1 p + c2 p^2 + cd d seconds (CostModelStepTime), the very model the queue fits from the engine's
   step feedback. So a replay needs no GPU model, and it follows the hardware the queue is serving on.
2. A fresh candidate queue (EWSJFQueue by default) gets the candidate config with the fitted coefficients
   as its cost priors, and its partition is warmed on the recorded window's lengths (added, partitioned,
   removed), so alpha and max_queues act from the first replayed request as they would live.
3. simulate() replays the window; stats()["queues"] is sampled every `stats_every` steps for the partition
   terms; the latency term uses each request's TTFT and C_prefill(effective length).
All candidates of a window meet exactly the same arrivals, lengths and service model, so they compare
apples to apples whatever the burstiness of the live traffic.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import prefill_cost
from ewsjf_core.tuner.context import TrialContext
from ewsjf_core.tuner.reward import RewardWeights, terms_from


@dataclass(frozen=True)
class CostModelStepTime:
    """sim step-time model from the fitted cost coefficients (seconds)."""
    c0: float
    c1: float
    c2: float
    cd: float
    floor: float = 1e-4

    def step_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                  kv_tokens_read: int, prefill_seqs: int = 0) -> float:
        p = float(prefill_tokens)
        return max(float(prefill_cost(p, self.c0, self.c1, self.c2)) + self.cd * decode_tokens, self.floor)


@dataclass
class ReplayContext:
    workload: Any                    # ewsjf_core.sim Workload of the window
    warm_lengths: np.ndarray         # effective lengths that warm the candidate's partition
    coeffs: tuple[float, float, float, float]
    engine: Mapping[str, Any]
    cap: float                       # queue-count cap of the penalty
    step_time: Any = None            # override of the step-time model (None: the cost model)
    n_fresh: int = 0                 # the last n_fresh requests arrived in the window (before: backlog)
    scored: Any = None               # bool mask: requests the latency term counts (None: all)
    info: dict = field(default_factory=dict)


def replay_window(ctx: ReplayContext, config: EWSJFConfig, queue_factory: Callable,
                  stats_every: int = 25, max_snapshots: int = 400) -> tuple[Any, list, EWSJFConfig]:
    """Replay ctx's window under `config`: (SimResult, stats()["queues"] snapshots, config used)."""
    from ewsjf_core.sim.engine import EngineConfig, VirtualClock, simulate

    c0, c1, c2, cd = ctx.coeffs
    cfg = config.replace(prior_c0=c0, prior_c1=c1, prior_c2=c2, prior_decode=cd)
    clock = VirtualClock()
    q = queue_factory(cfg, clock)
    lengths = np.asarray(ctx.warm_lengths, dtype=np.int64)
    if lengths.size >= cfg.min_partition_samples and hasattr(q, "repartition"):
        ids = [("warm", i) for i in range(lengths.size)]
        for rid, b in zip(ids, lengths.tolist()):
            q.add(rid, max(int(b), 1), 0.0)
        q.repartition()
        q.remove(ids)
    snaps: list = []
    every = max(1, int(stats_every))

    def on_step(step: int, start: float, dur: float, pf: int, dec: int) -> None:
        if step % every == 0 and len(snaps) < max_snapshots and len(q):
            snaps.append(q.stats()["queues"])

    st = ctx.step_time or CostModelStepTime(c0, c1, c2, cd, cfg.min_prefill_cost)
    res = simulate(ctx.workload, q, st, EngineConfig(**dict(ctx.engine)), clock=clock, on_step=on_step,
                   log_steps=False)
    return res, snaps, cfg


class ReplayObjective:
    stateless = False
    in_process = False
    applies_candidate = False

    def __init__(self, queue_factory: Callable, weights: RewardWeights = RewardWeights(),
                 short_max_tokens: int = 512, step_time: Any = None,
                 stats_every: int = 25) -> None:
        self.weights = weights
        self.short_max_tokens = short_max_tokens
        self.queue_factory = queue_factory
        self.step_time = step_time
        self.stats_every = stats_every

    # In the serving process, once per window.
    def prepare(self, ctx: TrialContext) -> ReplayContext | None:
        """The window: requests that arrived in the last window_s seconds (at least the last
        window_requests arrivals) plus the backlog they met
        (earlier requests not finished at the window's start, when the host reports finishes), the most
        recent max_replay_requests of them. None (wait) when it is too small, or when the host reports
        queue depths and the window's arrivals found fewer than min_window_depth requests waiting on
        average (no contention: every order serves them alike), or when the window's trials do not fit
        in the replay budget yet (ctx.budget; after the first window)."""
        s = ctx.settings
        if not ctx.budget.may_open(ctx.recorder.arrivals):
            return None
        now = ctx.clock()
        start = now - s.window_s
        fresh = ctx.recorder.snapshot(start, now)
        if len(fresh) < s.window_requests:
            everything = ctx.recorder.snapshot(None, now)
            if len(everything) > len(fresh):
                start = float(everything.arrival_s[max(0, len(everything) - s.window_requests)])
                fresh = ctx.recorder.snapshot(start, now)
        if len(fresh) < s.min_window_requests:
            return None
        depth = fresh.depth_at_arrival
        contention = float(np.nanmean(depth)) if np.isfinite(depth).any() else math.nan
        if math.isfinite(contention) and contention < s.min_window_depth:
            ctx.count("skipped_windows")
            return None
        prepared = self.prepare_range(ctx, start, now, info={"mean_depth_at_arrival": contention})
        if prepared is not None and not ctx.budget.allows(ctx.recorder.arrivals,
                                                          s.trials_per_window * len(prepared.workload)):
            return None          # wait for the traffic that pays for this window's trials
        return prepared

    def prepare_range(self, ctx: TrialContext, start: float, end: float,
                      info: dict | None = None) -> ReplayContext | None:
        """The replay context of the requests that arrived in [start, end] plus their backlog (no
        contention check; the rollback guard replays its period with this)."""
        s = ctx.settings
        fresh = ctx.recorder.snapshot(start, end)
        if len(fresh) == 0:
            return None
        coeffs = tuple(ctx.cost_coefficients())
        reports_finish = bool(np.isfinite(fresh.finish_s).any())
        snap = ctx.recorder.snapshot(start, end, active_at_start=reports_finish)
        if len(snap) > s.max_replay_requests:
            snap = _tail(snap, s.max_replay_requests)
        warm = ctx.recorder.snapshot(None, end).effective_tokens[-ctx.config().window:]
        meta = {"requests": len(snap), "backlog": len(snap) - len(fresh), "window_start": start,
                "window_end": end, **(info or {})}
        return ReplayContext(workload=snap.to_workload(start=start), warm_lengths=warm, coeffs=coeffs,
                             engine=dict(s.engine), cap=ctx.queue_cap, step_time=self.step_time,
                             n_fresh=min(len(fresh), len(snap)), scored=snap.replay_scored(start),
                             info=meta)

    # Possibly in a worker process, once per trial.
    def evaluate(self, ctx: ReplayContext, config: EWSJFConfig) -> dict[str, Any]:
        t0 = time.process_time()
        res, snaps, cfg = replay_window(ctx, config, self.queue_factory, self.stats_every)
        return score_replay(res, snaps, ctx, cfg, self.weights, self.short_max_tokens,
                            cpu_s=time.process_time() - t0)


def score_replay(res: Any, snaps: list, ctx: ReplayContext, cfg: EWSJFConfig, weights: RewardWeights,
                 short_max_tokens: int, cpu_s: float = 0.0) -> dict[str, Any]:
    wl = res.workload
    ttft = res.first_token_s - wl.arrival_s
    b = wl.prompt_tokens
    c0, c1, c2, _ = ctx.coeffs
    cost = prefill_cost(b, c0, c1, c2, cfg.min_prefill_cost)
    scored = getattr(ctx, "scored", None)
    sel = np.ones(len(ttft), dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    terms = terms_from(snaps, ctx.cap, ttft[sel], cost[sel])
    ok = np.isfinite(ttft)
    short = ok & (b <= short_max_tokens)
    metrics = {
        "ttft_mean_s": float(np.mean(ttft[ok])) if ok.any() else math.nan,
        "ttft_p99_s": float(np.percentile(ttft[ok], 99)) if ok.any() else math.nan,
        "short_ttft_mean_s": float(np.mean(ttft[short])) if short.any() else math.nan,
        "completed": float(np.count_nonzero(ok)), "requests": float(len(wl)),
        "replay_cpu_s": float(cpu_s), "replay_scheduler_s": float(res.scheduler_cpu_s),
        "replayed_requests": float(len(wl)),    # what the replay budget charges (live trials replay none)
    }
    n = int(getattr(ctx, "n_fresh", 0) or 0)
    fresh = ttft[len(ttft) - n:] if n else ttft[:0]
    return {"reward": terms.reward(weights), "terms": terms.to_dict(), "metrics": metrics,
            "fresh_ttft": fresh.tolist()}


def _tail(snap: Any, n: int) -> Any:
    from ewsjf_core.tuner.recorder import WindowSnapshot
    sl = slice(len(snap) - n, None)
    return WindowSnapshot(snap.arrival_s[sl], snap.prompt_tokens[sl], snap.cached_tokens[sl],
                          snap.priority[sl], snap.first_token_s[sl], snap.output_tokens[sl], snap.finish_s[sl],
                          snap.depth_at_arrival[sl],
                          float(snap.arrival_s[sl][0]), snap.end_s)
