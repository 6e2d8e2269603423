"""Driver of the real Ray Serve test (run as a script by test_serve_vllm.py, in its own process group).

Ray on 127.0.0.1 (no dashboard, no HTTP proxy, a temp dir), two `VLLMReplica` replicas each running a real
vLLM CPU engine with EWSJFScheduler on a tiny dummy-weight Llama, behind EWSJFRequestRouter. Sends requests
of mixed lengths from a DeploymentHandle, prints one RESULT line (JSON) and shuts Ray down.
Usage: python serve_vllm_run.py MODEL_DIR TEMP_DIR N_REQUESTS POLICY
"""

import asyncio
import json
import random
import sys
import time


def router_of(handle):
    router = handle._router
    inner = getattr(router, "_asyncio_router", router)
    return inner.request_router


async def send_all(handle, n: int, rng: random.Random):
    lengths = [rng.choice((4, 9, 24, 60, 120, 300, 700, 1200)) + rng.randrange(8) for _ in range(n)]
    shared = [7 + (i % 500) for i in range(256)]  # a common prefix for a third of the requests

    async def one(i, n_tokens):
        await asyncio.sleep(rng.random() * 2.0)  # arrivals spread over two seconds
        ids = (shared + [11 + (i * 13 + k) % 800 for k in range(n_tokens)]) if i % 3 == 0 else \
            [11 + (i * 13 + k) % 800 for k in range(n_tokens)]
        t0 = time.time()
        out = await handle.generate.remote({"prompt_token_ids": ids, "max_tokens": 4 + i % 5, "ignore_eos": True})
        return {**out, "sent_tokens": len(ids), "want_output": 4 + i % 5, "latency_s": time.time() - t0}

    return await asyncio.gather(*(one(i, m) for i, m in enumerate(lengths)))


def main() -> None:
    model, temp_dir, n, policy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    import ray
    from ray import serve

    from ewsjf.integrations.ray import VLLMReplica, ewsjf_router_config

    ray.init(num_cpus=3, include_dashboard=False, _temp_dir=temp_dir, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1",
                                       "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
                                       "OMP_NUM_THREADS": "1"}})
    try:
        serve.start(proxy_location="Disabled")
        engine = dict(model=model, skip_tokenizer_init=True, load_format="dummy", dtype="float32",
                      max_model_len=2048, max_num_seqs=8, max_num_batched_tokens=512, enforce_eager=True)
        app = serve.deployment(VLLMReplica, name="llm").options(
            num_replicas=2, max_ongoing_requests=64, ray_actor_options={"num_cpus": 1},
            request_router_config=ewsjf_router_config(policy=policy, stats_period_s=0.2),
        ).bind(engine_kwargs=engine)
        t0 = time.time()
        handle = serve.run(app, name="ewsjf", route_prefix=None)
        started = time.time() - t0
        t1 = time.time()
        results = asyncio.run(send_all(handle, n, random.Random(0)))
        elapsed = time.time() - t1
        router = router_of(handle)
        deadline = time.time() + 10  # completions reach the router's loop just after the responses
        while sum(router.routing_summary()["ongoing"].values()) and time.time() < deadline:
            time.sleep(0.1)
        summary = router.routing_summary()
        print("RESULT " + json.dumps({"results": results, "router": summary, "startup_s": started,
                                      "elapsed_s": elapsed}), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
