"""Who holds each length class back, under EWSJF and under SJF with aging (issue 9, near-limit goal): a diagnostic.

    .venv/bin/python scripts/suite_blockers.py sharegpt 3 [--seed N] [--aging 0.03]     # load: 1, 3, 10 or ovl

Replays the cell under EWSJF (default config, its engine) and under `sjf-aging:<aging>` and prints per prompt-length
tercile: the mean wait, the requests admitted while a request of that class waited (those that arrived before it
and after it, by class, and under EWSJF how many of them were promoted as due), and the seconds of engine steps it
waited through while another request was at the head of the order and was not admitted (the engine stops at the
first waiting request it cannot allocate, as vLLM does), split by that head's class and, for EWSJF, by why the
head was first (resume lane, due, scored order). Reads EWSJFQueue's order (its reasons), so it lives here, not in
the package. Operating points and request counts are the suite's (its cache, or found anew); the figures count every
request of the replay, the suite's warm-up included.
"""

from __future__ import annotations

import argparse

import numpy as np
from suite_waiters import DueProbe

from ewsjf.bench import engines
from ewsjf.bench.metrics import class_edges
from ewsjf.bench.suite import cell_workload, suite_build
from ewsjf.bench.suite_policies import AgingSJFQueue
from ewsjf.bench.suite_trace import from_trace
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock
from ewsjf_core.sim.config import DEFAULT_WAITING_HEAD_SHARE
from ewsjf_core.sim.engine import result_of
from ewsjf_core.sim.sim_engine import SimEngine

REASONS = ("lane", "due", "scored")


class _HeadProbe:
    """Mixin: remembers the last request the engine peeked at (and, for EWSJF, why it was at that place)."""

    def peek(self):
        rid = super().peek()
        self.last_peek, self.last_reason = rid, -1
        order = getattr(self, "_order", None)
        if order is not None and order.pos < order.limit:
            self.last_reason = int(order.reasons[order.pos])
        return rid


class EWSJFProbe(_HeadProbe, DueProbe):
    pass


class AgingProbe(_HeadProbe, AgingSJFQueue):
    pass


def replay(wl, st, engine, queue):
    """Run the cell; per step: (start, duration, the head left waiting (-1: none), its reason)."""
    e = SimEngine(wl, queue, st, engine, clock=queue.clock)
    arr, n, nxt, steps = e.requests.arrival, len(wl), 0, []
    while e.done < n:
        while nxt < n and arr[nxt] <= e.now:
            e.submit(nxt)
            nxt += 1
        queue.last_peek, queue.last_reason = None, -1
        if not e.step():
            e.advance_to(arr[nxt])
            continue
        start, dur, _, _ = e.last_step
        held = queue.last_peek is not None and queue.last_peek in queue
        steps.append((start, dur, queue.last_peek if held else -1, queue.last_reason if held else -1))
    return result_of(e, wl, 0.0), np.array(steps, dtype=np.float64).reshape(-1, 4)


def report(label, wl, cls, res, steps, due=None) -> None:
    a, adm = wl.arrival_s, res.first_scheduled_s
    t0, d, head, why = steps[:, 0], steps[:, 1], steps[:, 2].astype(int), steps[:, 3].astype(int)
    head_cls = np.where(head >= 0, cls[np.maximum(head, 0)], -1)
    for c, name in enumerate("SML"):
        idx = np.where(cls == c)[0]
        past = np.zeros((2, 3))
        by_cls, by_why, n_due = np.zeros(3), np.zeros(3), 0.0
        for j in idx:
            admitted = (adm < adm[j]) & (adm >= a[j])
            admitted[j] = False
            for later in (0, 1):
                m = admitted & ((a > a[j]) if later else (a < a[j]))
                past[later] += np.bincount(cls[m], minlength=3)
            if due is not None:
                n_due += np.sum(admitted & due)
            held = (t0 >= a[j]) & (t0 < adm[j]) & (head >= 0) & (head != j)
            by_cls += np.bincount(head_cls[held], weights=d[held], minlength=3)
            by_why += np.bincount(np.maximum(why[held], 0), weights=d[held] * (why[held] >= 0), minlength=3)
        k = len(idx)
        line = (f"{label:>12} {name}: wait {np.mean(adm[idx] - a[idx]):6.2f} s; admitted meanwhile: earlier S/M/L "
                f"{'/'.join(f'{x / k:.1f}' for x in past[0])}, later {'/'.join(f'{x / k:.1f}' for x in past[1])}")
        if due is not None:
            line += f" (due: {n_due / k:.1f})"
        line += f"; held behind a head of class S/M/L {'/'.join(f'{x / k:.2f}' for x in by_cls)} s"
        if due is not None:
            line += " (" + ", ".join(f"{r} {x / k:.2f}" for r, x in zip(REASONS, by_why)) + ")"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("load", help="1, 3, 10 or ovl")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aging", type=float, default=0.03)
    args = ap.parse_args()
    sw = from_trace(args.workload)
    engine = EngineConfig()
    w = suite_build(sw, seed=args.seed)
    st = RooflineStepTime(sw.model, sw.gpu)
    load = args.load
    wl = cell_workload(sw, w, load, args.seed)
    edges = class_edges(w.prompt_tokens)
    p = wl.prompt_tokens
    cls = np.where(p <= edges[0], 0, np.where(p <= edges[1], 1, 2))
    q = EWSJFProbe(EWSJFConfig(), clock=VirtualClock())
    res, steps = replay(wl, st, engines.policy_engine("ewsjf", engine, DEFAULT_WAITING_HEAD_SHARE), q)
    due = np.array([q.first_pop[i][2] == 1 for i in range(len(wl))])
    print(f"{args.workload} @ {load} (seed {args.seed}): EWSJF promoted {int(due.sum())} requests as due "
          f"(S/M/L {'/'.join(str(int(np.sum(due & (cls == c)))) for c in range(3))})")
    report("ewsjf", wl, cls, res, steps, due)
    aging = AgingProbe(clock=VirtualClock(), aging=args.aging)
    res, steps = replay(wl, st, engine, aging)
    report(f"aging {args.aging:g}", wl, cls, res, steps)


if __name__ == "__main__":
    main()
