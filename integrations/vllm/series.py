"""The `vllm:ewsjf_*` Prometheus series: one definition, read from the scheduler's stats() dict.

Used by both export paths: the API-process collector over snapshots (stat_logger.py, the default) and the
engine-process multiprocess exporter (metrics.py, when vLLM serves a multiprocess registry). Names follow
vLLM's conventions: `vllm:` prefix, snake_case, base labels model_name and engine, counters exposed with
the `_total` suffix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

BASE_LABELS = ("model_name", "engine")


@dataclass(frozen=True)
class Series:
    name: str
    kind: str  # "gauge" | "counter"
    doc: str
    labels: tuple[str, ...] = ()


SERIES: dict[str, Series] = {s.name: s for s in (
    Series("vllm:ewsjf_waiting_requests", "gauge", "Requests waiting in the EWSJF queue."),
    Series("vllm:ewsjf_resume_lane_depth", "gauge", "Preempted or skipped requests waiting to resume."),
    Series("vllm:ewsjf_queues", "gauge", "Active EWSJF queues (bubbles included)."),
    Series("vllm:ewsjf_queue_depth", "gauge", "Waiting requests per EWSJF queue.", ("queue", "bubble")),
    Series("vllm:ewsjf_queue_lower_bound_tokens", "gauge", "Lower bound of the EWSJF queue (effective tokens).",
           ("queue",)),
    Series("vllm:ewsjf_queue_upper_bound_tokens", "gauge", "Upper bound of the EWSJF queue (effective tokens).",
           ("queue",)),
    Series("vllm:ewsjf_queue_mean_tokens", "gauge", "Mean length b_q of the EWSJF queue.", ("queue",)),
    Series("vllm:ewsjf_queue_score", "gauge", "Last EWSJF score of the queue's head.", ("queue",)),
    Series("vllm:ewsjf_last_chosen_queue", "gauge", "Queue of the last admitted request (-1: none yet)."),
    Series("vllm:ewsjf_param", "gauge", "Current numeric EWSJF parameter.", ("name",)),
    Series("vllm:ewsjf_prefill_cost_coefficient", "gauge",
           "Fitted prefill-cost model C(b) = c0 + c1 b + c2 b^2 seconds (decode: seconds per decode token).",
           ("term",)),
    Series("vllm:ewsjf_queue_admitted", "counter", "Requests admitted from the EWSJF queue (the chosen queue).",
           ("queue",)),
    Series("vllm:ewsjf_starvation_promotions", "counter",
           "Admissions forced by the starvation bound (requests past their deadline)."),
    Series("vllm:ewsjf_admissions_held_share", "gauge",
           "Share of the recent steps with requests waiting that ended below the token budget (by=below_token_budget: "
           "KV memory or the running cap held admissions) or at the running cap (by=running_cap).", ("by",)),
    Series("vllm:ewsjf_time_floor_seconds", "gauge",
           "The starvation bound's time floor: no request is due before it has waited this long (the tail, "
           "tail_floor_quantile, of a lower bound of FCFS's waits or of the measured admission-count waits)."),
    Series("vllm:ewsjf_repartitions", "counter", "Refine-and-Prune re-partitions."),
    Series("vllm:ewsjf_preemption_guard_watermark_blocks", "gauge",
           "KV blocks admissions beside running requests leave free this step, learned from preemptions (with "
           "preemption_guard on)."),
    Series("vllm:ewsjf_tuner_trials", "counter", "Bayesian tuner trials run (with the tuner on)."),
    Series("vllm:ewsjf_tuner_applied", "counter", "Parameter sets the tuner applied."),
    Series("vllm:ewsjf_tuner_rollbacks", "counter", "Tuner swaps rolled back by the latency guard."),
)}


def samples(stats: dict[str, Any]) -> Iterator[tuple[str, tuple[str, ...], float]]:
    """(series name, extra label values, value) for one stats() dict (EWSJFQueue.stats() + adapter fields)."""
    yield "vllm:ewsjf_waiting_requests", (), float(stats.get("waiting", 0))
    yield "vllm:ewsjf_resume_lane_depth", (), float(stats.get("resume_lane_depth", 0))
    queues = stats.get("queues", [])
    yield "vllm:ewsjf_queues", (), float(len(queues))
    for q in queues:
        qid = str(q["id"])
        yield "vllm:ewsjf_queue_depth", (qid, "true" if q.get("bubble") else "false"), float(q.get("depth", 0))
        yield "vllm:ewsjf_queue_lower_bound_tokens", (qid,), float(q.get("lo", 0.0))
        yield "vllm:ewsjf_queue_upper_bound_tokens", (qid,), float(q.get("hi", math.inf))
        yield "vllm:ewsjf_queue_mean_tokens", (qid,), float(q.get("mean", 0.0))
        score = float(q.get("score", -math.inf))
        if math.isfinite(score):
            yield "vllm:ewsjf_queue_score", (qid,), score
        yield "vllm:ewsjf_queue_admitted", (qid,), float(q.get("admitted", 0))
    yield "vllm:ewsjf_last_chosen_queue", (), float(stats.get("last_source_queue", -1))
    for name, v in sorted(stats.get("params", {}).items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            yield "vllm:ewsjf_param", (name,), float(v)
    cost = stats.get("cost_model", {})
    for term in ("c0", "c1", "c2", "decode"):
        v = cost.get(term)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            yield "vllm:ewsjf_prefill_cost_coefficient", (term,), float(v)
    yield "vllm:ewsjf_starvation_promotions", (), float(stats.get("starvation_promotions", 0))
    for by, share in sorted(stats.get("admissions_held", {}).items()):
        yield "vllm:ewsjf_admissions_held_share", (by,), float(share)
    floor = stats.get("time_floor")
    if floor:
        yield "vllm:ewsjf_time_floor_seconds", (), float(floor["tail_s"])
    yield "vllm:ewsjf_repartitions", (), float(stats.get("repartitions", 0))
    guard = stats.get("preemption_guard")
    if guard:
        yield "vllm:ewsjf_preemption_guard_watermark_blocks", (), float(guard["watermark_blocks"])
    tuner = stats.get("tuner")
    if tuner:
        for key in ("trials", "applied", "rollbacks"):
            yield f"vllm:ewsjf_tuner_{key}", (), float(tuner.get(key, 0))
