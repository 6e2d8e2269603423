"""Policies and engines for `ewsjf bench`.

Engines
- `sim`: ewsjf_core.sim, the built-in engine (no vLLM needed).
- `vllm`: vLLM's real v1 Scheduler in virtual time through the harness `virtual_vllm.VirtualVLLM`
  (vLLM is imported only when asked for). Baseline policies run
  inside it by swapping the EWSJF scheduler's waiting queue for the baseline's (same adapter).
Both return a `SimResult`, so the metrics and reports are shared.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, SimResult, VirtualClock, Workload, simulate
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD
from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS

POLICY_NAMES = ("fcfs", "sjf", "oracle-sjf", "hrrn", "ewsjf", "ewsjf-tuned")
DEFAULT_POLICIES = ("fcfs", "sjf", "oracle-sjf", "hrrn", "ewsjf")
ENGINES = ("sim", "vllm")


def make_queue(policy: str, clock, ewsjf_config: EWSJFConfig | None = None, engine: EngineConfig | None = None):
    """A fresh waiting queue for `policy`, on `clock`; `ewsjf-tuned` replays its trials on `engine` (the one
    the queue runs on, its kv_blocks resolved: EngineConfig.with_kv_blocks)."""
    from ewsjf.bindings.baselines import POLICIES

    if policy in POLICIES:
        return POLICIES[policy](clock=clock)
    if policy == "ewsjf":
        from ewsjf.bindings import EWSJFQueue
        return EWSJFQueue(ewsjf_config, clock=clock)
    if policy == "ewsjf-tuned":
        from ewsjf.bindings.tuned_queue import bench_queue
        return bench_queue(clock, ewsjf_config, engine=engine)
    raise ValueError(f"unknown policy {policy!r}: use {', '.join(POLICY_NAMES)}")


def policy_engine(policy: str, engine: EngineConfig, ewsjf_head_share: float,
                  ewsjf_preemption_guard: bool = DEFAULT_PREEMPTION_GUARD) -> EngineConfig:
    """The engine `policy` runs on: EWSJF's vLLM scheduler keeps a share of the chunk budget for the waiting
    queue's next request while a prefill runs (VLLMOptions.waiting_head_share, EngineConfig.waiting_head_share);
    EWSJF's vLLM scheduler also keeps a watermark learned from preemptions (VLLMOptions.preemption_guard,
    EngineConfig.preemption_guard: ewsjf_preemption_guard); the baselines run on the engine as vLLM ships it
    (its own preemption_guard, off unless a caller turns it on for every policy)."""
    ewsjf = policy.startswith("ewsjf")
    share = ewsjf_head_share if ewsjf else 0.0
    guard = ewsjf_preemption_guard if ewsjf else engine.preemption_guard
    if share == engine.waiting_head_share and guard == engine.preemption_guard:
        return engine
    return dataclasses.replace(engine, waiting_head_share=share, preemption_guard=guard)


_WARMED: dict[str, float] = {}


def warm_up(policy: str, workload: Workload, step_model, engine: EngineConfig,
            ewsjf_config: EWSJFConfig | None = None) -> float:
    """Compile every jitted kernel `policy`'s queue uses before a timed replay, so that the replay's
    `sched us/step` is steady state. Returns the one-off seconds it took (0 if this process already did).

    ewsjf_core.warmup.compile_kernels() first, then an untimed replay of the workload's first requests:
    it reaches any kernel (or specialization) compile_kernels() misses, and the queue's Python paths.
    """
    if policy in _WARMED:
        return 0.0
    t0 = time.perf_counter()
    if policy.startswith("ewsjf"):
        from ewsjf_core.warmup import compile_kernels
        compile_kernels()
    head = workload.head(min(len(workload), 2500))   # enough arrivals for a repartition
    clock = VirtualClock()
    queue = make_queue(policy, clock, ewsjf_config, engine.with_kv_blocks(step_model))
    simulate(head, queue, step_model, engine, clock=clock, oracle_output=(policy == "oracle-sjf"), log_steps=False)
    _WARMED[policy] = time.perf_counter() - t0
    return _WARMED[policy]


def run_sim(workload: Workload, policy: str, step_model, engine: EngineConfig,
            ewsjf_config: EWSJFConfig | None = None, progress: Callable[[int, int], None] | None = None) -> SimResult:
    compile_s = warm_up(policy, workload, step_model, engine, ewsjf_config)
    clock = VirtualClock()
    queue = make_queue(policy, clock, ewsjf_config, engine.with_kv_blocks(step_model))
    # A tuned queue's trials run from the step hook (off the timed queue methods; in production they run in
    # another thread or process).
    res = simulate(workload, queue, step_model, engine, clock=clock, oracle_output=(policy == "oracle-sjf"),
                   on_step=getattr(queue, "on_sim_step", None), progress=progress)
    res.info["policy"] = policy
    res.info["engine"] = "sim"
    res.info["warmup_s"] = compile_s   # one-off compile (or cache load) + warm-up replay; not in the timings
    stats = getattr(queue, "stats", None)
    if stats is not None:
        try:
            res.info["queue_stats"] = _jsonable(stats())
        except Exception:  # stats are informative only
            pass
    return res


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return repr(x)


# ------------------------------------------------------------------------------------------------ vLLM
def vllm_available() -> bool:
    """Whether vLLM is installed (cheap: does not import it)."""
    import importlib.util
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def _baseline_scheduler_cls(policy: str):
    """The integration's EWSJF scheduler with its EWSJFQueue swapped for a baseline queue (same adapter)."""
    from ewsjf.bindings.baselines import POLICIES
    from ewsjf.integrations.vllm.request_queue import EWSJFRequestQueue
    from ewsjf.integrations.vllm.scheduler import EWSJFScheduler

    queue_cls = POLICIES[policy]

    class BaselineScheduler(EWSJFScheduler):
        auto_async = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            old = self.waiting
            self.ewsjf_queue = queue_cls(clock=self._ewsjf_clock)
            self.waiting = EWSJFRequestQueue(self.ewsjf_queue, old.cached_tokens_fn, old.predict_output)

    BaselineScheduler.__name__ = BaselineScheduler.__qualname__ = f"{queue_cls.__name__}Scheduler"
    return BaselineScheduler


