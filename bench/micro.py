"""Microbenchmarks of the hot path: EWSJF against a deque FCFS queue and a heapq SJF queue, same run.

EWSJF runs twice: driven by ids (`ewsjf`: add, remove by id, one pop() per admission, the WaitingQueue API
every policy has) and by handles (`ewsjf-handle`: push returns a handle, pop_many(n), remove_handles).
`raw-deque` is vLLM's own FCFS queue as it is (a deque, popleft per admission, no checks): the floor.
For each waiting-set size N: `add` (one request, including the batched route-and-link it triggers at the
next step), `remove` (one request, including its unlink), and `step` (begin_step + popping up to 256
requests, at most N / STEPS_PER_RUN). Every figure is the median over repeats of a batch, in microseconds per
operation; the set is refilled between repeats so N holds. Steps are timed as engines run them: STEPS_PER_RUN
back to back (each begin_step and its pops), then begin_step and settle(); each step pays the work it defers
to the next one's kernel call (unlinking and admitting its pops: the closing begin_step and settle() count in
the last step), and `step` is the median over every step of every repeat. The steps that install a periodic
re-partition the refill made due (or wait for its background job: an engine's forward pass would overlap it)
are among them (under one step in five here); what such a step pays is its own column. EWSJF's
re-partition at N waiting is reported on its own, in milliseconds: called directly (`repart`:
Refine-and-Prune, then re-routing every waiting request; timed with no background partition pending,
which it would first wait for), and the part a step pays for a periodic one (every `repartition_every`
arrivals: Refine-and-Prune runs in the background during a step, and the next step's begin_step installs
it, re-routing), and the most a step pays for a config swap that changes the partition (`swap`: an alpha
change; its partition takes the periodic one's path). Ratios to FCFS come from the same run, so a noisy
machine shifts all columns together. Also reports the one-off JIT compile time (fresh cache) and the cached
load time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from ewsjf.bindings.base import WaitingQueue
from ewsjf.bindings.baselines import FCFSQueue, SJFQueue
from ewsjf.bindings.ewsjf_queue import EWSJFQueue

class _ByHandle:
    """EWSJFQueue driven by handles (push / pop_many / remove_handles): the engine keeps each request's
    handle with its own request state; here a dict stands for that state, updated outside the timed pops."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.queue = EWSJFQueue(clock=clock)
        self.handles: dict[str, int] = {}

    def add(self, rid: str, length: int, t: float) -> None:
        self.handles[rid] = self.queue.push(rid, length, t)

    def remove(self, rid: str) -> None:
        self.queue.remove_handles((self.handles.pop(rid),))

    def pop_many(self, n: int) -> list[str]:
        return self.queue.pop_many(n)

    def forget(self, popped: list[str]) -> None:
        for rid in popped:
            del self.handles[rid]

    def begin_step(self, now: float) -> None:
        self.queue.begin_step(now)

    def settle(self) -> None:
        self.queue.settle()

    def __len__(self) -> int:
        return len(self.queue)

    def __iter__(self):
        return iter(self.queue)


class _ById:
    """A WaitingQueue driven by ids, as engines do: add, remove((id,)), one pop() per admission."""

    def __init__(self, queue: WaitingQueue) -> None:
        self.queue = queue
        self.add, self.begin_step = queue.add, queue.begin_step
        self.settle = getattr(queue, "settle", lambda: None)  # EWSJF: run deferred step work now

    def remove(self, rid: str) -> None:
        self.queue.remove((rid,))

    def pop_many(self, n: int) -> list:
        pop = self.queue.pop
        return [pop() for _ in range(n)]

    def forget(self, popped: list) -> None:
        pass

    def __len__(self) -> int:
        return len(self.queue)

    def __iter__(self):
        return iter(self.queue)


class _RawDeque(_ById):
    """vLLM's own FCFS waiting queue: a deque, popleft per admission, remove by scan; no checks, no step
    hooks. The floor a Python-level queue can reach (the other baselines go through the WaitingQueue API)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.queue: deque = deque()
        self.add = lambda rid, length, t: self.queue.append(rid)
        self.begin_step = self.settle = lambda *args: None

    def remove(self, rid: str) -> None:
        self.queue.remove(rid)

    def pop_many(self, n: int) -> list:
        pop = self.queue.popleft
        return [pop() for _ in range(n)]


POLICIES: dict[str, Callable[[Callable[[], float]], Any]] = {
    "ewsjf": lambda clock: _ById(EWSJFQueue(clock=clock)), "ewsjf-handle": _ByHandle,
    "fcfs-deque": lambda clock: _ById(FCFSQueue(clock=clock)), "sjf-heapq": lambda clock: _ById(SJFQueue(clock=clock)),
    "raw-deque": _RawDeque}
SIZES = (100, 1_000, 10_000, 100_000)
POPS_PER_STEP = 256
STEPS_PER_RUN = 4
"""Steps timed back to back: a step's deferred work lands in the next one, as in an engine."""
BATCH = 200
MAX_SIZE = 10_000_000
ENGINE_STEP_S = 0.03
"""A typical engine step (a forward pass of tens of milliseconds), during which a background partition runs."""


