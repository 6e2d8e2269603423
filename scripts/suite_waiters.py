"""Why the longest waiters of a suite cell wait (issue 9, fairness under KV pressure): a diagnostic.

    .venv/bin/python scripts/suite_waiters.py published 10 [seed] [--set k=v,...]   # load: 1, 3, 10 or ovl

Replays the cell's workload under FCFS and under EWSJF (default config, or the default with --set's fields; the
bench's engine for each) and prints,
for EWSJF's 12 longest waits: the request, its TTFT under both, when it became due under the progress bound
(seconds after arrival), how long it waited after that and why admission stopped in those steps (KV blocks,
the token budget, the running cap), and how many requests were admitted past it meanwhile; what held admissions
in the steps that ended with requests waiting (the share per reason, both policies); then the admitted
prefill rate of both policies over the span of those waits, the prefill backlog ahead of each at its arrival
under both, and the prefill each had admitted when the span starts. Reads EWSJFQueue's internals (due points, the
admission progress), so it lives here, not in the package. Operating points and request counts are the suite's
(its cache, or found anew); the figures count every request of the replay, the suite's warm-up included.
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench import engines
from ewsjf.bench.metrics import class_edges
from ewsjf.bench.suite import cell_scale, on_hardware, suite_build, workload_points
from ewsjf.bench.suite_policies import parse
from ewsjf.bench.suite_trace import from_trace
from ewsjf.bindings import EWSJFQueue
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE
from ewsjf_core.sim.engine import result_of
from ewsjf_core.sim.sim_engine import SimEngine


HELD = ("kv", "cap", "budget", "preempt")
"""Why a step admitted no more while requests waited (StepBuilder.held_by)."""


class DueProbe(EWSJFQueue):
    """EWSJFQueue recording, at each request's first pop: time, due point, reason, admission progress."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.first_pop: dict[int, tuple[float, float, int]] = {}

    def pop(self):
        order = self._order
        if order.pos >= order.limit:
            self._refresh_order()
        slot = order.list_slots()[order.pos]
        rid = self._items[slot]
        if rid not in self.first_pop:
            self.first_pop[rid] = (self._now, float(self._set.due_work[slot]), int(order.reasons[order.pos]))
        return super().pop()


def replay(wl, st, engine, queue):
    """Run the cell; per step: (start, duration, what held admissions, admitted progress, prefill tokens,
    requests running, requests waiting)."""
    e = SimEngine(wl, queue, st, engine, clock=queue.clock)
    arr, n, nxt, b, steps = e.requests.arrival, len(wl), 0, e.builder, []
    while e.done < n:
        while nxt < n and arr[nxt] <= e.now:
            e.submit(nxt)
            nxt += 1
        if not e.step():
            e.advance_to(arr[nxt])
            continue
        start, dur, pf, dec = e.last_step
        why = b.held_by
        progress = queue.admitted_work if isinstance(queue, EWSJFQueue) else 0.0
        steps.append((start, dur, why, progress, pf, len(b.running.order), len(queue)))
    return result_of(e, wl, 0.0), steps