def run_vllm(workload: Workload, policy: str, step_model, engine: EngineConfig,
             ewsjf_config: EWSJFConfig | None = None, progress: Callable[[int, int], None] | None = None,
             kv_blocks: int | None = None) -> SimResult:
    """Replay through vLLM's real v1 Scheduler (the VirtualVLLM harness)."""
    if not vllm_available():
        raise RuntimeError("engine 'vllm' needs vLLM: install it with scripts/setup.sh, or use --engine sim")
    from .virtual_vllm import VirtualVLLM
    wall0 = time.perf_counter()
    if kv_blocks is None:
        kv_blocks = engine.with_kv_blocks(step_model).kv_blocks
    st = step_model.step_time

    def step_time(i) -> float:
        kv_read = i.kv_tokens - i.prefill_tokens - i.decode_tokens
        return st(i.prefill_tokens, i.prefill_attn_tokens2, i.decode_tokens, max(kv_read, 0), i.num_prefill_reqs)

    kwargs: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if policy != "fcfs":   # vLLM's own scheduler below: no share, no guard (policy_engine gives FCFS none)
        options["waiting_head_share"] = engine.waiting_head_share
        options["preemption_guard"] = engine.preemption_guard
    elif engine.waiting_head_share or engine.preemption_guard:
        raise ValueError("the vllm engine runs fcfs on vLLM's own scheduler: waiting_head_share must be 0 and "
                         "preemption_guard off")
    if policy == "oracle-sjf":
        options["output_prediction"] = "max_tokens"
    if policy == "fcfs":
        sched: Any = "fcfs"
    elif policy == "ewsjf":
        sched = "ewsjf"
        kwargs["ewsjf_config"] = ewsjf_config or EWSJFConfig()
    elif policy in ("sjf", "oracle-sjf", "hrrn"):
        sched = _baseline_scheduler_cls(policy)
    else:
        raise ValueError(f"policy {policy!r} is not supported on the vllm engine")
    if options:
        kwargs["ewsjf_options"] = options
    if engine.max_model_len is not None:
        max_len = engine.max_model_len
    else:   # no limit: large enough for every request
        max_len = max(int(workload.prompt_tokens.max() + workload.output_tokens.max()) + 16, engine.token_budget)
    v = VirtualVLLM(
        scheduler=sched, num_blocks=int(kv_blocks), block_size=engine.block_size,
        max_num_seqs=engine.max_running, max_num_batched_tokens=engine.token_budget,
        max_model_len=max_len, enable_prefix_caching=engine.prefix_caching,
        enable_chunked_prefill=engine.chunked_prefill, step_time=step_time, scheduler_kwargs=kwargs or None,
        scheduler_reserve_full_isl=engine.reserve_full_sequence, watermark=engine.kv_watermark,
        # The simulator serves priorities as classes: vLLM does under its priority policy (fcfs ignores them).
        policy="priority" if workload.priority.any() else None)
    n = len(workload)
    pb = workload.prefix_blocks if engine.prefix_caching else None
    log, preempt, too_long, cached = _replay(v, workload, pb, max_len, progress)

    def arr(d: dict) -> np.ndarray:
        return np.array([d.get(str(i), math.nan) for i in range(n)], dtype=float)

    aborted = {str(x) for x in (getattr(v, "aborted", ()) or ())}
    logs = {k: np.array(val) for k, val in log.items()}
    busy = float(logs["duration_s"].sum()) if len(logs["duration_s"]) else 0.0
    stats = {}
    try:
        stats = _jsonable(v.scheduler.ewsjf_stats())
    except Exception:
        pass
    return SimResult(
        workload=workload, first_token_s=arr(v.first_token_time), finish_s=arr(v.finish_time),
        first_scheduled_s=arr(v.admit_time), preemptions=preempt, cached_tokens=cached,
        rejected=np.array([str(i) in aborted for i in range(n)]) | too_long, steps=len(logs["start_s"]),
        scheduler_cpu_s=0.0, sim_end_s=float(v.now), busy_s=busy, wall_s=time.perf_counter() - wall0,
        step_log=logs, step_model=step_model,
        info={"engine": "vllm", "policy": policy, "kv_blocks": int(kv_blocks), "block_size": engine.block_size,
              "token_budget": engine.token_budget, "max_running": engine.max_running,
              "queue_stats": stats, "scheduler_cpu_note": "not measured on the vllm engine"})


