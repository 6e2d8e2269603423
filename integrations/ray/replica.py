"""Replica side: publish the EWSJF scheduler's load for the router (`record_routing_stats`).

vLLM runs its scheduler in the EngineCore process; the EWSJF scheduler writes a JSON snapshot of its
queue's stats there every `metrics_interval_s` (see ewsjf.integrations.vllm.metrics) into the directory
named by EWSJF_METRICS_DIR. `RoutingStatsPublisher` gives each replica its own directory (call it before the
engine starts, so the EngineCore inherits the variable) and turns the latest snapshot into the compact
dict the router parses (`ReplicaStats.to_dict`): running batch, waiting requests, per-queue
[lo, hi, depth, mean tokens], prefill rate, and the engine's wall-clock time of the snapshot.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Mapping

from .state import QueueLoad, ReplicaStats

METRICS_DIR_ENV = "EWSJF_METRICS_DIR"


def stats_from_ewsjf(stats: Mapping[str, Any], time: float, ongoing: int | None = None) -> ReplicaStats:
    """ReplicaStats from the EWSJF scheduler's `ewsjf_stats()` (EWSJFQueue.stats() plus `running`).

    `ongoing` (requests the replica is serving, when it counts them) bounds the snapshot's counts: the
    engine writes snapshots only while it schedules, so an idle engine's last snapshot still shows its
    final step's batch."""
    queues = tuple(QueueLoad(float(q["lo"]), float(q["hi"]), int(q["depth"]), float(q["mean"]))
                   for q in stats.get("queues", ()))
    waiting = int(stats.get("waiting", 0)) + int(stats.get("kv_holding_waiting", 0))
    running = int(stats.get("running", 0))
    if ongoing is not None:
        if ongoing <= 0:
            queues = tuple(QueueLoad(q.lo, q.hi, 0, q.mean_tokens) for q in queues)
        waiting = min(waiting, max(0, ongoing))
        running = min(running, max(0, ongoing - waiting))
    rate = float(stats.get("cost_model", {}).get("prefill_rate_tps", 0.0) or 0.0)
    prefilling = float(stats.get("prefilling_tokens", 0) or 0) if running else 0.0
    return ReplicaStats(time=float(time), running=running, waiting=waiting, queues=queues, prefill_rate_tps=rate,
                        prefilling_tokens=prefilling)


class RoutingStatsPublisher:
    """Reads this replica's engine snapshots; `record(ongoing)` is the body of `record_routing_stats`."""

    def __init__(self, directory: str | None = None) -> None:
        self._owned = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="ewsjf-replica-")
        os.environ[METRICS_DIR_ENV] = self.directory  # inherited by the EngineCore started after this
        self.published = 0

    def latest(self) -> dict[str, Any] | None:
        """The newest snapshot of a live engine in the directory, or None before the first."""
        from ewsjf.integrations.vllm.stat_logger import read_snapshots

        docs = read_snapshots(self.directory)
        return max(docs, key=lambda d: d.get("time", 0.0)) if docs else None

    def record(self, ongoing: int | None = None) -> dict[str, Any]:
        """The routing stats dict; `{}` before the engine's first snapshot (the router then counts alone)."""
        doc = self.latest()
        if doc is None:
            return {}
        self.published += 1
        return stats_from_ewsjf(doc.get("stats", {}), doc["time"], ongoing).to_dict()

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
