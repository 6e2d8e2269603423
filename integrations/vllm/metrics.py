"""Engine-side observability of the EWSJF scheduler: snapshots for /metrics and a low-rate log summary.

Where the series come from. In vLLM V1 the scheduler runs in the EngineCore process while /metrics is
served by the API-server process from its own Prometheus registry; vLLM's SchedulerStats (the channel from
one to the other) has fixed fields. So the scheduler writes a snapshot of its queue's stats (JSON, atomic
rename, at most every `metrics_interval_s`) into the directory named by EWSJF_METRICS_DIR, and a vLLM
stat-logger plugin in the API process (ewsjf.integrations.vllm.stat_logger, registered as the
`vllm.stat_logger_plugins` entry point `ewsjf`) turns the snapshots into `vllm:ewsjf_*` series at scrape
time. That plugin sets EWSJF_METRICS_DIR when it is imported, which vLLM does before it starts the
EngineCore, so the engine inherits it: nothing to configure. Without that variable (offline `vllm.LLM`,
the virtual harness) no file is written; `scheduler.ewsjf_stats()` gives the same data in-process.

Multiprocess mode. When PROMETHEUS_MULTIPROC_DIR is set (vLLM sets it for --api-server-count > 1, an operator
may set it), vLLM's /metrics serves a MultiProcessCollector registry that a collector in the API process
cannot join; prometheus_client in the EngineCore then writes its values to that directory too. So in that
mode the scheduler exports the same series (series.py) itself, as prometheus_client Gauges
(multiprocess_mode="livemostrecent") and Counters, at the same interval.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Callable

from ewsjf.integrations.vllm.config import VLLMOptions

logger = logging.getLogger("vllm.ewsjf")

METRICS_DIR_ENV = "EWSJF_METRICS_DIR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def snapshot_path(directory: str, engine_index: int, pid: int) -> str:
    return os.path.join(directory, f"engine-{engine_index}-{pid}.json")


class EngineMetrics:
    """Periodic snapshot writer and log summary, driven from schedule() (no thread)."""

    def __init__(self, options: VLLMOptions, clock: Callable[[], float], directory: str | None,
                 engine_index: int, model_name: str, multiprocess: bool = False) -> None:
        self.directory = directory
        self.prometheus = PrometheusExporter(model_name, engine_index) if multiprocess else None
        self.engine_index = engine_index
        self.model_name = model_name
        self.pid = os.getpid()
        self.metrics_interval = options.metrics_interval_s if (directory or multiprocess) else 0.0
        self.log_interval = options.log_interval_s
        start = clock()
        self.since = start
        """The clock at the last export (or the start): a reading below it means the clock went back, which
        re-times the snapshots (the scheduler calls export then too; see export)."""
        self.next_metrics = start + self.metrics_interval if self.metrics_interval else math.inf
        self.next_log = start + self.log_interval if self.log_interval else math.inf
        self.next_due = min(self.next_metrics, self.next_log)
        self._last_logged: dict[str, Any] | None = None
        self._path = snapshot_path(directory, engine_index, self.pid) if directory else None
        self.snapshots_written = 0

    @classmethod
    def create(cls, vllm_config: Any, options: VLLMOptions, clock: Callable[[], float]) -> "EngineMetrics | None":
        directory = os.environ.get(METRICS_DIR_ENV) or None
        if directory and not os.path.isdir(directory):
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError:
                logger.warning("EWSJF: cannot create %s=%s; /metrics export disabled", METRICS_DIR_ENV, directory)
                directory = None
        multiprocess = bool(os.environ.get(MULTIPROC_ENV)) and options.metrics_interval_s > 0
        if not directory and not multiprocess and not options.log_interval_s:
            return None
        pc = getattr(vllm_config, "parallel_config", None)
        engine_index = int(getattr(pc, "data_parallel_rank", 0) or 0)
        mc = getattr(vllm_config, "model_config", None)
        name = getattr(mc, "served_model_name", None) or getattr(mc, "model", "") or ""
        if isinstance(name, (list, tuple)):
            name = name[0] if name else ""
        return cls(options, clock, directory, engine_index, str(name), multiprocess)

    def export(self, stats: dict[str, Any], now: float, force: bool = False) -> None:
        """Write the snapshot if due (or `force`: the engine goes idle), log the summary if due.

        A clock set back (the wall clock by NTP or by hand) re-times both from `now`: the next of each is one
        interval away, not due when the clock gets back to where it was (no snapshot for that long)."""
        if now < self.since:
            if self.next_metrics != math.inf:   # (inf: off, or disabled by a failed write)
                self.next_metrics = now + self.metrics_interval
            if self.next_log != math.inf:
                self.next_log = now + self.log_interval
        self.since = now
        if now >= self.next_metrics or (force and self.metrics_interval):
            self.next_metrics = now + self.metrics_interval
            if self._path is not None:
                self._write(stats, now)
            if self.prometheus is not None:
                try:
                    self.prometheus.export(stats)
                except Exception:
                    logger.warning("EWSJF: multiprocess Prometheus export failed; disabled", exc_info=True)
                    self.prometheus = None
        if now >= self.next_log:
            self.next_log = now + self.log_interval
            logger.info("%s", summary_line(stats, self._last_logged))
            self._last_logged = stats
        self.next_due = min(self.next_metrics, self.next_log)

    def _write(self, stats: dict[str, Any], now: float) -> None:
        assert self._path is not None
        doc = {"engine": self.engine_index, "pid": self.pid, "model_name": self.model_name, "time": now,
               "stats": stats}
        tmp = f"{self._path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, default=_json_default)
            os.replace(tmp, self._path)
            self.snapshots_written += 1
        except OSError:
            logger.warning("EWSJF: cannot write metrics snapshot %s; export disabled", self._path, exc_info=True)
            self.next_metrics = math.inf
            try:
                os.unlink(tmp)   # a write that failed half-way (a full disk) leaves no partial file behind
            except OSError:
                pass

    def close(self) -> None:
        if self._path:
            try:
                os.unlink(self._path)
            except OSError:
                pass


class PrometheusExporter:
    """The series of series.py as prometheus_client metrics of this (EngineCore) process."""

    def __init__(self, model_name: str, engine_index: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        from ewsjf.integrations.vllm.series import BASE_LABELS, SERIES

        registry = CollectorRegistry()  # private: in multiprocess mode values go to the shared directory anyway
        self.base = (model_name, str(engine_index))
        self.metrics: dict[str, Any] = {}
        for name, ser in SERIES.items():
            labels = list(BASE_LABELS + ser.labels)
            if ser.kind == "counter":
                self.metrics[name] = Counter(name, ser.doc, labels, registry=registry)
            else:
                self.metrics[name] = Gauge(name, ser.doc, labels, registry=registry,
                                           multiprocess_mode="livemostrecent")
        self.kinds = {name: ser.kind for name, ser in SERIES.items()}
        self.last: dict[tuple[str, tuple[str, ...]], float] = {}

    def export(self, stats: dict[str, Any]) -> None:
        from ewsjf.integrations.vllm.series import samples

        seen = set()
        for name, extra, value in samples(stats):
            key = (name, extra)
            seen.add(key)
            child = self.metrics[name].labels(*self.base, *extra)
            if self.kinds[name] == "counter":
                prev = self.last.get(key, 0.0)
                child.inc(value - prev if value >= prev else value)  # a reset (repartition) restarts the count
            else:
                child.set(value)
            self.last[key] = value
        for key in [k for k in self.last if k not in seen]:  # a queue that no longer exists
            name, extra = key
            if self.kinds[name] == "gauge":
                self.metrics[name].labels(*self.base, *extra).set(float("nan"))
            del self.last[key]


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _fmt_edge(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:.0f}"


def summary_line(stats: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """One log line: waiting, per-queue [lo, hi) depth/admitted since the last line, counters, cost model."""
    prev_adm = {}
    if previous:
        prev_adm = {q["id"]: q.get("admitted", 0) for q in previous.get("queues", [])}
    parts = []
    for q in stats.get("queues", []):
        tag = "b" if q.get("bubble") else ""
        adm = q.get("admitted", 0) - prev_adm.get(q["id"], 0)
        parts.append(f"{tag}[{_fmt_edge(q['lo'])},{_fmt_edge(q['hi'])}):{q['depth']}/+{max(adm, 0)}")
    cm = stats.get("cost_model", {})
    prev_promo = previous.get("starvation_promotions", 0) if previous else 0
    return (f"EWSJF: waiting={stats.get('waiting', 0)} resume_lane={stats.get('resume_lane_depth', 0)} "
            f"running={stats.get('running', '?')} queues(depth/+admitted)={' '.join(parts) or '-'} "
            f"last_queue={stats.get('last_source_queue', -1)} "
            f"starved=+{stats.get('starvation_promotions', 0) - prev_promo} "
            f"repartitions={stats.get('repartitions', 0)} steps={stats.get('steps', 0)} "
            f"C_prefill=({cm.get('c0', 0):.3g} + {cm.get('c1', 0):.3g}*b + {cm.get('c2', 0):.3g}*b^2)s "
            f"fit_steps={cm.get('steps', 0)}")
