"""End to end on CPU: vllm.LLM and `vllm serve` with the EWSJF scheduler class and a tiny dummy-weight Llama.

Each runs in its own process group (vLLM starts engine and worker processes) and is bounded in time.
"""

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from ewsjf.bench.tiny_llama import write_tiny_llama
from tests.integrations.helpers import run_group

pytestmark = pytest.mark.slow

ENV = dict(os.environ, VLLM_HOST_IP="127.0.0.1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1",
           VLLM_CPU_KVCACHE_SPACE="1", PYTHONUNBUFFERED="1")
ENV.pop("EWSJF_CONFIG", None)
ENV.pop("EWSJF_METRICS_DIR", None)
LENGTHS = (3, 700, 20, 1500, 64, 9, 300, 1)


def test_llm_generates_with_ewsjf_scheduler(tmp_path):
    # In one process (engine core and worker in the caller's): each vLLM process start re-imports torch and vLLM
    # (~15 s each here), and `vllm serve` below already runs the scheduler in its own engine-core process.
    model = write_tiny_llama(str(tmp_path), max_position_embeddings=4096)
    script = tmp_path / "gen.py"
    script.write_text(textwrap.dedent(f"""
        import json
        from vllm import LLM, SamplingParams

        def main():
            llm = LLM(model={model!r}, skip_tokenizer_init=True, load_format="dummy", dtype="float32",
                      max_model_len=2048, max_num_seqs=4, max_num_batched_tokens=1024, enforce_eager=True,
                      distributed_executor_backend="uni", scheduler_cls="ewsjf.integrations.vllm.EWSJFScheduler")
            prompts = [{{"prompt_token_ids": [5 + (i * 7 + n) % 900 for i in range(n)]}} for n in {LENGTHS!r}]
            outs = llm.generate(prompts, SamplingParams(max_tokens=6, ignore_eos=True, detokenize=False))
            print("RESULT " + json.dumps([[o.request_id, len(o.prompt_token_ids), len(o.outputs[0].token_ids),
                                           o.outputs[0].finish_reason] for o in outs]))

        if __name__ == "__main__":
            main()
    """))
    rc, out = run_group([sys.executable, str(script)], timeout=300, env=dict(ENV, VLLM_ENABLE_V1_MULTIPROCESSING="0"),
                        cwd=str(tmp_path))
    assert rc == 0, out[-4000:]
    assert "EWSJF scheduler EWSJFScheduler active" in out
    result = json.loads(re.search(r"^RESULT (.*)$", out, re.M).group(1))
    assert [r[1] for r in result] == list(LENGTHS)
    assert all(r[2] == 6 and r[3] == "length" for r in result)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vllm_cli_works() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm")
        return True
    except PackageNotFoundError:
        return False


def _http(url, payload=None, timeout=60):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode()


def test_vllm_serve_with_scheduler_cls_and_metrics(tmp_path):
    model = write_tiny_llama(str(tmp_path / "model"), max_position_embeddings=4096)
    cfg = tmp_path / "ewsjf.yaml"
    cfg.write_text("max_wait: 30\nvllm:\n  metrics_interval_s: 0.1\n  log_interval_s: 1\n")
    port = _free_port()
    # The CUDA build's console script is `vllm`; the CPU build's needs the launcher (same CLI, see serve.py).
    head = ([os.path.join(os.path.dirname(sys.executable), "vllm"), "serve"] if _vllm_cli_works()
            else [sys.executable, "-m", "ewsjf.integrations.vllm.serve"])
    cmd = head + [model, "--host", "127.0.0.1", "--port", str(port), "--skip-tokenizer-init",
                  "--load-format", "dummy", "--dtype", "float32", "--max-model-len", "2048", "--max-num-seqs", "4",
                  "--max-num-batched-tokens", "1024", "--enforce-eager",
                  "--scheduler-cls", "ewsjf.integrations.vllm.EWSJFScheduler"]
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(ENV, EWSJF_CONFIG=str(cfg)), cwd=str(tmp_path))
    base = f"http://127.0.0.1:{port}"

    def tail() -> str:
        log.flush()
        log.seek(0)
        return log.read()[-5000:]

    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"server exited ({proc.returncode}):\n{tail()}"
            try:
                if _http(base + "/health", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, f"server not healthy in 240 s:\n{tail()}"
            time.sleep(1)

        def complete(i: int):
            n = LENGTHS[i % len(LENGTHS)]
            status, body = _http(base + "/v1/completions", {
                "model": model, "prompt": [5 + (j * 3 + i) % 900 for j in range(n)], "max_tokens": 4,
                "ignore_eos": True}, timeout=120)
            return status, json.loads(body)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(complete, range(16)))
        assert all(status == 200 for status, _ in results)
        assert all(body["usage"]["completion_tokens"] == 4 for _, body in results)
        assert sorted(body["usage"]["prompt_tokens"] for _, body in results) == \
            sorted(LENGTHS[i % len(LENGTHS)] for i in range(16))

        time.sleep(0.3)
        complete(99)  # one more step after the burst: its snapshot counts every admission above
        status, metrics = _http(base + "/metrics")
        assert status == 200
        for name in ("vllm:ewsjf_waiting_requests", "vllm:ewsjf_queue_depth", "vllm:ewsjf_queue_lower_bound_tokens",
                     "vllm:ewsjf_queue_upper_bound_tokens", "vllm:ewsjf_queue_admitted_total",
                     "vllm:ewsjf_last_chosen_queue", "vllm:ewsjf_starvation_promotions_total",
                     "vllm:ewsjf_repartitions_total", "vllm:ewsjf_param", "vllm:ewsjf_prefill_cost_coefficient"):
            assert name in metrics, name
        assert re.search(r'^vllm:ewsjf_param\{.*name="max_wait".*\} 30\.0$', metrics, re.M), "config file not applied"
        admitted = sum(float(m.group(1)) for m in
                       re.finditer(r"^vllm:ewsjf_queue_admitted_total\{.*\} (\S+)$", metrics, re.M))
        assert admitted >= 16
        assert "vllm:num_requests_running" in metrics  # vLLM's own series are still there
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()
    text = open(tmp_path / "serve.log").read()
    assert "EWSJF scheduler EWSJFScheduler active" in text and "max_wait=30s" in text
    assert "EWSJF: waiting=" in text  # the low-rate log summary (log_interval_s: 1 in the config file)
