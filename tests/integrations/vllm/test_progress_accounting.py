"""The starvation bound's admission progress counts each admission once, through vLLM's real scheduler.

vLLM pops a waiting request it cannot schedule this step (blocked: remote KV, grammar, ...) and prepends it
back at the end of the step; before the fix every such step counted its prefill as admitted work again, so
the progress ran ahead of the real admissions and every waiting request looked starved early.
"""

import pytest

from ewsjf.bench.virtual_vllm import VirtualVLLM

both = pytest.mark.parametrize("asy", [False, True], ids=["sync", "async"])


@both
def test_request_skipped_for_several_steps_counts_once(asy):
    v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy)
    prompts = {"short": 40, "blocked": 60, "long": 900}
    for rid, n in prompts.items():
        v.add_request(rid, prompt_tokens=n, output_tokens=3)
    s = v.scheduler
    real_handle = s._handle_blocked_waiting_request
    skipped = []

    def blocked_for_three_steps(request):
        if request.request_id == "blocked" and len(skipped) < 3:
            skipped.append(request.request_id)
            return False   # vLLM pops it and prepends it back at the end of the step
        return real_handle(request)

    s._handle_blocked_waiting_request = blocked_for_three_steps
    admitted = []
    for _ in range(50):
        if not v.has_unfinished():
            break
        admitted += v.step().new
    assert not v.has_unfinished()
    assert len(skipped) == 3 and sorted(admitted) == sorted(prompts)
    # Each request's prefill (no prefix-cache hits: distinct prompts) counted exactly once.
    assert s.ewsjf_queue.stats()["admitted_work"] == sum(prompts.values())


@both
def test_preempted_request_counts_again_when_it_resumes(asy):
    """A preemption is not a skip: the request was admitted in an earlier step, and its recompute is admitted
    work again when it resumes (documented in EWSJFQueue.end_pops)."""
    v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy)
    v.add_request("a", prompt_tokens=100, output_tokens=40)
    for _ in range(3):
        v.step()
    assert v.preempt("a") == "a"
    resumed_tokens = v.requests["a"].num_tokens
    while v.has_unfinished():
        v.step()
    # counted at its first admission, then again for its recompute (less any prefix-cache hit)
    assert 100 < v.scheduler.ewsjf_queue.stats()["admitted_work"] <= 100 + resumed_tokens


@both
def test_request_preempted_between_steps_right_after_its_admission_still_counts(asy):
    """vLLM's reset_prefix_cache(reset_running_requests=True) preempts the running requests between two steps. One
    admitted in the step just before was admitted all the same: its prepend is a preemption, not a skip, and must
    not retract its admission (it did: the step's pops were ended only at the next step's start)."""
    v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy)
    v.add_request("a", prompt_tokens=100, output_tokens=40)
    v.step()
    assert v.running_ids() == ["a"]
    assert v.scheduler.reset_prefix_cache(reset_running_requests=True)
    assert v.waiting_ids() == ["a"]
    while v.has_unfinished():
        v.step()
    assert v.scheduler.ewsjf_queue.stats()["admitted_work"] > 100   # its admission, then its recompute
