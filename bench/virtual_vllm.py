"""A "virtual vLLM", the bench's vLLM engine: vLLM's real v1 Scheduler driven without a GPU, in virtual time.

What is real: vLLM's Scheduler (or any scheduler class: EWSJFScheduler, AsyncEWSJFScheduler, your own)
with its admission loop, token budget, chunked prefill, KV-cache manager, prefix cache, preemption and
output processing. What is fake: the model. A model folder holding only config.json (tiny Llama) is written
to a temp dir, the tokenizer is skipped, a KVCacheConfig is made by hand (num_blocks of block_size
tokens), and each step's ModelRunnerOutput is made up: one sampled token (id 1) for every request that is
not in the middle of a prefill. Requests finish on max_tokens (= the output length you give).

Time is virtual: `now` starts at `start_time` and advances by each step's duration, given to step() or
computed by `step_time(StepInfo)`. The scheduler's clock (EWSJF's begin_step/observe_step and arrival
times) reads `now`, so a replay is deterministic and runs as fast as vLLM's scheduler does.

    from ewsjf.bench.virtual_vllm import VirtualVLLM   # imports vLLM at the first VirtualVLLM(...)
    v = VirtualVLLM("ewsjf", num_blocks=2048, max_num_seqs=64)       # or "fcfs", or a class
    v.add_request("a", prompt_tokens=900, output_tokens=20)          # arrives now
    v.add_request("b", prompt_tokens=40, output_tokens=5, arrival_time=v.now)
    while v.has_unfinished():
        r = v.step()              # or v.step(duration=0.03)
    v.first_token_time["b"], v.finish_time["a"]

Trace replay: add each request when `now` reaches its arrival (advance_to(t) skips idle time), step while
anything is unfinished. `run(arrivals)` does exactly that for a list of Arrival.

Any other SchedulerConfig field (max_num_active_seqs, long_prefill_token_threshold_adaptive, ...) goes in
`scheduler_config={...}`; vLLM's own validation checks it, as `vllm serve` does. max_loras > 0 turns LoRA on
(vLLM's LoRAConfig; give requests a LoRARequest: the scheduler never loads it, so its path need not exist).

Async mode (async_scheduling=True): vLLM's AsyncScheduler protocol with two steps in flight, as vLLM's
engine runs it: each step() schedules one step and then processes the output of the oldest in-flight step
(so tokens are reported one call later). Pass scheduler="ewsjf" and it becomes AsyncEWSJFScheduler.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ewsjf.bench.tiny_llama import shared_tiny_llama

if TYPE_CHECKING:
    from vllm.v1.outputs import ModelRunnerOutput
    from vllm.v1.request import Request

# vLLM and huggingface_hub read these when they are first imported: `_vllm()` sets them (unless the user did)
# just before it imports vLLM, so importing this module changes no environment.
OFFLINE_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}


@functools.cache
def _vllm() -> SimpleNamespace:
    """The vLLM names the harness uses, imported on first use, with usage reporting off and the hub offline."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import torch
    from vllm.config import CacheConfig, LoRAConfig, ModelConfig, SchedulerConfig, VllmConfig
    from vllm.sampling_params import SamplingParams
    from vllm.utils.hashing import get_hash_fn_by_name
    from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
    from vllm.v1.core.sched.async_scheduler import AsyncScheduler
    from vllm.v1.core.sched.scheduler import Scheduler
    from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
    from vllm.v1.outputs import ModelRunnerOutput
    from vllm.v1.request import Request, RequestStatus
    from vllm.v1.structured_output import StructuredOutputManager

    from ewsjf.integrations.vllm.compat import held_waiting  # (vLLM 0.29/0.30: skipped_waiting)

    return SimpleNamespace(
        torch=torch, CacheConfig=CacheConfig, LoRAConfig=LoRAConfig, ModelConfig=ModelConfig,
        SchedulerConfig=SchedulerConfig,
        VllmConfig=VllmConfig, SamplingParams=SamplingParams, get_hash_fn_by_name=get_hash_fn_by_name,
        get_request_block_hasher=get_request_block_hasher, init_none_hash=init_none_hash,
        AsyncScheduler=AsyncScheduler, Scheduler=Scheduler, FullAttentionSpec=FullAttentionSpec,
        KVCacheConfig=KVCacheConfig, KVCacheGroupSpec=KVCacheGroupSpec, ModelRunnerOutput=ModelRunnerOutput,
        Request=Request, RequestStatus=RequestStatus, StructuredOutputManager=StructuredOutputManager,
        held_waiting=held_waiting)


