"""Operating points of `ewsjf bench --suite`: the arrival-rate scales at which FCFS's mean TTFT hits targets.

Loads are set by the engine, not by multiples of a trace's own rate: for each workload, a log-scale
bisection finds the rate scale where FCFS's mean TTFT is within `tolerance` of each target (1, 3, 10 s by
default). Results are cached in a JSON file keyed by everything that decides them: the workload (name,
request count, seed, and the source of the workload builders), the model, GPU, engine configuration and the
source of the simulator (so a simulator or step-time change invalidates the cache).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Callable

import ewsjf_core.sim

from . import suite_workloads

CACHE_ROOT = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ewsjf")
"""Where the bench keeps what it can recompute (operating points, generated traces)."""
DEFAULT_CACHE = os.path.join(CACHE_ROOT, "suite_loads.json")


def cache_key(parts: dict) -> str:
    # Every module of the simulator (its KV model decides where FCFS saturates as much as its step time does).
    sim_files = sorted(Path(ewsjf_core.sim.__file__).parent.glob("*.py"))
    src = "".join(f.read_text() for f in sim_files) + inspect.getsource(suite_workloads)
    blob = json.dumps(parts, sort_keys=True) + hashlib.sha256(src.encode()).hexdigest()
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def find_scale(mean_ttft: Callable[[float], float], target: float, start: float = 1.0, tolerance: float = 0.1,
               max_evals: int = 24) -> tuple[float, float]:
    """(scale, mean TTFT at it): bracket by doubling/halving from `start`, then bisect in log scale.

    mean_ttft must increase with the scale (more load, longer waits); the closest point found is returned
    when `max_evals` runs out before the tolerance is met.
    """
    seen: dict[float, float] = {}

    def f(s: float) -> float:
        if s not in seen:
            seen[s] = mean_ttft(s)
        return seen[s]

    lo = hi = start
    # An idle engine's own TTFT can exceed the target (long prompts): stop after a 64x lighter load.
    while f(lo) > target and len(seen) < max_evals and lo > start / 64:
        lo /= 2.0
    while f(hi) < target and len(seen) < max_evals:
        hi *= 2.0
    while len(seen) < max_evals:
        best = min(seen, key=lambda s: abs(math.log(seen[s] / target)) if seen[s] > 0 else math.inf)
        if abs(seen[best] / target - 1.0) <= tolerance:
            return best, seen[best]
        below = [s for s in seen if seen[s] < target]
        above = [s for s in seen if seen[s] >= target]
        if not below or not above:
            break
        lo, hi = max(below), min(above)
        f(math.sqrt(lo * hi))
    best = min(seen, key=lambda s: abs(math.log(max(seen[s], 1e-9) / target)))
    return best, seen[best]


def operating_points(key_parts: dict, mean_ttft: Callable[[float], float], targets: tuple[float, ...],
                     cache_path: str | None = DEFAULT_CACHE, tolerance: float = 0.1) -> list[dict]:
    """[{target_s, scale, fcfs_mean_ttft_s}] per target, from the cache when present (then saved)."""
    key = cache_key({**key_parts, "targets": list(targets), "tolerance": tolerance})
    cache: dict = {}
    if cache_path and os.path.exists(cache_path):
        try:
            with open(cache_path) as f:
                cache = json.load(f)
        except (OSError, ValueError):
            cache = {}  # a corrupt cache is recomputed, never trusted
    if key in cache:
        return cache[key]["points"]
    points = []
    for t in targets:
        s, v = find_scale(mean_ttft, t, tolerance=tolerance)
        points.append({"target_s": t, "scale": s, "fcfs_mean_ttft_s": v,
                       "reached": abs(v / t - 1.0) <= tolerance})
    if cache_path:
        cache[key] = {"parts": key_parts, "points": points}
        os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
        tmp = f"{cache_path}.{os.getpid()}.tmp"   # concurrent suites each write whole, never into one file
        with open(tmp, "w") as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(tmp, cache_path)
    return points
