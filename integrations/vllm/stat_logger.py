"""API-process side of EWSJF's /metrics export: a vLLM stat-logger plugin plus a Prometheus collector.

vLLM imports this module in the API-server process (AsyncLLM loads the `vllm.stat_logger_plugins` entry
points) before it starts the EngineCore. Importing it sets EWSJF_METRICS_DIR (a fresh temporary directory,
removed at exit) unless already set, so the EngineCore inherits it and its EWSJF scheduler writes snapshots
there (see metrics.py). The plugin registers one collector on prometheus_client's default REGISTRY, which
vLLM's /metrics serves in the default single-API-server setup; each scrape reads the latest snapshot of every
live engine. Series (labels model_name, engine as in vLLM's own, plus queue or name):

  vllm:ewsjf_waiting_requests              requests in the EWSJF waiting queue
  vllm:ewsjf_resume_lane_depth             preempted/skipped requests waiting to resume
  vllm:ewsjf_queues                        active queues (bubbles included)
  vllm:ewsjf_queue_depth{queue}            waiting requests per queue
  vllm:ewsjf_queue_lower_bound_tokens{queue} / _upper_bound_tokens{queue}   queue bounds (effective tokens)
  vllm:ewsjf_queue_mean_tokens{queue}      queue mean length b_q
  vllm:ewsjf_queue_score{queue}            last score of the queue's head
  vllm:ewsjf_queue_admitted_total{queue}   requests admitted from the queue (the chosen queue, counted)
  vllm:ewsjf_last_chosen_queue             queue of the last admitted request
  vllm:ewsjf_starvation_promotions_total   admissions forced by the starvation bound (past their deadline)
  vllm:ewsjf_admissions_held_share{by}     share of recent steps with requests waiting that ended below the
                                           token budget (by=below_token_budget) or at the running cap
                                           (by=running_cap): what holds admissions, KV memory or max_num_seqs
  vllm:ewsjf_time_floor_seconds            the starvation bound's time floor: no request is due before this wait
  vllm:ewsjf_repartitions_total            Refine-and-Prune re-partitions
  vllm:ewsjf_param{name}                   current numeric parameters (theta, w_base, max_wait, ...)
  vllm:ewsjf_prefill_cost_coefficient{term}  fitted C_prefill model (c0, c1, c2, decode)
  vllm:ewsjf_snapshot_age_seconds          seconds since the engine's last snapshot

With --api-server-count > 1 (or PROMETHEUS_MULTIPROC_DIR set), vLLM serves /metrics from a multiprocess
registry this collector is not part of; the engine then exports the same series itself through
prometheus_client's multiprocess mode (metrics.py). Series definitions: series.py.
"""

from __future__ import annotations

import atexit
import glob
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Iterator

from ewsjf.integrations.vllm.metrics import METRICS_DIR_ENV
from ewsjf.integrations.vllm.series import BASE_LABELS, SERIES, samples

logger = logging.getLogger("vllm.ewsjf")


def _ensure_metrics_dir() -> str:
    directory = os.environ.get(METRICS_DIR_ENV)
    if not directory:
        directory = tempfile.mkdtemp(prefix="ewsjf-metrics-")
        os.environ[METRICS_DIR_ENV] = directory
        owner = os.getpid()

        def _cleanup() -> None:
            if os.getpid() == owner:
                shutil.rmtree(directory, ignore_errors=True)

        atexit.register(_cleanup)
    return directory


METRICS_DIR = _ensure_metrics_dir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_snapshots(directory: str | None = None) -> list[dict[str, Any]]:
    """Latest snapshot of each live engine in `directory` (default: EWSJF_METRICS_DIR)."""
    directory = directory or os.environ.get(METRICS_DIR_ENV) or METRICS_DIR
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "engine-*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            mtime = os.path.getmtime(path)
        except (OSError, ValueError):   # gone or rewritten meanwhile
            continue
        if _is_snapshot(doc) and _pid_alive(doc["pid"]):
            doc["_mtime"] = mtime
            docs.append(doc)
    return docs


def _is_snapshot(doc: Any) -> bool:
    """What EngineMetrics writes: a pid (a positive int: os.kill(0) would test this process's group), the time
    and the stats; a file of another shape (another version, another program) is skipped, not a crash."""
    return (isinstance(doc, dict) and type(doc.get("pid")) is int and doc["pid"] > 0
            and isinstance(doc.get("time"), (int, float)) and isinstance(doc.get("stats"), dict))


class EWSJFCollector:
    """prometheus_client custom collector over the engines' snapshots."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory

    def describe(self) -> list:
        return []  # no fixed set: the collector is unchecked, names are produced at collect time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families = {}
        for name, ser in SERIES.items():
            cls = CounterMetricFamily if ser.kind == "counter" else GaugeMetricFamily
            families[name] = cls(name, ser.doc, labels=list(BASE_LABELS + ser.labels))
        age = GaugeMetricFamily("vllm:ewsjf_snapshot_age_seconds", "Seconds since the engine's last EWSJF snapshot.",
                                labels=list(BASE_LABELS))
        now = time.time()
        for doc in read_snapshots(self.directory):
            base = [str(doc.get("model_name", "")), str(doc.get("engine", 0))]
            for name, extra, value in samples(doc.get("stats", {})):
                families[name].add_metric(base + list(extra), value)
            age.add_metric(base, max(0.0, now - doc["_mtime"]))
        yield from families.values()
        yield age


_REGISTERED = False


def register_collector(registry: Any = None) -> None:
    """Register the collector once on `registry` (default: prometheus_client's REGISTRY)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from prometheus_client import REGISTRY

    (registry or REGISTRY).register(EWSJFCollector())
    _REGISTERED = True


try:
    from vllm.v1.metrics.loggers import StatLoggerBase
except Exception:  # vLLM absent or changed: the plugin must never break the server
    StatLoggerBase = object  # type: ignore[misc,assignment]


class EWSJFStatLogger(StatLoggerBase):  # type: ignore[misc,valid-type]
    """vLLM stat-logger plugin: registers the EWSJF collector; records nothing per step itself."""

    def __init__(self, vllm_config: Any = None, engine_index: int = 0) -> None:
        self.engine_index = engine_index
        try:
            register_collector()
        except Exception:
            logger.warning("EWSJF: cannot register the /metrics collector", exc_info=True)

    def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
               engine_idx: int = 0) -> None:
        return None

    def log_engine_initialized(self) -> None:
        return None
