"""Does `ewsjf-tuned` find good parameters fast, and does tuning cost the hot path anything?

    python -m ewsjf.bench.tuner_convergence [--rate-scale 0.5] [--window 0:3600] [--cv 4] [--json out.json]

Part 1, convergence, on two workloads: the default Azure trace (code + conversation, one time axis, arrival
times scaled by --rate-scale) and a bursty variant (the same requests, Gamma inter-arrival times with
coefficient of variation --cv at the same mean rate). For each:
1. Best static setting: every point of a grid (2-level factorial over the five tuned parameters at their
   bounds, plus the default and the centre of the bounds) replays the whole workload through the sim; the
   best short-request mean TTFT is the reference (an oracle choice, made with hindsight).
2. `ewsjf-tuned` (ewsjf.bindings.tuned_queue.bench_queue) starts from deliberately poor parameters
   (POOR below: urgency and fairness weights that favour long queues) and tunes itself in virtual time:
   once a window with contention is recorded, one replay trial every --trial-every seconds; after 8
   trials the window's winner is applied (if it beats the parameters in force on that window). Later
   windows wait for the traffic that pays for them (the bench's replay budget; --replay-budget).
3. Figures: (a) the parameters in force once k = 1..16 trials have run, each run as a static setting over
   the whole workload, against the best static: the first k within 5% (the first window's own winner
   after k of its trials too); (b) the tuned run itself, over the requests that arrived after the first
   swap, against the best static setting on the same requests; (c) the whole tuned run, poor start
   included.
Short requests: prompt length <= the workload's first tercile (ewsjf.bench.metrics.class_edges).

With --live, the same tuner in live mode (each candidate serves the live traffic for --live-trial
seconds, as published) is run too, for comparison.

Part 2, hot-path cost: the same workload slice replayed through the sim (a) by a plain EWSJFQueue,
(b) by TunedEWSJFQueue with the tuner attached but idle, (c) by TunedEWSJFQueue with the background tuner
thread running replay trials back to back (duty cycle 1, worker process) during the whole replay.
Scheduler microseconds per engine step (sim-measured wall time inside the queue's methods, including the
recorder callbacks), alternated over --reps repetitions in one process; the ratio (c)/(a) is the figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from typing import Any

import numpy as np

from ewsjf.bench import arg_types as T
from ewsjf.bench import inputs
from ewsjf.bench.metrics import class_edges
from ewsjf.bench.traces import arrivals
from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf.bindings.tuned_queue import BENCH_SETTINGS, TunedEWSJFQueue, bench_queue
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, VirtualClock, Workload, simulate
from ewsjf_core.sim.step_time import RooflineStepTime
from ewsjf_core.tuner import ParamSpace, TunerSettings

POOR = {"a_u": 5.0e-3, "b_u": 0.0, "a_f": 1.0e-3, "b_f": 1.0, "alpha": 2.0}


def load(rate_scale: float, window: tuple[float, float], cv: float, seed: int) -> list[Workload]:
    from ewsjf.bench.workloads import load_workload
    w = load_workload("azure").slice(*window)
    if rate_scale != 1.0:
        w = w.scale_rate(rate_scale)
    n = len(w)
    t = arrivals(n, (n - 1) / w.duration_s, cv, seed)
    bursty = Workload(t, w.prompt_tokens, w.output_tokens, name=f"{w.name}-gamma-cv{cv:g}")
    return [w, bursty]


def short_mask(w: Workload) -> np.ndarray:
    return w.prompt_tokens <= class_edges(w.prompt_tokens)[0]


def run_static(w: Workload, cfg: EWSJFConfig, st, engine: EngineConfig):
    clock = VirtualClock()
    q = EWSJFQueue(cfg, clock=clock)
    return simulate(w, q, st, engine, clock=clock, log_steps=False)


def short_ttft(res, mask: np.ndarray) -> float:
    ttft = res.first_token_s - res.workload.arrival_s
    return float(np.nanmean(ttft[mask]))


def grid(base: EWSJFConfig) -> list[tuple[str, EWSJFConfig]]:
    sp = ParamSpace.from_config(base)
    out = [("default", base)]
    out.append(("centre", sp.to_config(base, [(lo + hi) / 2 for lo, hi in sp.bounds])))
    for corner in itertools.product(*[(lo, hi) for lo, hi in sp.bounds]):
        out.append(("corner" + "".join("H" if v == hi else "L" for v, (lo, hi) in zip(corner, sp.bounds)),
                    sp.to_config(base, list(corner))))
    return out


class StaticScores:
    """Short-request mean TTFT of a parameter point run as a static setting over the whole workload (cached)."""

    def __init__(self, w: Workload, base: EWSJFConfig, st, engine: EngineConfig, mask: np.ndarray) -> None:
        self.w, self.base, self.st, self.engine, self.mask = w, base, st, engine, mask
        self.space = ParamSpace.from_config(base)
        self._cache: dict[tuple, float] = {}

    def __call__(self, key: tuple) -> float:
        if key not in self._cache:
            cfg = self.space.to_config(self.base, list(key))
            self._cache[key] = short_ttft(run_static(self.w, cfg, self.st, self.engine), self.mask)
        return self._cache[key]


def best_static(w: Workload, base: EWSJFConfig, st, engine: EngineConfig, mask: np.ndarray) -> dict[str, Any]:
    """Step 1: every grid point replayed as a static setting; the best short-request TTFT is the reference."""
    t0 = time.time()
    statics, results = {}, {}
    for name, cfg in grid(base):
        results[name] = run_static(w, cfg, st, engine)
        statics[name] = short_ttft(results[name], mask)
    name = min(statics, key=statics.get)
    return {"statics": statics, "name": name, "short_ttft_s": statics[name], "result": results[name],
            "wall_s": time.time() - t0}


def run_tuned(w: Workload, poor: EWSJFConfig, st, engine: EngineConfig, args) -> dict[str, Any]:
    """Step 2: `ewsjf-tuned` from the poor start, recording the parameters in force after each trial."""
    sp = ParamSpace.from_config(poor)
    settings = BENCH_SETTINGS.replace(seed=args.seed, window_s=args.tuner_window, trials_per_window=8,
                                      retune_every_s=args.retune_every, replay_budget=args.replay_budget)
    clock = VirtualClock()
    q = bench_queue(clock, poor, settings=settings, trial_every_s=args.trial_every, engine=engine.with_kv_blocks(st))
    in_force: list[tuple[float, ...]] = []       # parameters in force once k trials have run
    trial_time: list[float] = []

    def on_step(*a) -> None:
        q.on_sim_step(*a)
        while len(in_force) < q.tuner.state.trials:
            in_force.append(tuple(sp.from_config_values(q.config)))
            trial_time.append(clock.now)

    t1 = time.time()
    res = simulate(w, q, st, engine, clock=clock, on_step=on_step, log_steps=False)
    return {"queue": q, "result": res, "in_force": in_force, "trial_time": trial_time, "wall_s": time.time() - t1}


def progress_by_trials(tuned: dict[str, Any], static_of: StaticScores, best: float, max_k: int) -> dict[str, Any]:
    """Step 3a: the parameters in force once k trials have run, and the first window's winner after k of its
    trials, each as a static setting, against the best static."""
    sp = static_of.space
    in_force, trial_time = tuned["in_force"], tuned["trial_time"]
    per_k = []
    for k in range(1, min(len(in_force), max_k) + 1):
        key = in_force[k - 1]
        per_k.append({"k": k, "at_s": trial_time[k - 1], "point": sp.as_mapping(list(key)),
                      "short_ttft_s": static_of(key), "ratio_to_best": static_of(key) / best})
    hist = tuned["queue"].tuner.state.history
    win0 = [r for r in hist if r.window == 0 and r.status in ("ok", "rolled_back") and r.reward is not None]
    win_k = []
    for k in range(1, len(win0) + 1):
        key = tuple(sp.clip(max(win0[:k], key=lambda r: r.reward).point))
        win_k.append({"k": k, "ratio_to_best": static_of(key) / best})
    return {"in_force_by_trials": per_k,
            "trials_to_within_5pct": next((p["k"] for p in per_k if p["ratio_to_best"] <= 1.05), None),
            "first_window_winner_by_trials": win_k}


def after_apply(w: Workload, mask: np.ndarray, tuned, best_res, poor_res, t_apply: float) -> dict[str, float]:
    """Step 3b: the tuned run over the requests that arrived after the first swap, against the best and the
    poor static settings on the same requests."""
    after = mask & (w.arrival_s > t_apply)
    if not after.any():
        return {"short_ttft_s": math.nan, "best_static_same_requests_s": math.nan,
                "poor_static_same_requests_s": math.nan, "ratio_to_best": math.nan}
    tuned_after, best_after = short_ttft(tuned, after), short_ttft(best_res, after)
    return {"short_ttft_s": tuned_after, "best_static_same_requests_s": best_after,
            "poor_static_same_requests_s": short_ttft(poor_res, after),
            "ratio_to_best": tuned_after / best_after if best_after else math.nan}


def live_mode(w: Workload, poor: EWSJFConfig, st, engine: EngineConfig, args, static_of: StaticScores,
              best: float, mask: np.ndarray) -> dict[str, Any]:
    """The published design for comparison: each candidate serves the live traffic for --live-trial
    seconds (two-phase under tick()), 8 trials per window, same start and seed."""
    sp = static_of.space
    lset = BENCH_SETTINGS.replace(seed=args.seed, window_s=args.tuner_window, trials_per_window=8,
                                  retune_every_s=args.retune_every, mode="live", live_trial_s=args.live_trial)
    lclock = VirtualClock()
    lq = TunedEWSJFQueue(poor, clock=lclock, settings=lset)
    lq.sim_trial_every_s = 0.0
    l_in_force: list[tuple[float, ...]] = []

    def l_on_step(*a) -> None:
        lq.on_sim_step(*a)
        while len(l_in_force) < lq.tuner.state.trials:
            l_in_force.append(tuple(sp.from_config_values(lq.config)))

    lres = simulate(w, lq, st, engine, clock=lclock, on_step=l_on_step, log_steps=False)
    state = lq.tuner.state
    return {"in_force_by_trials": [{"k": k, "ratio_to_best": static_of(l_in_force[k - 1]) / best}
                                   for k in range(1, min(len(l_in_force), args.max_k) + 1)],
            "whole_run_short_ttft_s": short_ttft(lres, mask),
            "trials": state.trials, "swaps": state.applied, "rollbacks": state.rollbacks, "failures": state.failures}


def convergence(w: Workload, st, engine: EngineConfig, args) -> dict[str, Any]:
    """Part 1 on one workload: best static (step 1), the tuned run (step 2), the figures (step 3)."""
    base = EWSJFConfig()
    sp = ParamSpace.from_config(base)
    poor = base.replace(**POOR)
    mask = short_mask(w)
    ref = best_static(w, base, st, engine, mask)
    best = ref["short_ttft_s"]
    poor_res = run_static(w, poor, st, engine)
    tuned = run_tuned(w, poor, st, engine, args)
    q = tuned["queue"]
    hist = q.tuner.state.history
    applied = [r for r in hist if "applied_at" in r.metrics]
    t_apply = applied[0].metrics["applied_at"] if applied else math.inf
    static_of = StaticScores(w, base, st, engine, mask)
    return {
        "live_mode": live_mode(w, poor, st, engine, args, static_of, best, mask) if args.live else None,
        "workload": w.describe(),
        "short_max_tokens": int(class_edges(w.prompt_tokens)[0]),
        "grid_size": len(ref["statics"]),
        "best_static": {"name": ref["name"], "short_ttft_s": best,
                        "point": sp.as_mapping(sp.from_config_values(dict(grid(base))[ref["name"]]))},
        "default_static_short_ttft_s": ref["statics"]["default"],
        "poor_static_short_ttft_s": short_ttft(poor_res, mask),
        **progress_by_trials(tuned, static_of, best, args.max_k),
        "tuned_applied_at_s": t_apply,
        "tuned_after_apply": after_apply(w, mask, tuned["result"], ref["result"], poor_res, t_apply),
        "tuned_whole_run_short_ttft_s": short_ttft(tuned["result"], mask),
        "tuner": {k: v for k, v in q.tuner.metrics().items() if k != "last_good"},
        "tuner_trials_total": len(hist),
        "tuner_wall_s": q.tuner_wall_s,
        "tuned_run_wall_s": tuned["wall_s"],
        "grid_wall_s": ref["wall_s"],
    }


def _warm_worker() -> int:
    """Run in the tuner's worker before a measured replay: imports and JIT caches loaded, so the trials
    that overlap the measurement are steady-state ones."""
    from ewsjf_core.tuner import propose
    from ewsjf_core.tuner.replay import CostModelStepTime
    sp = ParamSpace.from_config(EWSJFConfig())
    xs = [propose(sp, 0, [], [])]
    propose(sp, 0, xs * 4, [0.0, 1.0, 2.0, 3.0])
    n = 200
    wl = Workload(np.linspace(0, 20, n), np.full(n, 300), np.full(n, 20))
    q = EWSJFQueue(EWSJFConfig(), clock=VirtualClock())
    simulate(wl, q, CostModelStepTime(0.01, 1e-4, 1e-9, 1e-4), EngineConfig(), log_steps=False)
    return n


def overhead(w: Workload, st, engine: EngineConfig, reps: int) -> dict[str, Any]:
    """Scheduler us/step: plain EWSJFQueue, tuned queue idle, tuned queue with the background tuner busy."""
    out: dict[str, list[float]] = {"off": [], "attached_idle": [], "tuner_running": []}
    trials = []
    settings = TunerSettings(window_s=60.0, min_window_requests=50, min_window_depth=0.0, trials_per_window=8,
                             retune_every_s=0.0, duty_cycle=1.0, executor="process", worker_nice=19,
                             trial_timeout_s=60.0, guard_s=1e9, rollback_min_samples=10 ** 9)
    for rep in range(reps + 1):                 # rep 0 warms everything up and is not counted
        for arm in out:
            clock = VirtualClock()
            if arm == "off":
                q = EWSJFQueue(EWSJFConfig().replace(**POOR), clock=clock)
            else:
                q = TunedEWSJFQueue(EWSJFConfig().replace(**POOR), clock=clock, settings=settings)
                if arm == "tuner_running":
                    q.tuner.executor.call(_warm_worker, timeout=300)   # worker up and warm before the replay
                    q.start_tuner()
            res = simulate(w, q, st, engine, clock=clock, log_steps=False)
            if arm == "tuner_running":
                q.stop_tuner(timeout=60)
                if rep:
                    trials.append(q.tuner.state.trials)
            if rep:
                out[arm].append(res.scheduler_cpu_s / max(res.steps, 1) * 1e6)
    med = {k: float(np.median(v)) for k, v in out.items()}
    return {"us_per_step": out, "median_us_per_step": med,
            "ratio_running_vs_off": med["tuner_running"] / med["off"],
            "ratio_idle_vs_off": med["attached_idle"] / med["off"],
            "trials_during_runs": trials, "workload": w.describe()}


def print_convergence(w: Workload, r: dict[str, Any]) -> None:
    ta = r["tuned_after_apply"]
    print(f"\n== {w.name}: {len(w)} requests, {r['workload']['rate_rps']} req/s, short <= "
          f"{r['short_max_tokens']} tokens; {r['grid_size']} static settings in {r['grid_wall_s']:.0f} s")
    print(f"best static ({r['best_static']['name']}): short mean TTFT {r['best_static']['short_ttft_s']:.4f} s"
          f"   default {r['default_static_short_ttft_s']:.4f} s   poor start {r['poor_static_short_ttft_s']:.4f} s")
    for pk in r["in_force_by_trials"]:
        print(f"  in force after {pk['k']:2d} trial(s) (t={pk['at_s']:.0f} s): as static "
              f"{pk['short_ttft_s']:.4f} s = {pk['ratio_to_best']:.3f} x best")
    print("  first window's winner after k of its trials, x best: "
          + " ".join(f"{p['ratio_to_best']:.3f}" for p in r["first_window_winner_by_trials"]))
    print(f"trials to within 5% of best static: {r['trials_to_within_5pct']}")
    print(f"tuned run after the first winner (applied at {r['tuned_applied_at_s']:.0f} s virtual): "
          f"{ta['short_ttft_s']:.4f} s vs best static {ta['best_static_same_requests_s']:.4f} s on the "
          f"same requests = {ta['ratio_to_best']:.3f} x (poor static: {ta['poor_static_same_requests_s']:.4f} s)")
    if r["live_mode"]:
        lm = r["live_mode"]
        print("live mode (published design), in force after k trials, x best: "
              + " ".join(f"{p['ratio_to_best']:.3f}" for p in lm["in_force_by_trials"])
              + f"; whole run {lm['whole_run_short_ttft_s']:.4f} s; {lm['trials']} trials, "
              f"{lm['swaps']} swaps, {lm['rollbacks']} rollbacks, {lm['failures']} failed trials")
    print(f"tuned whole run (poor start included): {r['tuned_whole_run_short_ttft_s']:.4f} s; "
          f"{r['tuner_trials_total']} trials, {r['tuner']['applied']} swaps, "
          f"{r['tuner']['rollbacks']} rollbacks, {r['tuner']['replayed_requests']} requests replayed "
          f"({r['tuner']['windows_refused_by_budget']} window(s) held back by the replay budget), tuner CPU "
          f"{r['tuner_wall_s']:.1f} s of a {r['tuned_run_wall_s']:.1f} s run")


def _budget(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("--replay-budget must be > 0 or 'none'")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="llama-3-8b")
    p.add_argument("--gpu", default="a100-80gb")
    p.add_argument("--rate-scale", type=T.positive_float(), default=0.5,
                   help="arrival-rate scale of the Azure trace (default 0.5: at 1.0 the default model/GPU is "
                        "overloaded for the whole hour, every request then waits past max_wait and all "
                        "parameter settings behave alike)")
    p.add_argument("--window", type=T.window, default=(0.0, 3600.0),
                   help="START:END seconds of the trace (default the hour)")
    p.add_argument("--cv", type=T.positive_float(), default=8.0, help="Gamma CV of the bursty variant (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tuner-window", type=T.positive_float(), default=120.0, help="replay window, virtual seconds")
    p.add_argument("--trial-every", type=T.positive_float(), default=5.0, help="virtual seconds between trials")
    p.add_argument("--retune-every", type=float, default=300.0)
    p.add_argument("--replay-budget", type=_budget, default=BENCH_SETTINGS.replay_budget,
                   help="requests the tuner may replay per request recorded, after its first window "
                        f"(default the bench's, {BENCH_SETTINGS.replay_budget}; 'none': unbounded)")
    p.add_argument("--max-k", type=T.int_in(1, 1000), default=16, help="trial counts to evaluate (default 1..16)")
    p.add_argument("--live", action="store_true", help="also run the tuner in live mode (published design)")
    p.add_argument("--live-trial", type=T.positive_float(), default=15.0, help="live mode: virtual seconds per trial")
    p.add_argument("--overhead-window", type=T.window, default=(0.0, 1800.0), help="START:END of the overhead replay")
    p.add_argument("--reps", type=T.int_in(1, 100), default=3)
    p.add_argument("--skip-convergence", action="store_true")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        made = inputs.output_paths(None, args.json, None, None)   # a bad --json fails now, not after the runs
    except ValueError as e:
        p.error(str(e))
    try:
        try:
            st = RooflineStepTime(args.model, args.gpu)
        except ValueError as e:
            p.error(f"--model/--gpu: {e}")
        _check_windows(p, args)
        return _run(args, st)
    finally:
        inputs.remove_made_folders(made)   # only an empty one goes: a run that wrote its JSON keeps its folder


def _check_windows(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Each trace window the run replays holds at least two requests (an arrival rate needs two)."""
    from ewsjf.bench.workloads import load_workload
    trace = load_workload("azure")
    for option, window, used in (("--window", args.window, not args.skip_convergence),
                                 ("--overhead-window", args.overhead_window, not args.skip_overhead)):
        n = len(trace.slice(*window)) if used else 2
        if n < 2:
            p.error(f"{option} {window[0]:g}:{window[1]:g} holds {n} request(s) of the trace; at least 2 are needed")


def _run(args: argparse.Namespace, st: RooflineStepTime) -> int:
    lo, hi = args.window
    engine = EngineConfig()
    report: dict[str, Any] = {"model": args.model, "gpu": args.gpu, "rate_scale": args.rate_scale,
                              "poor_start": POOR, "seed": args.seed, "replay_budget": args.replay_budget}
    if not args.skip_convergence:
        report["convergence"] = []
        for w in load(args.rate_scale, (lo, hi), args.cv, args.seed):
            r = convergence(w, st, engine, args)
            report["convergence"].append(r)
            print_convergence(w, r)
    if not args.skip_overhead:
        olo, ohi = args.overhead_window
        w = load(args.rate_scale, (olo, ohi), args.cv, args.seed)[0]
        o = overhead(w, st, engine, args.reps)
        report["overhead"] = o
        m = o["median_us_per_step"]
        print(f"\n== hot path, {w.name} ({len(w)} requests), median of {args.reps} alternated runs, us/step: "
              f"off {m['off']:.2f}, tuner attached idle {m['attached_idle']:.2f}, tuner running "
              f"{m['tuner_running']:.2f}  ->  running/off = {o['ratio_running_vs_off']:.3f} "
              f"(trials run during the replays: {o['trials_during_runs']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
