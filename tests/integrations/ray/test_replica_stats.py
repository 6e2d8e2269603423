"""Replica side: the EWSJF queue's stats become routing stats the router parses; snapshots are read back."""

import json
import os

import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.integrations.ray.replica import METRICS_DIR_ENV, RoutingStatsPublisher, stats_from_ewsjf
from ewsjf.integrations.ray.state import ReplicaStats

from .conftest import have


def _queue_stats():
    q = EWSJFQueue(EWSJFConfig(), clock=lambda: 10.0)
    for i, n in enumerate([20, 30, 25, 3000, 40]):
        q.add(f"r{i}", prompt_tokens=n, arrival_time=1.0)
    q.begin_step(10.0)
    s = q.stats()
    s["running"] = 3
    return s


def test_ewsjf_stats_become_parseable_routing_stats():
    s = _queue_stats()
    rs = stats_from_ewsjf(s, time=12.5)
    assert rs.running == 3 and rs.waiting == 5 and rs.time == 12.5
    assert sum(q.depth for q in rs.queues) == 5 and rs.queues[-1].hi == float("inf")
    back = ReplicaStats.from_dict(json.loads(json.dumps(rs.to_dict())))
    assert back == rs
    # a short request has less work ahead of it than a long one
    from ewsjf.integrations.ray.state import ReplicaView
    v = ReplicaView("a", 5, 3, back)
    assert v.tokens_ahead(25) < v.tokens_ahead(3000) == v.waiting_tokens()


def test_ongoing_bounds_a_stale_snapshot():
    s = _queue_stats()
    idle = stats_from_ewsjf(s, time=1.0, ongoing=0)
    assert idle.running == 0 and idle.waiting == 0 and idle.queued_tokens == 0
    some = stats_from_ewsjf(s, time=1.0, ongoing=4)
    assert some.waiting == 4 and some.running == 0


def test_publisher_reads_the_newest_live_snapshot(tmp_path, monkeypatch):
    monkeypatch.delenv(METRICS_DIR_ENV, raising=False)
    pub = RoutingStatsPublisher(str(tmp_path))
    assert os.environ[METRICS_DIR_ENV] == str(tmp_path)
    assert pub.record() == {}  # before the engine's first snapshot
    doc = {"engine": 0, "pid": os.getpid(), "model_name": "m", "time": 42.0, "stats": _queue_stats()}
    (tmp_path / f"engine-0-{os.getpid()}.json").write_text(json.dumps(doc, default=str))
    dead = dict(doc, pid=2 ** 22 + 12345, time=99.0)  # a dead engine's file is ignored
    (tmp_path / "engine-0-999999.json").write_text(json.dumps(dead, default=str))
    out = pub.record(ongoing=8)
    assert out["time"] == 42.0 and out["waiting"] == 5 and out["running"] == 3
    assert ReplicaStats.from_dict(out).waiting == 5 and pub.published == 1


@pytest.mark.skipif(not have("vllm"), reason="needs vLLM")
def test_vllm_scheduler_stats_report_unfinished_prefills_and_queues():
    """vLLM's real scheduler (virtual time) with EWSJF: its ewsjf_stats() parse as routing stats, with the
    running batch's unfinished chunked prefill counted."""
    from ewsjf.bench.virtual_vllm import VirtualVLLM

    v = VirtualVLLM("ewsjf", num_blocks=800, max_num_seqs=8, max_num_batched_tokens=512, max_model_len=4096)
    v.add_request("long", prompt_tokens=3000, output_tokens=2)
    for i in range(6):
        v.add_request(f"s{i}", prompt_tokens=40 + i, output_tokens=2)
    v.step()
    rs = ReplicaStats.from_dict(stats_from_ewsjf(v.scheduler.ewsjf_stats(), time=v.clock()).to_dict())
    assert rs.running >= 1
    assert 0 < rs.prefilling_tokens < 3000 + 6 * 46  # the long prompt is mid-prefill (512-token steps)
    assert rs.running + rs.waiting == 7 and rs.queues
