"""Serving metrics of a `SimResult` (also used for the vLLM engine's results, which share its shape).

Definitions (times in seconds; only completed requests count unless stated):
- TTFT = first token time - arrival. TPOT = (finish - first token) / (output tokens - 1), requests with at
  least 2 output tokens. E2E = finish - arrival. Queue wait = first admission - arrival.
- Length classes by prompt tokens: short <= edges[0] < medium <= edges[1] < long. Default edges: the
  workload's prompt-length terciles (so each class holds about a third of the requests), printed.
- Throughput: output tokens (and requests) per second over the makespan, first arrival to last finish.
  `output_tps_window` counts only tokens emitted while requests were still arriving (first to last
  arrival): the rate the engine sustains under the offered load, which differs between schedulers under
  overload even though every request eventually completes.
- Goodput: completed requests meeting TTFT <= slo_ttft_s and TPOT <= slo_tpot_s, per second of makespan
  (and as a fraction of all requests).
- Longest wait: the largest queue wait (arrival to first admission).
- Measured requests: every latency figure (TTFT, TPOT, E2E, queue wait, by class, longest wait, Jain's index)
  counts the requests from index `measured_from` on (arrival order; default 0: all). A replay that starts
  on an idle engine can skip its warm-up this way (the suite does); rates and totals cover the whole run.
- Jain's fairness index over slowdowns, J = (sum x)^2 / (n sum x^2), x = E2E / the request's latency
  alone on the idle engine (from the step-time model; 1 = perfectly equal slowdowns).
- Scheduler CPU: wall microseconds inside the queue's methods per engine step.
- gpu_busy_frac: fraction of the makespan with a step running (not a load measure: a few decoders keep it
  near 1). saturated_frac: fraction of busy time in steps after which requests were left waiting (the
  engine was full: token budget, max_running or KV cache). mfu_linear: model FLOP utilization of the linear
  layers (2 * linear params * batch tokens) against the GPU's peak.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

PCTS = (50, 90, 99)


def class_edges(prompt_tokens: np.ndarray) -> tuple[int, int]:
    """Default class edges: the prompt-length terciles (integers, strictly increasing)."""
    if len(prompt_tokens) == 0:
        return (1, 2)
    a, b = np.percentile(prompt_tokens, [100 / 3, 200 / 3])
    a = int(round(a))
    b = max(int(round(b)), a + 1)
    return (a, b)


def _stats(x: np.ndarray, scale: float = 1.0) -> dict[str, float | None]:
    x = x[~np.isnan(x)]
    if not len(x):
        return {"mean": None, **{f"p{p}": None for p in PCTS}, "n": 0}
    ps = np.percentile(x, PCTS)
    out = {"mean": float(x.mean()) * scale}
    out.update({f"p{p}": float(v) * scale for p, v in zip(PCTS, ps)})
    out["n"] = int(len(x))
    return out


def isolated_latency(prompt: np.ndarray, output: np.ndarray, step_time, token_budget: int = 8192) -> np.ndarray:
    """Latency of each request alone on an idle engine: chunked prefill, then one decode step per token."""
    out = np.empty(len(prompt))
    st = step_time.step_time
    cache: dict[int, float] = {}
    for i, (p, o) in enumerate(zip(prompt.tolist(), output.tolist())):
        t = 0.0
        done = 0
        while done < p:
            c = min(token_budget, p - done)
            t += st(c, c * (done + (c + 1) * 0.5), 0, done, 1)
            done += c
        if o > 1:
            mid = p + o // 2
            key = mid // 256
            d = cache.get(key)
            if d is None:
                d = cache[key] = st(0, 0.0, 1, key * 256 + 128, 0)
            t += (o - 1) * d
        out[i] = t
    return out


def summarize(result, class_edges_: Sequence[int] | None = None, slo_ttft_s: float = 2.0,
              slo_tpot_s: float = 0.1, step_time=None, measured_from: int = 0) -> dict[str, Any]:
    """Metrics of one replay as a JSON-ready dict (see the module docstring for definitions).

    step_time: the step-time model, for slowdowns (Jain's index); default: result.step_model if present.
    measured_from: the first request (arrival order) whose latencies count (the warm-up before it does not).
    """
    w = result.workload
    edges = tuple(int(e) for e in (class_edges_ or class_edges(w.prompt_tokens)))
    if len(edges) != 2 or edges[0] >= edges[1]:
        raise ValueError(f"class edges must be two increasing lengths, got {edges!r}")
    if not 0 <= measured_from < max(len(w), 1):
        raise ValueError(f"measured_from must be in [0, {len(w)}), got {measured_from!r}")
    st = step_time if step_time is not None else getattr(result, "step_model", None)
    m = _latencies(result, edges, measured_from)
    m.update(_rates(result, slo_ttft_s, slo_tpot_s))
    m.update(_fairness(result, st, measured_from))
    m.update(_totals(result))
    m.update(_engine_use(result, st, m["makespan_s"]))
    return m


def _per_request(result) -> dict[str, np.ndarray]:
    """Per-request TTFT, TPOT, E2E and queue wait (NaN where a request never got there)."""
    w = result.workload
    arr, O = w.arrival_s, w.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(O > 1, (result.finish_s - result.first_token_s) / np.maximum(O - 1, 1), np.nan)
    return {"ttft": result.first_token_s - arr, "tpot": tpot, "e2e": result.finish_s - arr,
            "wait": result.first_scheduled_s - arr}


def _makespan(result) -> float:
    """First arrival to last finish (seconds, > 0)."""
    arr = result.workload.arrival_s
    t0 = float(arr[0]) if len(arr) else 0.0
    done = ~np.isnan(result.finish_s)
    t_end = float(np.nanmax(result.finish_s)) if done.any() else t0
    return max(t_end - t0, 1e-9)


def _latencies(result, edges: tuple[int, int], first: int = 0) -> dict[str, Any]:
    """Counts, classes, and TTFT / TPOT / E2E / queue-wait statistics, overall and per length class, of the
    requests from index `first` on."""
    w = result.workload
    P = w.prompt_tokens[first:]
    r = {k: v[first:] for k, v in _per_request(result).items()}
    classes = {"short": P <= edges[0], "medium": (P > edges[0]) & (P <= edges[1]), "long": P > edges[1]}
    wait = r["wait"]
    return {
        "requests": int(len(w)), "measured_from": int(first),
        "completed": int((~np.isnan(result.finish_s)).sum()),
        "rejected": int(np.sum(result.rejected)),
        "class_edges": list(edges),
        "class_sizes": {k: int(v.sum()) for k, v in classes.items()},
        "ttft_s": _stats(r["ttft"]),
        "ttft_by_class_s": {k: _stats(r["ttft"][v]) for k, v in classes.items()},
        "tpot_s": _stats(r["tpot"]),
        "e2e_s": _stats(r["e2e"]),
        "e2e_by_class_s": {k: _stats(r["e2e"][v]) for k, v in classes.items()},
        "queue_wait_s": _stats(wait),
        "longest_wait_s": float(np.nanmax(wait)) if np.isfinite(wait).any() else None,
    }


def _window_tps(result) -> float | None:
    """Output tokens per second emitted while requests were still arriving (None without a step log)."""
    arr = result.workload.arrival_s
    log = getattr(result, "step_log", None) or {}
    if len(arr) <= 1 or "emitted" not in log or not len(log["emitted"]):
        return None
    t0, t_last = float(arr[0]), float(arr[-1])
    if t_last <= t0:
        return None
    in_win = log["start_s"] + log["duration_s"] <= t_last
    return float(log["emitted"][in_win].sum()) / (t_last - t0)


def _rates(result, slo_ttft_s: float, slo_tpot_s: float) -> dict[str, Any]:
    """Token and request rates over the makespan, and goodput under the SLOs."""
    w = result.workload
    done = ~np.isnan(result.finish_s)
    r = _per_request(result)
    makespan = _makespan(result)
    meet = done & (r["ttft"] <= slo_ttft_s) & ((r["tpot"] <= slo_tpot_s) | np.isnan(r["tpot"]))
    return {
        "output_tps": int(w.output_tokens[done].sum()) / makespan,
        "output_tps_window": _window_tps(result),
        "request_rps": float(done.sum()) / makespan,
        "goodput_rps": float(meet.sum()) / makespan,
        "slo_attainment": float(meet.sum()) / max(len(w), 1),
        "slo": {"ttft_s": slo_ttft_s, "tpot_s": slo_tpot_s},
    }


def _totals(result) -> dict[str, Any]:
    """Makespan, busy fraction, steps, preemptions and the scheduler's CPU time (total and per step)."""
    makespan = _makespan(result)
    steps = max(int(result.steps), 1)
    return {
        "makespan_s": makespan,
        "gpu_busy_frac": float(result.busy_s) / makespan,
        "steps": int(result.steps),
        "preemptions": int(np.sum(result.preemptions)),
        "scheduler_us_per_step": result.scheduler_cpu_s / steps * 1e6,
        "scheduler_cpu_s": float(result.scheduler_cpu_s),
        "replay_wall_s": float(result.wall_s),
    }


def _fairness(result, st, first: int = 0) -> dict[str, Any]:
    """Jain's index over slowdowns (E2E / latency alone on the idle engine) of the requests from index `first`
    on; None without a step-time model."""
    done = ~np.isnan(result.finish_s)
    done[:first] = False
    if st is None or not done.any():
        return {"jain_slowdown": None, "slowdown": None}
    w = result.workload
    ideal = isolated_latency(w.prompt_tokens[done], w.output_tokens[done], st,
                             result.info.get("token_budget", 8192))
    x = (result.finish_s - w.arrival_s)[done] / ideal
    return {"jain_slowdown": float(x.sum() ** 2 / (len(x) * (x * x).sum())), "slowdown": _stats(x)}


def _engine_use(result, st, makespan: float) -> dict[str, Any]:
    """Batch size, running count, saturated fraction and linear-layer MFU, from the step log (if kept)."""
    log = getattr(result, "step_log", None) or {}
    if "prefill_tokens" not in log or not len(log["prefill_tokens"]):
        return {}
    tokens = log["prefill_tokens"] + log["decode_tokens"]
    m = {"mean_batch_tokens": float(tokens.mean()), "mean_running": float(log["running"].mean())}
    if "waiting" in log:
        d = log["duration_s"]
        m["saturated_frac"] = float(d[log["waiting"] > 0].sum() / max(d.sum(), 1e-12))
    spec, gpu = getattr(st, "model", None), getattr(st, "gpu", None)
    if spec is not None and gpu is not None and hasattr(spec, "layer_linear_params"):
        flops = 2.0 * spec.layers * spec.layer_linear_params * float(tokens.sum())
        m["mfu_linear"] = flops / (gpu.peak_flops * makespan)
    return m


def fmt(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"
