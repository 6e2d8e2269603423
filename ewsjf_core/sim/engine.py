"""`sim`: a fast continuous-batching engine in virtual time, modelled on vLLM v1's scheduler.

The pieces, one file each:
- `config.py`: `EngineConfig` (vLLM's engine arguments) and `VirtualClock`.
- `block_manager.py`: the KV cache in block counts: allocation, prefix cache, eviction.
- `running.py`: the running requests (prefills in admission order, decoders in aggregate).
- `step_builder.py`: which requests get tokens each step: budget, chunked prefill, preemption, admission.
- `sim_engine.py`: `SimEngine`, one steppable engine: submit requests, step, query its live state.
- here: `simulate()`, the single-engine replay loop, and its `SimResult`.

Each step at virtual time `now`: requests whose arrival time is <= now are submitted to the waiting queue
(`queue.add`, with the prefix-cache hit known at arrival as `cached_tokens`; with `oracle_output=True`
the true output length is passed as `predicted_output_tokens`); with nothing running and nothing waiting,
time jumps to the next arrival. Then `queue.begin_step(now)`, the step is built (see step_builder.py),
its duration comes from the step-time model, the clock advances by it, requests that finished their
prefill emit their first token at the step's end time, decoders emit one token each, requests reaching
their output length finish and free their blocks, and `queue.observe_step(duration, prefill_tokens,
decode_tokens, at_running_cap)` reports the step (at_running_cap: requests still wait with the running set at
max_running).

Requests whose prompt plus output can never fit in the whole KV cache are rejected at admission
(`SimResult.rejected`), as vLLM rejects prompts beyond its capacity; `rejection_reasons()` says which
requests an engine rejects, and why, before any replay.

`SimResult.scheduler_cpu_s` is the wall time (single thread, so CPU time) spent inside the queue's methods.
Optional host callbacks: if the queue has `on_first_token(request_id, t)` and/or
`on_finish(request_id, output_tokens, t)`, they are called when a request emits its first token and when it
finishes (virtual time t); their time counts as scheduler time too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .config import EngineConfig, VirtualClock
from .request_table import RequestTable
from .sim_engine import SimEngine
from .workload import Workload

__all__ = ["EngineConfig", "SimEngine", "SimResult", "VirtualClock", "rejection_reasons", "simulate"]


@dataclass
class SimResult:
    """Per-request arrays aligned with `workload` (NaN where a request never got there), plus totals."""

    workload: Workload
    first_token_s: np.ndarray
    finish_s: np.ndarray
    first_scheduled_s: np.ndarray
    """Virtual time the request was first admitted (queue wait = this - arrival)."""
    preemptions: np.ndarray
    cached_tokens: np.ndarray
    """Prefix-cache hit (tokens) at the request's first admission."""
    rejected: np.ndarray
    steps: int
    scheduler_cpu_s: float
    sim_end_s: float
    busy_s: float
    """Virtual time spent in steps (the GPU busy time)."""
    wall_s: float
    """Real seconds the simulation took."""
    step_log: dict[str, np.ndarray] = field(default_factory=dict)
    """Per step: start_s, duration_s, prefill_tokens, decode_tokens, running, waiting, emitted (tokens)."""
    info: dict[str, Any] = field(default_factory=dict)
    step_model: Any = None
    """The step-time model used (for isolated latencies in metrics)."""

    @property
    def completed(self) -> np.ndarray:
        return ~np.isnan(self.finish_s)