class _PromptTokens:
    """Token ids for prompts named by prefix ids (Mooncake `hash_ids`), so that vLLM's chained block hashes see
    what the sim's prefix cache sees: block k of id h is PREFIX_BLOCK_TOKENS copies of one token for h, so
    equal leading ids give equal prefixes. Ids are numbered densely as they come (any two distinct ids get
    distinct tokens, however large); tokens past a prompt's ids are the request's own (the sim caches no
    block its ids do not name, so no other request may hit them)."""

    _ID_BASE = 1_000_000
    _OWN_BASE = 2_000_000_000

    def __init__(self) -> None:
        self._token_of: dict[int, int] = {}

    def __call__(self, prefix_ids: np.ndarray | None, prompt_tokens: int, request: int) -> list[int] | None:
        if prefix_ids is None or not len(prefix_ids):
            return None
        token_of = self._token_of
        ids: list[int] = []
        for h in prefix_ids.tolist():
            token = token_of.setdefault(h, self._ID_BASE + len(token_of))
            ids.extend([token] * PREFIX_BLOCK_TOKENS)
        del ids[prompt_tokens:]
        if len(ids) < prompt_tokens:
            ids.extend([self._OWN_BASE + request] * (prompt_tokens - len(ids)))
        return ids


def _replay(v, workload: Workload, pb, max_len: int,
            progress) -> tuple[dict[str, list], np.ndarray, np.ndarray, np.ndarray]:
    """The replay loop of VirtualVLLM.run, with explicit token ids and per-request bookkeeping:
    (step log, preemptions per request, rejected for length per request, prefix-cache hit in tokens at the
    first admission per request)."""
    n = len(workload)
    A = workload.arrival_s.tolist()
    P = workload.prompt_tokens.tolist()
    O = workload.output_tokens.tolist()
    PR = workload.priority.tolist()
    log: dict[str, list] = {k: [] for k in ("start_s", "duration_s", "prefill_tokens", "decode_tokens", "running",
                                            "waiting", "emitted")}
    preempt = np.zeros(n, np.int64)
    too_long = np.zeros(n, bool)
    cached = np.zeros(n, np.int64)
    done = 0
    sched_waiting = getattr(v.scheduler, "waiting", None)
    tokens = _PromptTokens()
    nxt = 0
    while nxt < n or v.has_unfinished():
        while nxt < n and A[nxt] <= v.now:
            if P[nxt] >= max_len:   # vLLM's input processor rejects it on arrival
                too_long[nxt] = True
            else:
                v.add_request(str(nxt), P[nxt], O[nxt], A[nxt], PR[nxt],
                              prompt_token_ids=tokens(pb[nxt] if pb is not None else None, P[nxt], nxt))
            nxt += 1
        if not v.has_unfinished():
            if nxt < n:
                v.advance_to(A[nxt])
            continue
        r = v.step()
        if r.duration == 0.0 and not r.scheduled and nxt < n:
            v.advance_to(A[nxt])
        log["start_s"].append(r.start)
        log["duration_s"].append(r.duration)
        log["prefill_tokens"].append(r.info.prefill_tokens)
        log["decode_tokens"].append(r.info.decode_tokens)
        log["running"].append(len(r.scheduled))
        log["waiting"].append(len(sched_waiting) if sched_waiting is not None else 0)
        log["emitted"].append(len(r.first_tokens) + r.info.decode_tokens)
        for rid in r.preempted:
            preempt[int(rid)] += 1
        if r.new:   # a new request's first chunk starts after its prefix-cache hit
            new = set(r.new)
            for rid, start, _ in r.info.chunks:
                if rid in new:
                    cached[int(rid)] = start
        done += len(r.finished)
        if progress is not None and len(log["start_s"]) % 2000 == 0:
            progress(done, n)
    if progress is not None:
        progress(done, n)
    return log, preempt, too_long, cached


def run(engine_name: str, workload: Workload, policy: str, step_model, engine: EngineConfig,
        ewsjf_config: EWSJFConfig | None = None, progress=None) -> SimResult:
    if engine_name == "sim":
        return run_sim(workload, policy, step_model, engine, ewsjf_config, progress)
    if engine_name == "vllm":
        return run_vllm(workload, policy, step_model, engine, ewsjf_config, progress)
    raise ValueError(f"unknown engine {engine_name!r}: use {', '.join(ENGINES)}")
