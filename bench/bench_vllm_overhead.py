"""Overhead of EWSJF inside vLLM: vLLM's schedule() with EWSJFScheduler vs vLLM's own FCFS Scheduler.

    .venv/bin/python -m ewsjf.bench.bench_vllm_overhead [--steps 300] [--waiting 1000 10000] [--json out.json]
    .venv/bin/python -m pytest bench/bench_vllm_overhead.py      # the same, shorter, as pytest-benchmark figures

Both schedulers run in the same process on the virtual vLLM harness (vLLM's real v1 Scheduler, fake model
outputs, virtual clock), on the same seeded arrival stream, alternating step by step so machine noise hits
both alike. Steady state: 256 running (max_num_seqs=256), the waiting queue topped up to N before every step
(1k and 10k), output lengths 16-512 so a few requests finish and are replaced each step, mixed prompt lengths
(60% 10-100, 30% 200-1000, 10% 1500-4000 tokens), chunked prefill with an 8192-token budget, prefix caching on.

Timed per step: schedule() alone (the target: EWSJF <= 1.05x FCFS), update_from_output(), and the
add_request() calls of the step's arrivals (EWSJF sizes each by a prefix-cache lookup). Reported: median and
mean microseconds, and EWSJF/FCFS ratios. The two policies admit different requests, so their running sets,
and with them vLLM's own per-step work, drift apart; the time spent inside the waiting queue itself (every
RequestQueue call, plus EWSJF's begin_step/observe_step) is therefore also reported: that difference is the
overhead EWSJF adds to an identical engine state. Between steps, in the same run, the cost of entering numba
at all (bench/entry_floor.py): an empty jitted function given one array, and one given the step kernel's
arguments, the floor of any round that makes one kernel call. Figures only; nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from ewsjf.bench import arg_types as T
from ewsjf.bench import inputs
from ewsjf.bench.entry_floor import EntryFloor

RUNNING = 256
STEP_S = 0.03


@dataclass
class Timings:
    schedule: list[float] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    add: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    lookup: list[float] = field(default_factory=list)
    admitted: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        out = {}
        for name in ("schedule", "update", "add"):
            xs = getattr(self, name)
            out[f"{name}_median_us"] = statistics.median(xs) * 1e6
            out[f"{name}_mean_us"] = statistics.fmean(xs) * 1e6
        out["queue_mean_us"] = statistics.fmean(self.queue) * 1e6
        out["lookup_mean_us"] = statistics.fmean(self.lookup) * 1e6
        out["admitted_per_step"] = statistics.fmean(self.admitted)
        total = [a + b + c for a, b, c in zip(self.schedule, self.update, self.add)]
        out["total_median_us"] = statistics.median(total) * 1e6
        out["total_mean_us"] = statistics.fmean(total) * 1e6
        return out


class Side:
    """One scheduler on the harness plus its own copy of the arrival stream."""

    def __init__(self, policy: str, waiting: int, seed: int) -> None:
        from ewsjf.bench.virtual_vllm import VirtualVLLM

        self.v = VirtualVLLM(policy, num_blocks=90_000, block_size=16, max_num_seqs=RUNNING,
                             max_num_batched_tokens=8192, max_model_len=8192, enable_prefix_caching=True)
        self.rng = random.Random(seed)
        self.target = waiting
        self.k = 0
        self.t = Timings()
        self.queue_time = 0.0
        self.lookup_time = 0.0   # of queue_time: vLLM's prefix-cache lookup that sizes EWSJF's arrivals
        self._depth = 0
        self._recording = False
        self.calls: dict[str, list[float]] = {}   # name -> [calls, seconds] over the recorded steps (inclusive)
        self._instrument()

    def _instrument(self) -> None:
        """Accumulate the time spent inside the waiting queue's methods (and EWSJF's step hooks)."""
        targets = [(self.v.scheduler.waiting, ("add_request", "pop_request", "peek_request", "prepend_request",
                                               "prepend_requests", "remove_request", "remove_requests"))]
        q = getattr(self.v.scheduler, "ewsjf_queue", None)
        if q is not None:  # EWSJF's step hooks: begin_step (lazily, inside the step's first peek/pop) and
            targets.append((q, ("begin_step", "observe_step")))  # observe_step (batched right before it)
        for obj, names in targets:
            for name in names:
                setattr(obj, name, self._timed(name, getattr(obj, name)))
        waiting = self.v.scheduler.waiting
        lookup = getattr(waiting, "cached_tokens_fn", None)
        if lookup is not None:   # runs inside add_request (counted there); its share is reported on its own
            perf = time.perf_counter

            def timed_lookup(request):
                t0 = perf()
                try:
                    return lookup(request)
                finally:
                    self.lookup_time += perf() - t0

            waiting.cached_tokens_fn = timed_lookup

    def _timed(self, name: str, fn):
        """fn, timed: into queue_time when it is the outermost queue call (a nested one, such as begin_step
        inside the step's first peek, is counted by the outer call), and into calls[name] either way."""
        perf = time.perf_counter
        per_call = self.calls.setdefault(name, [0, 0.0])

        def wrapper(*args, **kwargs):
            outer = not self._depth
            self._depth += 1
            t0 = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = perf() - t0
                self._depth -= 1
                if outer:
                    self.queue_time += spent
                if self._recording:
                    per_call[0] += 1
                    per_call[1] += spent

        return wrapper

    def _arrival(self) -> None:
        rng = self.rng
        x = rng.random()
        n = rng.randint(10, 100) if x < 0.6 else rng.randint(200, 1000) if x < 0.9 else rng.randint(1500, 4000)
        self.k += 1
        self.v.add_request(f"b{self.k}", prompt_tokens=n, output_tokens=rng.randint(16, 512))

    def top_up(self) -> float:
        s = self.v.scheduler
        need = self.target - len(s.waiting) - len(s.kv_holding_waiting)
        t0 = time.perf_counter()
        for _ in range(max(0, need)):
            self._arrival()
        return time.perf_counter() - t0

    def per_call_summary(self, steps: int) -> dict[str, dict[str, float]]:
        """Per queue method over `steps` recorded steps: calls per step, and mean microseconds per call and
        per step (inclusive: a call's nested calls count in it too)."""
        return {name: {"per_step": n / steps, "us_per_call": spent / n * 1e6 if n else 0.0,
                       "us_per_step": spent / steps * 1e6} for name, (n, spent) in self.calls.items()}

    def step(self, record: bool) -> None:
        v, s = self.v, self.v.scheduler
        self.queue_time = self.lookup_time = 0.0
        self._recording = record
        add = self.top_up()
        t0 = time.perf_counter()
        so = s.schedule()
        t1 = time.perf_counter()
        mro = v.fake_output(so)
        v.now += STEP_S
        t2 = time.perf_counter()
        s.update_from_output(so, mro)
        t3 = time.perf_counter()
        if record:
            self.t.schedule.append(t1 - t0)
            self.t.update.append(t3 - t2)
            self.t.add.append(add)
            self.t.queue.append(self.queue_time)
            self.t.lookup.append(self.lookup_time)
            self.t.admitted.append(len(so.scheduled_new_reqs))


def _format_calls(calls: dict[str, dict[str, float]]) -> str:
    """'name us/call x calls/step' for the calls made, costliest per step first."""
    made = sorted((c for c in calls.items() if c[1]["per_step"]), key=lambda c: -c[1]["us_per_step"])
    return ", ".join(f"{name} {c['us_per_call']:.1f} us x{c['per_step']:.2f}" for name, c in made)


def run(waiting: int, steps: int, warmup: int = 60, seed: int = 0) -> dict:
    sides = {"fcfs": Side("fcfs", waiting, seed), "ewsjf": Side("ewsjf", waiting, seed)}
    floor = EntryFloor()   # entering numba between two engine steps, where EWSJF's round enters it
    for side in sides.values():  # fill: admit until 256 are running
        for _ in range(2000):
            side.step(record=False)
            if len(side.v.scheduler.running) >= RUNNING:
                break
    gc.collect()
    gc.disable()
    try:
        for i in range(warmup + steps):
            order = ("fcfs", "ewsjf") if i % 2 == 0 else ("ewsjf", "fcfs")
            for name in order:
                sides[name].step(record=i >= warmup)
            if i >= warmup:
                floor.measure(first_one=i % 4 < 2)
    finally:
        gc.enable()
    res = {"waiting": waiting, "running": RUNNING, "steps": steps, "entry_floor": floor.summary()}
    for name, side in sides.items():
        res[name] = side.t.summary()
        res[name]["calls"] = side.per_call_summary(steps)
        res[name]["running_at_end"] = len(side.v.scheduler.running)
        res[name]["waiting_at_end"] = len(side.v.scheduler.waiting)
    f, e = res["fcfs"], res["ewsjf"]
    res["ratio_schedule_median"] = e["schedule_median_us"] / f["schedule_median_us"]
    res["ratio_schedule_mean"] = e["schedule_mean_us"] / f["schedule_mean_us"]
    res["ratio_total_median"] = e["total_median_us"] / f["total_median_us"]
    res["ratio_total_mean"] = e["total_mean_us"] / f["total_mean_us"]
    return res


def format_result(r: dict) -> str:
    f, e = r["fcfs"], r["ewsjf"]
    lines = [f"running={r['running']} waiting={r['waiting']} steps={r['steps']} (admitted per step: fcfs "
             f"{f['admitted_per_step']:.2f}, ewsjf {e['admitted_per_step']:.2f})"]
    for part in ("schedule", "update", "add", "total"):
        lines.append(f"  {part:9s} median fcfs {f[part + '_median_us']:8.1f} us  ewsjf {e[part + '_median_us']:8.1f} us"
                     f"  x{e[part + '_median_us'] / f[part + '_median_us']:.3f}   | mean fcfs "
                     f"{f[part + '_mean_us']:8.1f} us  ewsjf {e[part + '_mean_us']:8.1f} us"
                     f"  x{e[part + '_mean_us'] / f[part + '_mean_us']:.3f}")
    lines.append(f"  inside the waiting queue per step (adds, pops, peeks, prepends, removes; EWSJF also begin_step "
                 f"and observe_step): fcfs {f['queue_mean_us']:.1f} us, ewsjf {e['queue_mean_us']:.1f} us; EWSJF's "
                 f"extra = {(e['queue_mean_us'] - f['queue_mean_us']) / f['total_mean_us'] * 100:.2f}% of FCFS's "
                 f"add+schedule+update time")
    lines.append(f"    of which vLLM's prefix-cache lookup sizing EWSJF's arrivals (option vllm.prefix_cache_lookup): "
                 f"{e['lookup_mean_us']:.1f} us; EWSJF's own work {e['queue_mean_us'] - e['lookup_mean_us']:.1f} us")
    lines.append("    per call (mean, inclusive; the step's admission round runs inside its first peek or pop, "
                 f"observe_step inside it too): {_format_calls(e['calls'])}; FCFS: {_format_calls(f['calls'])}")
    fl = r["entry_floor"]
    lines.append(f"  entering numba between steps, same run (median of empty jitted functions; called again at once "
                 f"in parentheses): one array {fl['one_array_us']:.1f} us ({fl['one_array_warm_us']:.1f}), the step "
                 f"kernel's {fl['kernel_args']} arguments {fl['kernel_args_us']:.1f} us "
                 f"({fl['kernel_args_warm_us']:.1f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiting", type=T.int_in(1, 1_000_000), nargs="+", default=[1000, 10000])
    ap.add_argument("--steps", type=T.int_in(1, 1_000_000), default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    try:
        made = inputs.output_paths(None, args.json, None, None)   # a bad --json fails now, not after the runs
    except ValueError as e:
        ap.error(str(e))
    try:
        results = []
        for n in args.waiting:
            r = run(n, args.steps, seed=args.seed)
            print(format_result(r), flush=True)
            results.append(r)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=2)
    finally:
        inputs.remove_made_folders(made)   # only an empty one goes: a run that wrote its JSON keeps its folder
    return 0


# --- pytest-benchmark entry (figures only) ---
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("waiting", [1000, 10000])
    def test_vllm_schedule_overhead(benchmark, waiting):
        pytest.importorskip("vllm")
        result = benchmark.pedantic(run, args=(waiting, 120), kwargs={"warmup": 30}, rounds=1, iterations=1)
        benchmark.extra_info.update({k: v for k, v in result.items() if k.startswith("ratio")})
        print("\n" + format_result(result))


if __name__ == "__main__":
    sys.exit(main())