def simulate(workload: Workload, queue, step_time, config: EngineConfig = EngineConfig(), *,
             clock: VirtualClock | None = None, oracle_output: bool = False,
             on_step: Callable[[int, float, float, int, int], None] | None = None,
             progress: Callable[[int, int], None] | None = None, progress_every: int = 2000,
             max_steps: int | None = None, log_steps: bool = True) -> SimResult:
    """Replay `workload` through one `SimEngine` with `queue` deciding admission order.

    queue: a fresh WaitingQueue (duck-typed: add, prepend, peek, pop, begin_step, observe_step). Its clock
        should be `clock`; if `clock` is None the queue's clock is used when it is a VirtualClock, else a new
        VirtualClock is made and assigned to `queue.clock`.
    step_time: an object with step_time(prefill_tokens, prefill_attn_tokens2, decode_tokens, kv_tokens_read,
        prefill_seqs) -> seconds (e.g. RooflineStepTime), and optionally kv_blocks(block_size, utilization).
    on_step(step, start_s, duration_s, prefill_tokens, decode_tokens): called after every step.
    progress(finished_or_rejected, total): called every `progress_every` steps and at the end.
    max_steps: stop early after this many steps (unfinished requests keep NaN times).
    """
    for name, v, none_ok in (("progress_every", progress_every, False), ("max_steps", max_steps, True)):
        if not (v is None and none_ok) and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"simulate: {name} must be an integer >= 1{' or None' if none_ok else ''}, got {v!r}")
    wall0 = time.perf_counter()
    eng = SimEngine(workload, queue, step_time, config, clock=clock, oracle_output=oracle_output,
                    log_steps=log_steps)
    arr = eng.requests.arrival
    n = len(arr)
    nxt = 0
    submit, step, has_work = eng.submit, eng.step, eng.has_work
    while eng.done < n:
        now = eng.now
        while nxt < n and arr[nxt] <= now:
            submit(nxt)
            nxt += 1
        if not step():
            if not has_work():   # idle (or all rejected): jump to the next arrival
                if nxt < n:
                    eng.advance_to(arr[nxt])
                continue
            # Nothing fits (only possible with a queue that refuses to hand out work): wait for an arrival.
            if nxt < n:
                eng.advance_to(arr[nxt])
                continue
            raise RuntimeError("sim: waiting requests can never be scheduled (KV cache or budget too small)")
        if on_step is not None:
            on_step(eng.steps - 1, *eng.last_step)
        if progress is not None and eng.steps % progress_every == 0:
            progress(eng.done, n)
        if max_steps is not None and eng.steps >= max_steps:
            break
    if progress is not None:
        progress(eng.done, n)
    return result_of(eng, workload, time.perf_counter() - wall0)


def rejection_reasons(workload: Workload, config: EngineConfig, kv_blocks: int | None) -> list[str]:
    """Why the engine rejects each request of `workload` ("" for one it serves), from the lengths alone:
    "context": its prompt reaches max_model_len; "kv": its prompt plus output (stopped at the context length)
    needs more KV blocks than `kv_blocks` (the resolved cache: EngineConfig.with_kv_blocks; None: unlimited)
    less the null block; "budget": without chunked prefill, more tokens than token_budget."""
    table = RequestTable(workload, False, config.max_model_len)
    max_len = config.max_model_len or float("inf")
    usable = kv_blocks - 1 if kv_blocks is not None else float("inf")
    bs, budget, chunked = config.block_size, config.token_budget, config.chunked_prefill
    return ["context" if p >= max_len else "kv" if -(-(p + o) // bs) > usable
            else "budget" if not chunked and p + o > budget else "" for p, o in zip(table.prompt, table.output)]


def result_of(eng: SimEngine, workload: Workload, wall_s: float) -> SimResult:
    """The engine's per-request records and totals as a SimResult."""
    req = eng.requests
    return SimResult(
        workload=workload, first_token_s=np.array(req.first_token), finish_s=np.array(req.finish),
        first_scheduled_s=np.array(req.first_scheduled), preemptions=np.array(req.preemptions, dtype=np.int64),
        cached_tokens=np.array(req.cached_at_admit, dtype=np.int64), rejected=np.array(req.rejected),
        steps=eng.steps, scheduler_cpu_s=eng.scheduler_cpu_s, sim_end_s=eng.now, busy_s=eng.busy_s,
        wall_s=wall_s, step_log=eng.step_log(), step_model=eng.step_model, info=eng.info())