class RequestStream:
    """Request ids, mixed prompt lengths (short chat, medium, long documents) and increasing arrivals.

    Ids are strings like vLLM's: their hashes scatter, so every policy's id lookups cost what they cost in
    an engine (sequential integer ids hash to sequential dict slots and flatter FIFO-order structures).
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.t = 0.0

    def requests(self, n: int) -> list[tuple[str, int, float]]:
        kinds = self.rng.integers(0, 3, n)
        lengths = np.where(kinds == 0, self.rng.integers(8, 300, n),
                           np.where(kinds == 1, self.rng.integers(500, 2500, n), self.rng.integers(4000, 16000, n)))
        out = []
        for length in lengths.tolist():
            self.next_id += 1
            self.t += 1e-3
            out.append((f"cmpl-{self.next_id:012x}", length, self.t))
        return out


def fill(q: Any, w: RequestStream, n: int) -> None:
    for rid, length, t in w.requests(n):
        q.add(rid, length, t)


def run_steps(q: Any, now: float, pops: int, times: list[float] | None = None) -> list[list]:
    """STEPS_PER_RUN engine steps back to back (begin_step, then `pops` pops each), then begin_step and
    settle() (the last step's deferred work); returns each step's popped batch. `times`: each step's seconds
    are appended to it (the closing begin_step and settle() counted in the last step's)."""
    popped = []
    perf = time.perf_counter
    t0 = perf()
    for i in range(STEPS_PER_RUN):
        q.begin_step(now)
        popped.append(q.pop_many(pops))
        if times is not None and i < STEPS_PER_RUN - 1:
            t1 = perf()
            times.append(t1 - t0)
            t0 = t1
    q.begin_step(now)
    q.settle()
    if times is not None:
        times.append(perf() - t0)
    return popped


def measure(policy: str, n: int, repeats: int, seed: int = 0) -> dict[str, float]:
    """Median microseconds per add, remove and step for one policy at n waiting requests."""
    w = RequestStream(seed)
    q = POLICIES[policy](lambda: w.t)
    fill(q, w, n)
    q.begin_step(w.t)
    adds, removes, steps = [], [], []
    perf = time.perf_counter
    for _ in range(repeats):
        # Each timed segment starts with nothing deferred and ends with its own deferred work done
        # (EWSJF routes/links adds and unlinks pops/removals in the step work begin_step defers to
        # the next pop or settle()), so no operation's cost lands in another's figure.
        batch = w.requests(BATCH)
        q.begin_step(w.t)
        q.settle()
        t0 = perf()
        for rid, length, t in batch:
            q.add(rid, length, t)
        q.begin_step(w.t)
        q.settle()
        adds.append((perf() - t0) / BATCH)

        waiting = list(q)
        victims = [waiting[int(i)] for i in w.rng.choice(len(waiting), BATCH, replace=False)]
        q.begin_step(w.t)
        q.settle()
        t0 = perf()
        for rid in victims:
            q.remove(rid)
        q.begin_step(w.t)
        q.settle()
        removes.append((perf() - t0) / BATCH)

        fill(q, w, n - len(q))
        pops = min(POPS_PER_STEP, len(q) // STEPS_PER_RUN)
        q.begin_step(w.t)
        q.settle()
        popped = run_steps(q, w.t, pops, steps)
        for batch in popped:
            q.forget(batch)
        fill(q, w, n - len(q))
    repartition_ms = install_ms = swap_ms = float("nan")
    if isinstance(q.queue, EWSJFQueue):
        q.queue.repartition()   # untimed: it first waits for a background partition the loop may have started
        t0 = perf()
        q.queue.repartition()
        repartition_ms = (perf() - t0) * 1e3
        install_ms = _periodic_partition_step_ms(q, w)
        swap_ms = _partition_swap_step_ms(q, w)
    return {"add_us": statistics.median(adds) * 1e6, "remove_us": statistics.median(removes) * 1e6,
            "step_us": statistics.median(steps) * 1e6, "repartition_ms": repartition_ms,
            "partition_step_ms": install_ms, "swap_step_ms": swap_ms}


def _periodic_partition_step_ms(q: Any, w: RequestStream) -> float:
    """What a step pays for a periodic re-partition, in milliseconds: the step that commits the arrivals
    making one due starts Refine-and-Prune in the background (not timed: it is mostly those commits), the
    next step installs it, re-routing every waiting request (timed: its begin_step work, without pops)."""
    every = q.queue.config.repartition_every
    if not every:
        return float("nan")
    fill(q, w, every)
    q.begin_step(w.t)
    q.settle()
    time.sleep(ENGINE_STEP_S)  # the engine's own step (the model's forward pass) runs meanwhile
    t0 = time.perf_counter()
    q.begin_step(w.t)
    q.settle()
    return (time.perf_counter() - t0) * 1e3


def _partition_swap_step_ms(q: Any, w: RequestStream) -> float:
    """What a step pays for a config swap that changes the partition (a tuner's alpha), in milliseconds: the
    larger of the round that installs the config (its partition starts in the background) and the next
    one, after an engine step, which installs the partition."""
    config = q.queue.config
    q.queue.set_config(config.replace(alpha=config.alpha * 1.1))
    rounds = []
    for _ in range(2):
        t0 = time.perf_counter()
        q.begin_step(w.t)
        q.settle()
        rounds.append((time.perf_counter() - t0) * 1e3)
        time.sleep(ENGINE_STEP_S)
    q.queue.set_config(config)
    return max(rounds)


def compile_times() -> dict[str, float]:
    """Seconds to compile every kernel into an empty cache, then to load them from that cache."""
    code = "from ewsjf_core.warmup import compile_kernels; print(compile_kernels())"
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("compile_cold_s", "load_cached_s"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = float(res.stdout.strip().splitlines()[-1])
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .arg_types import int_in, int_list

    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--sizes", type=int_list("sizes", 1, MAX_SIZE), default=list(SIZES),
                        help=f"waiting-set sizes, comma-separated (default {','.join(map(str, SIZES))})")
    parser.add_argument("--repeats", type=int_in(1, 10_000), default=15, help="batches per figure (median taken)")
    parser.add_argument("--no-compile", action="store_true", help="skip the JIT compile-time measurement")


HEADER = ["waiting", "policy", "add", "remove", "step", "step/fcfs", "repart ms", "in step ms", "swap ms"]


def run(args: argparse.Namespace) -> int:
    from . import inputs

    try:
        made = inputs.output_paths(None, args.json, None, None)   # a bad --json fails now, not after measuring
    except ValueError as e:
        print(f"ewsjf micro: error: {e}", file=sys.stderr)
        return 2
    try:
        return _measure_and_report(args)
    finally:
        inputs.remove_made_folders(made)   # only an empty one goes: a run that wrote its JSON keeps its folder


def _measure_and_report(args: argparse.Namespace) -> int:
    from . import console

    report: dict = {"unit": "microseconds per operation (median)", "pops_per_step": POPS_PER_STEP,
                    "results": []}
    if not args.no_compile:
        report["jit"] = compile_times()
        print(f"JIT: compile into an empty cache {report['jit']['compile_cold_s']:.2f} s, "
              f"load from cache {report['jit']['load_cached_s']:.2f} s")
    rows = []
    with console.progress(sys.stderr.isatty()) as bars:
        tick = bars.task("measuring")
        for i, n in enumerate(args.sizes):
            by_policy = {p: measure(p, n, args.repeats) for p in POLICIES}
            for p, r in by_policy.items():
                r["step_vs_fcfs"] = r["step_us"] / by_policy["fcfs-deque"]["step_us"]
                report["results"].append({"waiting": n, "policy": p, **r})
                rows.append([str(n), p, f"{r['add_us']:.2f}", f"{r['remove_us']:.2f}", f"{r['step_us']:.1f}",
                             f"{r['step_vs_fcfs']:.2f}x", f"{r['repartition_ms']:.2f}",
                             f"{r['partition_step_ms']:.2f}", f"{r['swap_step_ms']:.2f}"])
            if tick:
                tick(i + 1, len(args.sizes))
    print(console.table(rows, HEADER, title="microseconds per operation (median); re-partition in ms: called "
                        "directly (repart), what the step installing a periodic one pays (in step), and the "
                        "most a step pays for a config swap that changes the partition (swap)"))
    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        except OSError as e:
            print(f"ewsjf micro: error: --json {args.json}: {e.strerror or e}", file=sys.stderr)
            return 2
        print(f"wrote {args.json}")
    return 0