@dataclass(frozen=True)
class Arrival:
    """One request of a trace: prompt and output lengths in tokens, arrival in virtual seconds."""

    request_id: str
    arrival_time: float
    prompt_tokens: int
    output_tokens: int
    priority: int = 0
    prefix_group: int | None = None
    """Requests of the same group share their first `prefix_tokens` tokens (prefix-cache hits)."""
    prefix_tokens: int = 0


@dataclass
class StepInfo:
    """What one scheduled step holds; step_time models read it."""

    prefill_tokens: int
    decode_tokens: int
    num_prefill_reqs: int
    num_decode_reqs: int
    kv_tokens: int
    """Context the step attends over: sum of (tokens before the chunk + chunk length) of scheduled requests."""
    prefill_attn_tokens2: float
    """Sum over prefill chunks of n * (start + (n + 1) / 2): the causal-attention work of the chunks."""
    chunks: list[tuple[str, int, int]]
    """(request id, start position, tokens) per scheduled request."""


@dataclass
class StepResult:
    """One step() call: the step it scheduled, and the outputs it processed (at `end`)."""

    index: int
    start: float
    end: float
    duration: float
    scheduled: dict[str, int]
    """Tokens per request in the step scheduled by this call."""
    new: list[str]
    """Requests admitted for the first time in this step, in admission order."""
    resumed: list[str]
    """Requests admitted again after a preemption."""
    preempted: list[str]
    info: StepInfo
    first_tokens: list[str] = field(default_factory=list)
    """Requests whose first output token came back in this call (time: end)."""
    finished: list[str] = field(default_factory=list)
    """Requests that finished in this call (time: end)."""


def default_step_time(info: StepInfo) -> float:
    """A plain linear GPU-step model: 5 ms + 60 us per prefill token + 150 us per decode request + KV reads."""
    if info.prefill_tokens == 0 and info.decode_tokens == 0:
        return 0.0
    return 0.005 + 6e-5 * info.prefill_tokens + 1.5e-4 * info.decode_tokens + 2e-8 * info.kv_tokens


SchedulerSpec = str | type


def resolve_scheduler_class(spec: SchedulerSpec, async_scheduling: bool) -> type:
    if isinstance(spec, type):
        return spec
    if spec in ("fcfs", "vllm", "priority"):
        v = _vllm()
        return v.AsyncScheduler if async_scheduling else v.Scheduler
    if spec == "ewsjf":
        from ewsjf.integrations.vllm.scheduler import AsyncEWSJFScheduler, EWSJFScheduler

        return AsyncEWSJFScheduler if async_scheduling else EWSJFScheduler
    _vllm()
    from vllm.utils.import_utils import resolve_obj_by_qualname

    return resolve_obj_by_qualname(spec)


