"""Real Ray Serve: 2 replicas, each a vLLM CPU engine with EWSJFScheduler, behind EWSJFRequestRouter.

Deselected by default (minutes: Ray, then two vLLM engines importing torch on 2 cores); run with
`-m ray_serve`. The driver (serve_vllm_run.py) runs in its own process group, bounded in time; it binds
Ray to 127.0.0.1 with no dashboard and no HTTP proxy and shuts Ray down itself.
"""

import json
import os
import re
import shutil
import sys
import tempfile

import pytest

from .conftest import have
from tests.integrations.helpers import run_group

pytestmark = [pytest.mark.ray_serve, pytest.mark.slow,
              pytest.mark.skipif(not (have("ray.serve") and have("vllm")), reason="needs ray[serve] and vLLM")]

N_REQUESTS = 60
TIMEOUT_S = 900


def _run(tmp_path, policy):
    from ewsjf.bench.tiny_llama import write_tiny_llama

    model = write_tiny_llama(str(tmp_path / "model"), max_position_embeddings=4096)
    env = dict(os.environ, VLLM_HOST_IP="127.0.0.1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
               HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1", PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
    env.pop("EWSJF_METRICS_DIR", None)
    script = os.path.join(os.path.dirname(__file__), "serve_vllm_run.py")
    ray_dir = tempfile.mkdtemp(prefix="ewr-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    try:
        rc, out = run_group([sys.executable, script, model, ray_dir, str(N_REQUESTS), policy], TIMEOUT_S, env=env)
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert rc == 0, out[-6000:]
    return json.loads(re.search(r"^RESULT (.*)$", out, re.M).group(1))


def test_two_vllm_replicas_behind_the_ewsjf_router(tmp_path):
    doc = _run(tmp_path, "ewsjf")
    results, router = doc["results"], doc["router"]
    # every request completed once, with its own prompt and the asked output length
    assert len(results) == N_REQUESTS
    assert len({r["request_id"] for r in results}) == N_REQUESTS
    assert all(r["prompt_tokens"] == r["sent_tokens"] and r["output_tokens"] == r["want_output"]
               and r["finish_reason"] == "length" for r in results)
    # both replicas served, and the router's decisions match where the requests ran
    served = {}
    for r in results:
        served[r["replica"]] = served.get(r["replica"], 0) + 1
    assert len(served) == 2, served
    assert router["policy"] == "ewsjf" and router["decisions"] == served
    # replica stats reached the router (published by record_routing_stats, parsed without error)
    assert router["stats_updates"] > 0 and router["bad_stats"] == 0
    assert router["replica_stats_seen"] and all(s["queues"] for s in router["replica_stats_seen"].values())
    # nothing left in flight
    assert sum(router["ongoing"].values()) == 0