def main(name: str, load: str, seed: int = 0, overrides: str = "", gpu: str | None = None,
         model: str | None = None, guard: bool = DEFAULT_PREEMPTION_GUARD) -> None:
    sw = on_hardware(from_trace(name), gpu, model)
    w = suite_build(sw, seed=seed)
    st = RooflineStepTime(sw.model, sw.gpu)
    engine = EngineConfig()
    scale = cell_scale(workload_points(sw, w, engine, seed), load)
    wl = w.scale_rate(scale)
    edges = class_edges(w.prompt_tokens)
    fcfs = engines.make_queue("fcfs", VirtualClock())
    rf, sf = replay(wl, st, engine, fcfs)
    q = DueProbe(EWSJFConfig(**parse("ewsjf:" + overrides)[1]), clock=VirtualClock())
    re_, se = replay(wl, st, engines.policy_engine("ewsjf", engine, DEFAULT_WAITING_HEAD_SHARE, guard), q)
    ttf, tte = rf.first_token_s - wl.arrival_s, re_.first_token_s - wl.arrival_s
    long_ = wl.prompt_tokens > edges[1]
    print(f"{name} @ {load} (scale {scale:.4g}): long p99 fcfs {np.percentile(ttf[long_], 99):.1f} s, "
          f"ewsjf {np.percentile(tte[long_], 99):.1f} s; longest wait {np.nanmax(ttf):.1f} / {np.nanmax(tte):.1f} s")
    third = np.digitize(wl.prompt_tokens, [edges[0] + 0.5, edges[1] + 0.5])   # terciles as the suite's classes
    means = [f"{pol} " + " / ".join(f"{x[third == c].mean():.2f}" for c in range(3))
             for pol, x in (("fcfs", ttf), ("ewsjf", tte))]
    print("  mean TTFT short / medium / long: " + ", ".join(means))
    print(f"  steps with requests waiting, held by: fcfs {_held(sf)}; ewsjf {_held(se)}")
    print(f"  running / waiting at each fifth of the replay: fcfs {_batch(sf)}; ewsjf {_batch(se)}; preemptions: "
          f"fcfs {int(np.nansum(rf.preemptions))}, ewsjf {int(np.nansum(re_.preemptions))}")
    t = np.array([s[0] for s in se])
    d = np.array([s[1] for s in se])
    why = np.array([s[2] for s in se])
    prog = np.array([s[3] for s in se])
    pops = np.array(sorted(v[0] for v in q.first_pop.values()))
    lo, hi = np.inf, -np.inf
    for rid in np.argsort(-np.nan_to_num(tte))[:12]:
        pop_t, due, reason = q.first_pop[rid]
        a = wl.arrival_s[rid]
        k = np.searchsorted(prog, due)
        due_t = t[k] if k < len(t) else np.inf
        lo, hi = min(lo, a), max(hi, pop_t)
        m = (t >= due_t) & (t < pop_t)
        stops = {r: round(float(d[m & (why == r)].sum()), 1) for r in HELD if (m & (why == r)).any()}
        past = int(np.searchsorted(pops, pop_t) - np.searchsorted(pops, due_t)) if np.isfinite(due_t) else 0
        if due_t < pop_t:
            due_txt = f"due {due_t - a:5.1f} s after arrival, then {pop_t - due_t:4.1f} s"
        else:
            due_txt = "admitted before its due point"
            past = 0
        # The prefill backlog ahead of it at arrival (arrived before it, not yet admitted), under each policy.
        ahead = wl.arrival_s < a
        w0f = int(wl.prompt_tokens[ahead & (rf.first_scheduled_s > a)].sum())
        w0e = int(wl.prompt_tokens[ahead & (re_.first_scheduled_s > a)].sum())
        print(f"  #{rid} prompt {wl.prompt_tokens[rid]} out {wl.output_tokens[rid]}: ttft ewsjf {tte[rid]:5.1f} s "
              f"fcfs {ttf[rid]:5.1f} s; {due_txt}; reason {['lane', 'starved', 'scored'][reason]}; "
              f"stops {stops}; admitted past it after due: {past}; backlog ahead at arrival fcfs {w0f} "
              f"ewsjf {w0e} tokens")

    def rate(steps):
        tt = np.array([s[0] for s in steps])
        pf = np.array([s[4] for s in steps])
        m = (tt >= lo) & (tt < hi)
        return pf[m].sum() / max(hi - lo, 1e-9)
    print(f"  prefill tokens computed per second over [{lo:.0f}, {hi:.0f}] s: fcfs {rate(sf):.0f}, "
          f"ewsjf {rate(se):.0f}")
    p = wl.prompt_tokens
    print(f"  prefill admitted by {lo:.0f} s: fcfs {int(p[rf.first_scheduled_s <= lo].sum())}, "
          f"ewsjf {int(p[re_.first_scheduled_s <= lo].sum())} tokens")


def _batch(steps) -> str:
    """Requests running / waiting at the steps starting each fifth of the replay's time (a KV cliff shows as a
    larger running batch, then a growing queue)."""
    t = np.array([s[0] for s in steps])
    at = np.searchsorted(t, np.linspace(0.0, t[-1], 6)[1:-1])
    return ", ".join(f"{t[i]:.0f} s {steps[i][5]} / {steps[i][6]}" for i in at)


def _held(steps) -> str:
    """What held admissions in the steps that ended with requests waiting: the share per stop reason."""
    why = [s[2] for s in steps if s[2]]
    return ", ".join(f"{r} {why.count(r) / max(len(why), 1):.2f}" for r in HELD)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("load", help="1, 3, 10 or ovl")
    ap.add_argument("seed", type=int, nargs="?", default=0)
    ap.add_argument("--set", default="", help="EWSJF config overrides, k=v,...")
    ap.add_argument("--gpu", default=None, help="another GPU preset (bench --suite-gpu)")
    ap.add_argument("--model", default=None, help="another model preset (bench --suite-model)")
    ap.add_argument("--preemption-guard", action=argparse.BooleanOptionalAction, default=DEFAULT_PREEMPTION_GUARD,
                    help="EWSJF's preemption guard (bench --ewsjf-preemption-guard; default: on)")
    args = ap.parse_args()
    main(args.workload, args.load, args.seed, args.set, args.gpu, args.model, args.preemption_guard)