class VirtualVLLM:
    """vLLM's real scheduler, a fake model, a virtual clock. See the module docstring."""

    def __init__(self, scheduler: SchedulerSpec = "fcfs", *, num_blocks: int = 4096, block_size: int = 16,
                 max_num_seqs: int = 256, max_num_batched_tokens: int = 8192, max_model_len: int = 32768,
                 enable_prefix_caching: bool = True, enable_chunked_prefill: bool = True,
                 long_prefill_token_threshold: int = 0, scheduler_reserve_full_isl: bool = True,
                 watermark: float = 0.0, async_scheduling: bool = False, policy: str | None = None,
                 start_time: float = 0.0, step_time: Callable[[StepInfo], float] | None = None,
                 scheduler_kwargs: dict[str, Any] | None = None, log_stats: bool = False,
                 model_dir: str | None = None, scheduler_config: dict[str, Any] | None = None,
                 max_loras: int = 0) -> None:
        v = _vllm()
        self.now = float(start_time)
        self.async_scheduling = bool(async_scheduling)
        self.step_time = step_time or default_step_time
        self.block_size = block_size
        self.model_dir = model_dir or shared_tiny_llama(max(max_model_len, 2048))
        policy = policy or ("priority" if scheduler == "priority" else "fcfs")
        model_config = v.ModelConfig(model=self.model_dir, skip_tokenizer_init=True, max_model_len=max_model_len,
                                   dtype="float32")
        cache_config = v.CacheConfig(block_size=block_size, enable_prefix_caching=enable_prefix_caching)
        scheduler_config = v.SchedulerConfig(
            max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, max_model_len=max_model_len,
            is_encoder_decoder=False, enable_chunked_prefill=enable_chunked_prefill, policy=policy,
            long_prefill_token_threshold=long_prefill_token_threshold, async_scheduling=self.async_scheduling,
            scheduler_reserve_full_isl=scheduler_reserve_full_isl, watermark=watermark, **(scheduler_config or {}))
        lora_config = v.LoRAConfig(max_loras=max_loras) if max_loras > 0 else None
        vllm_config = v.VllmConfig(model_config=model_config, cache_config=cache_config,
                                 scheduler_config=scheduler_config, lora_config=lora_config)
        # The platform hook may rewrite some fields; pin what the harness promises.
        vllm_config.scheduler_config.async_scheduling = self.async_scheduling
        vllm_config.cache_config.block_size = block_size
        vllm_config.cache_config.num_gpu_blocks = num_blocks
        self.vllm_config = vllm_config
        kv_cache_config = v.KVCacheConfig(
            num_blocks=num_blocks, kv_cache_tensors=[],
            kv_cache_groups=[v.KVCacheGroupSpec(["model.layers.0.self_attn.attn"], v.FullAttentionSpec(
                block_size=block_size, num_kv_heads=1, head_size=16, dtype=v.torch.float32))])
        cls = resolve_scheduler_class(scheduler, self.async_scheduling)
        kwargs = dict(scheduler_kwargs or {})
        if _accepts_clock(cls):
            kwargs.setdefault("clock", self.clock)
        self.scheduler = cls(vllm_config=vllm_config, kv_cache_config=kv_cache_config,
                             structured_output_manager=v.StructuredOutputManager(vllm_config),
                             block_size=block_size, log_stats=log_stats, **kwargs)
        hash_fn = v.get_hash_fn_by_name(vllm_config.cache_config.prefix_caching_hash_algo)
        v.init_none_hash(hash_fn)
        self._block_hasher = v.get_request_block_hasher(block_size, hash_fn) if enable_prefix_caching else None
        self._inflight: deque[tuple[Any, ModelRunnerOutput, float]] = deque()
        self._counter = 0
        self.steps = 0
        self.arrival_time: dict[str, float] = {}
        self.admit_time: dict[str, float] = {}
        self.first_token_time: dict[str, float] = {}
        self.finish_time: dict[str, float] = {}
        self.output_tokens: dict[str, int] = {}
        """Output tokens received per request."""
        self.aborted: set[str] = set()
        self.admission_order: list[str] = []
        """Request ids in the order they were first admitted (scheduled_new_reqs of each step)."""
        self.preemptions = 0

    # --- time ---
    def clock(self) -> float:
        return self.now

    def advance_to(self, t: float) -> None:
        """Let virtual time pass with nothing running (e.g. until the next arrival)."""
        if t > self.now:
            self.now = float(t)

    # --- requests ---
    def make_request(self, request_id: str, prompt_tokens: int | None = None, output_tokens: int = 1,
                     arrival_time: float | None = None, priority: int = 0,
                     prompt_token_ids: Sequence[int] | None = None, prefix_group: int | None = None,
                     prefix_tokens: int = 0) -> Request:
        if prompt_token_ids is None:
            if prompt_tokens is None or prompt_tokens < 1:
                raise ValueError("give prompt_tokens >= 1 or prompt_token_ids")
            self._counter += 1
            # A unique first token makes every block hash unique (no accidental prefix sharing); a prefix group
            # shares its first prefix_tokens tokens.
            shared = min(prefix_tokens, prompt_tokens) if prefix_group is not None else 0
            ids = [5_000_000 + prefix_group] * shared if shared else []  # type: ignore[operator]
            ids.append(10_000_000 + self._counter)
            ids.extend([3] * (prompt_tokens - len(ids)))
            prompt_token_ids = ids[:prompt_tokens]
        if output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
        params = _vllm().SamplingParams(max_tokens=int(output_tokens), ignore_eos=True, detokenize=False)
        return _vllm().Request(request_id, list(prompt_token_ids), params, None,
                       arrival_time=self.now if arrival_time is None else float(arrival_time),
                       priority=priority, block_hasher=self._block_hasher)

    def add_request(self, request_id: str, prompt_tokens: int | None = None, output_tokens: int = 1,
                    arrival_time: float | None = None, priority: int = 0,
                    prompt_token_ids: Sequence[int] | None = None, prefix_group: int | None = None,
                    prefix_tokens: int = 0) -> Request:
        """Hand a request to the scheduler now (arrival_time defaults to now; it may be earlier)."""
        request = self.make_request(request_id, prompt_tokens, output_tokens, arrival_time, priority,
                                    prompt_token_ids, prefix_group, prefix_tokens)
        self.arrival_time[request_id] = request.arrival_time
        self.scheduler.add_request(request)
        return request

    def abort(self, request_ids: str | Iterable[str]) -> list[str]:
        """Abort requests (as a client disconnect does); returns the ids that were still unfinished."""
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        done = self.scheduler.finish_requests(ids, _vllm().RequestStatus.FINISHED_ABORTED)
        gone = [r.request_id for r in done]
        self.aborted.update(gone)
        return gone

    def preempt(self, request_id: str | None = None) -> str | None:
        """Preempt a running request (default: the last one, vLLM's FCFS victim) as vLLM does when KV runs
        out, between steps (in async mode with a step in flight, as vLLM's own schedule() may; the in-flight
        output is then delivered as stale). Returns its id, or None if nothing runs."""
        sched = self.scheduler
        if not sched.running:
            return None
        if request_id is None:
            request = sched.running.pop()
        else:
            request = sched.requests[request_id]
            if request not in sched.running:
                return None
            sched.running.remove(request)
        sched._preempt_request(request, self.now)
        self.preemptions += 1
        return request.request_id

    # --- state ---
    @property
    def requests(self) -> dict[str, Request]:
        return self.scheduler.requests

    def has_unfinished(self) -> bool:
        return bool(self.scheduler.has_requests() or self._inflight)

    def waiting_ids(self) -> list[str]:
        """Waiting request ids in admission order (vLLM drains kv_holding_waiting first)."""
        s = self.scheduler
        return [r.request_id for r in _vllm().held_waiting(s)] + [r.request_id for r in s.waiting]

    def running_ids(self) -> list[str]:
        return [r.request_id for r in self.scheduler.running]

    # --- stepping ---
    def step(self, duration: float | None = None) -> StepResult:
        """Schedule one step, run it for `duration` (default: step_time(info)), process outputs."""
        sched = self.scheduler
        start = self.now
        output = sched.schedule()
        info = self._step_info(output)
        d = float(duration) if duration is not None else float(self.step_time(info))
        mro = self.fake_output(output)
        new = [r.req_id for r in output.scheduled_new_reqs]
        cached = output.scheduled_cached_reqs
        resumed = [rid for rid in cached.req_ids if rid in cached.resumed_req_ids]
        preempted = sorted(output.preempted_req_ids)
        self.preemptions += len(preempted)
        for rid in new:
            self.admit_time.setdefault(rid, start)
            self.admission_order.append(rid)
        result = StepResult(self.steps, start, start, d, dict(output.num_scheduled_tokens), new, resumed,
                            preempted, info)
        self.steps += 1
        self._inflight.append((output, mro, d))
        # Sync: run this step now. Async: keep two in flight, as vLLM's engine does; drain when idle.
        depth = 2 if self.async_scheduling else 1
        while self._inflight and (len(self._inflight) >= depth or output.total_num_scheduled_tokens == 0):
            so, mo, dur = self._inflight.popleft()
            self.now += dur
            self._process(sched.update_from_output(so, mo), result)
        result.end = self.now
        return result

    def run(self, arrivals: Iterable[Arrival], max_steps: int | None = None,
            on_step: Callable[[StepResult], None] | None = None) -> None:
        """Replay a trace: add each arrival when its time comes, step until everything finished."""
        pending = deque(sorted(arrivals, key=lambda a: a.arrival_time))
        steps = 0
        while pending or self.has_unfinished():
            while pending and pending[0].arrival_time <= self.now:
                a = pending.popleft()
                self.add_request(a.request_id, a.prompt_tokens, a.output_tokens, a.arrival_time, a.priority,
                                 prefix_group=a.prefix_group, prefix_tokens=a.prefix_tokens)
            if not self.has_unfinished():
                self.advance_to(pending[0].arrival_time)
                continue
            r = self.step()
            if r.duration == 0.0 and not r.scheduled and pending:
                self.advance_to(pending[0].arrival_time)  # nothing could run: wait for the next arrival
            if on_step is not None:
                on_step(r)
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break

    # --- internals ---
    def _step_info(self, output: Any) -> StepInfo:
        requests = self.scheduler.requests
        prefill = decode = n_pf = n_dec = kv = 0
        attn2 = 0.0
        chunks = []
        for rid, n in output.num_scheduled_tokens.items():
            req = requests[rid]
            start = req.num_computed_tokens - n
            chunks.append((rid, start, n))
            kv += start + n
            if start < req.num_tokens - 1:
                prefill += n
                n_pf += 1
                attn2 += n * (start + (n + 1) / 2)
            else:
                decode += n
                n_dec += 1
        return StepInfo(prefill, decode, n_pf, n_dec, kv, attn2, chunks)

    def fake_output(self, output: Any) -> ModelRunnerOutput:
        """The made-up ModelRunnerOutput for a SchedulerOutput: token id 1 for each request not mid-prefill."""
        requests = self.scheduler.requests
        ids = list(output.num_scheduled_tokens)
        sampled = [[] if requests[rid].is_prefill_chunk else [1] for rid in ids]
        return _vllm().ModelRunnerOutput(req_ids=ids, req_id_to_index={rid: i for i, rid in enumerate(ids)},
                                 sampled_token_ids=sampled)

    def _process(self, engine_outputs: dict, result: StepResult) -> None:
        now = self.now
        for eco in engine_outputs.values():
            for o in eco.outputs:
                rid = o.request_id
                if o.new_token_ids:
                    self.output_tokens[rid] = self.output_tokens.get(rid, 0) + len(o.new_token_ids)
                if o.new_token_ids and rid not in self.first_token_time:
                    self.first_token_time[rid] = now
                    result.first_tokens.append(rid)
                if o.finish_reason is not None and rid not in self.finish_time:
                    self.finish_time[rid] = now
                    result.finished.append(rid)


def _accepts_clock(cls: type) -> bool:
    from ewsjf.integrations.vllm.scheduler import EWSJFSchedulerMixin

    return issubclass(cls, EWSJFSchedulerMixin)
