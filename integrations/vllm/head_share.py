"""A share of the chunk budget for the waiting queue's next request while a prefill runs
(VLLMOptions.waiting_head_share).

vLLM schedules the running requests first: a long prompt in chunked prefill takes the whole remaining token
budget every step until its prefill is done, and a short request that arrived meanwhile waits those steps
although the next one in the admission order needs only a few hundred tokens. In the workload suite that
is most of the short class's TTFT where long prefills are common (mooncake: 53-68%; bench/SUITE_PASSES.md, fourth
pass). vLLM has the mechanism, `long_prefill_token_threshold` (a per-request chunk cap, applied when more than one
request is eligible); the scheduler sets it for one step, to the budget left after the decodes less the head's uncached
tokens (shared out when several prefills run: all their capped chunks must leave the head its tokens; no cap
when that is less than the head's tokens, which it caps too), when some running request is still in prefill
and the request at the head of the waiting order needs at most `share` of the token budget, fits the KV blocks
the running requests leave free in this step (less vLLM's watermark) and a running slot (a streaming session
waiting for input holds one), and vLLM would admit it this step at all (not while the engine is paused, nor while
the head waits for its grammar or, preempted, for its in-flight output, nor while the running requests' LoRAs fill
max_loras and the head's is another). The running prefills then leave the room the head uses (and less than a
token each more), so the batch stays full. A cap the user set stays in force (the smaller one wins).
ewsjf_core.sim's StepBuilder does the same (EngineConfig.waiting_head_share).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from vllm.v1.request import RequestStatus

from ewsjf.integrations.vllm.compat import active_requests, admits_new, running_cap
from ewsjf_core.sim.step_builder import head_room_chunk_cap


def head_cap(scheduler: Any, share: float, cached_tokens) -> int:
    """This step's chunk cap for the running prefills (0: none). cached_tokens(request) -> prefix-cache hit,
    or None (no lookup). Cheapest tests first: most steps have no running prefill or a long head."""
    running = scheduler.running
    waiting = scheduler.waiting
    if not waiting or active_requests(scheduler) >= running_cap(scheduler):
        return 0
    prefilling = sum(1 for r in running if r.is_prefill_chunk)
    if not prefilling:
        return 0
    if not admits_new(scheduler):
        return 0
    head = waiting.peek_request()
    if not _admissible(head) or _lora_slots_full(scheduler, head):
        return 0
    total = scheduler.max_num_scheduled_tokens
    limit = share * total
    need = head.num_tokens
    hit = 0
    if need > limit and cached_tokens is not None:   # a long prompt may still be short once its cached prefix is off
        hit = cached_tokens(head)
        need -= hit
    budget = total - (len(running) - prefilling)   # after one token per decoding request
    if need > limit or need >= budget:
        return 0
    # Every running prefill's capped chunk must fit beside the head, not just the first one's; the cap applies to
    # the head's own chunk too, so a cap below its tokens would not get it in either.
    cap = head_room_chunk_cap([r.num_tokens - r.num_computed_tokens for r in running if r.is_prefill_chunk],
                              budget - need)
    if cap <= 0 or cap < need:
        return 0
    block = scheduler.cache_config.block_size
    kvm = scheduler.kv_cache_manager
    user = scheduler.scheduler_config.long_prefill_token_threshold
    chunk = min(cap, user) if user > 0 else cap   # the running prefills' chunk, as chunk_cap sets it
    # vLLM admits a waiting request only if it leaves the watermark's blocks free (SchedulerConfig.watermark),
    # and only after the running requests took their blocks for this step: at most one per decoding request and
    # chunk // block + 1 per prefill, counted exactly only where that bound leaves the head short.
    free = kvm.block_pool.get_num_free_blocks() - getattr(kvm, "watermark_blocks", 0)
    head_blocks = -(-head.num_tokens // block) - hit // block
    most = len(running) - prefilling + prefilling * (chunk // block + 1)
    if head_blocks + most > free and head_blocks + _running_blocks(running, chunk, total, block) > free:
        return 0   # it would not be admitted this step: the running prefills keep the budget
    return cap


def _admissible(request: Any) -> bool:
    """Whether vLLM admits `request` when it reaches it: not one that waits for its grammar (compiling, or failed),
    remote KV, more streaming input or its in-flight output; vLLM skips those this step."""
    if getattr(request, "num_stale_output_tokens", 0) and not request.drop_stale_output:
        return False   # preempted with output still in flight (async): vLLM resumes it once that output is in
    status = request.status
    if status in (RequestStatus.WAITING, RequestStatus.PREEMPTED):
        return True
    if status == RequestStatus.WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR:   # compiled: vLLM promotes it to WAITING
        structured = request.structured_output_request
        grammar = structured.grammar if structured is not None else None
        return grammar is not None and not isinstance(grammar, Exception)
    return False


def _lora_slots_full(scheduler: Any, request: Any) -> bool:
    """Whether vLLM's max_loras keeps `request` out this step: the running requests' LoRAs (which vLLM schedules
    first) take every slot, and its own is not among them; vLLM skips it then."""
    lora_config = getattr(scheduler, "lora_config", None)
    lora = request.lora_request
    if not lora_config or not lora:
        return False
    in_use = {r.lora_request.lora_int_id for r in scheduler.running
              if r.lora_request and r.lora_request.lora_int_id > 0}
    return len(in_use) >= lora_config.max_loras and lora.lora_int_id not in in_use


def _running_blocks(running, cap: int, budget: int, block: int) -> int:
    """KV blocks the running requests allocate this step, in vLLM's order: a token for each decoding request,
    a chunk of at most `cap` tokens of the budget left for each prefill."""
    blocks = 0
    for r in running:
        if budget <= 0:
            break
        done = r.num_computed_tokens
        tokens = min(r.num_tokens - done, cap, budget) if r.is_prefill_chunk else 1
        blocks += -(-(done + tokens) // block) - -(-done // block)   # blocks held after the step less before
        budget -= tokens
    return blocks


@contextmanager
def chunk_cap(scheduler: Any, cap: int) -> Iterator[None]:
    """vLLM's long_prefill_token_threshold set to `cap` (or the user's, if smaller) for one schedule() call."""
    cfg = scheduler.scheduler_config
    old = cfg.long_prefill_token_threshold
    cfg.long_prefill_token_threshold = cap if old <= 0 else min(old, cap)
    try:
        yield
    finally:
        cfg.long_prefill_token_threshold = old
