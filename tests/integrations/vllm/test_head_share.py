"""The share of the chunk budget for the waiting queue's next request (VLLMOptions.waiting_head_share), through
vLLM's real scheduler: a short request that arrives while a long prompt is in chunked prefill is scheduled in
the next step instead of after the long prefill, the batch stays full, and vLLM's own setting is restored."""

import pytest

from ewsjf.bench.virtual_vllm import VirtualVLLM
from ewsjf.integrations.vllm.config import VLLMOptions

both = pytest.mark.parametrize("asy", [False, True], ids=["sync", "async"])


def _run(share, asy, threshold=0):
    v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy,
                    long_prefill_token_threshold=threshold,
                    scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
    v.add_request("long", prompt_tokens=10_000, output_tokens=3)
    v.step()
    v.add_request("short", prompt_tokens=100, output_tokens=3)
    while v.has_unfinished():
        v.step()
    return v


@both
def test_short_request_gets_room_beside_a_long_prefill(asy):
    off, on = _run(0.0, asy), _run(0.25, asy)
    assert off.first_token_time["short"] >= off.first_token_time["long"]       # vLLM: after the long prefill
    assert on.first_token_time["short"] < 0.5 * on.first_token_time["long"]    # with the share: right away
    # The long prefill only gave up the short request's tokens: its first token comes about as late as before.
    assert on.first_token_time["long"] == pytest.approx(off.first_token_time["long"], rel=0.05)
    assert on.scheduler.scheduler_config.long_prefill_token_threshold == 0     # vLLM's setting restored


def test_a_smaller_user_threshold_stays_in_force():
    v = _run(0.25, False, threshold=512)
    assert v.scheduler.scheduler_config.long_prefill_token_threshold == 512


def test_share_is_validated():
    with pytest.raises(ValueError, match="waiting_head_share"):
        VLLMOptions(waiting_head_share=1.5)
    assert VLLMOptions().waiting_head_share == 0.25


def test_no_room_is_kept_for_a_head_that_vllms_watermark_keeps_out():
    """With vLLM's watermark (blocks kept free at admission) the short head cannot be admitted while the long
    prefill fills the KV cache: the long prefill must keep the whole budget then, as with the share off, instead of
    leaving room nobody takes."""
    scheduled = {}
    for share in (0.0, 0.25):
        v = VirtualVLLM("ewsjf", num_blocks=300, max_num_seqs=8, max_num_batched_tokens=512, watermark=0.5,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.add_request("long", prompt_tokens=4000, output_tokens=2)
        for _ in range(6):   # 3072 of its tokens computed: 108 blocks free, fewer than the watermark's 150
            v.step()
        v.add_request("short", prompt_tokens=100, output_tokens=2)
        scheduled[share] = [v.step().scheduled for _ in range(3)]
    assert scheduled[0.25] == scheduled[0.0] == [{"long": 512}, {"long": 416}, {"long": 1}]


def test_no_room_is_kept_for_a_head_the_capped_prefill_leaves_no_blocks_for():
    """The head's KV check counts the blocks the running prefill's capped chunk takes in the same step: with 31
    usable blocks the long prompt (30 blocks) holds 16, the short one (4 blocks) fits the 15 free, but not beside
    the 12 of a 192-token chunk. The long prefill keeps the whole budget then, as with the share off, instead of
    being cut to 192 tokens for a head that is not admitted (and finishing its prefill a step later). The sim
    builds the same case (tests/ewsjf_core/sim/test_step_builder.py)."""
    def scheduled(share, num_blocks):
        v = VirtualVLLM("ewsjf", num_blocks=num_blocks, max_num_seqs=8, max_num_batched_tokens=256,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.add_request("long", prompt_tokens=480, output_tokens=2)
        v.step()
        v.add_request("short", prompt_tokens=64, output_tokens=2)
        return [v.step().scheduled for _ in range(3)]

    assert scheduled(0.25, 32) == scheduled(0.0, 32) == [{"long": 224}, {"long": 1}, {"short": 64}]
    # With 8 blocks more the short one fits beside the chunk: it gets its room.
    assert scheduled(0.25, 40)[0] == {"long": 192, "short": 64}


def test_with_two_running_prefills_every_capped_chunk_leaves_the_head_its_tokens():
    """Two prefills run (vLLM's threshold of 400 admitted "b" beside "a"): the cap was the budget less the short
    head's 100 tokens, 412, which "a" alone took (400) with "b" taking the rest, so the head got nothing. The
    cap is now shared out: 206 tokens each, and the head's 100. The sim builds the same case
    (tests/ewsjf_core/sim/test_step_builder.py)."""
    def scheduled(share):
        v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=512,
                        long_prefill_token_threshold=400,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.add_request("a", prompt_tokens=1000, output_tokens=2)
        v.add_request("b", prompt_tokens=2000, output_tokens=2)
        first = v.step().scheduled
        v.add_request("short", prompt_tokens=100, output_tokens=2)
        return [first] + [v.step().scheduled for _ in range(2)], v

    off, _ = scheduled(0.0)
    assert off[:2] == [{"a": 400, "b": 112}] * 2                        # vLLM: the short request waits
    on, v = scheduled(0.25)
    assert on[:2] == [{"a": 400, "b": 112}, {"a": 206, "b": 206, "short": 100}]
    assert v.scheduler.scheduler_config.long_prefill_token_threshold == 400   # the user's setting restored


def _grammar_request(v: VirtualVLLM, request_id: str, prompt_tokens: int):
    """A structured-output request: vLLM holds it (WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR) until its grammar is
    compiled, which here never happens unless the test sets one. No block hashes: for engines without prefix
    caching, or where it is never admitted."""
    from vllm.sampling_params import SamplingParams, StructuredOutputsParams
    from vllm.v1.request import Request

    params = SamplingParams(max_tokens=2, ignore_eos=True, detokenize=False,
                            structured_outputs=StructuredOutputsParams(json={"type": "object"}))
    return Request(request_id, [7] * prompt_tokens, params, None, arrival_time=v.now)


@pytest.mark.parametrize("held_by", ["pause", "grammar"])
def test_no_room_is_kept_for_a_head_vllm_does_not_admit_this_step(held_by):
    """While the engine is paused for new requests (vLLM's PAUSED_NEW: running requests go on, waiting ones stay),
    or while the short head waits for its grammar, vLLM does not admit the head: the long prefill must keep the
    whole budget, as with the share off. It was cut by the head's 50 tokens every step, which nobody took."""
    from vllm.v1.core.sched.interface import PauseState

    scheduled = {}
    for share in (0.0, 0.25):
        v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.add_request("long", prompt_tokens=4000, output_tokens=2)
        v.step()
        if held_by == "pause":
            v.scheduler.set_pause_state(PauseState.PAUSED_NEW)
            v.add_request("short", prompt_tokens=50, output_tokens=2)
        else:
            v.scheduler.add_request(_grammar_request(v, "short", 50))
        scheduled[share] = [v.step().scheduled for _ in range(3)]
    assert scheduled[0.25] == scheduled[0.0] == [{"long": 512}] * 3


def test_no_room_is_kept_for_a_preempted_head_whose_output_is_still_in_flight():
    """Async scheduling: "short" is preempted with a step of it in flight. vLLM resumes it only once that output
    is in (a step later), so in the next step the long prefill must keep the whole budget, as with the share off,
    instead of leaving the 52 tokens "short" would take."""
    scheduled = {}
    for share in (0.0, 0.25):
        v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, async_scheduling=True,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.add_request("long", prompt_tokens=4000, output_tokens=2)
        v.add_request("short", prompt_tokens=50, output_tokens=10)
        v.step()
        v.step()
        assert v.preempt("short") == "short" and v.requests["short"].num_stale_output_tokens
        scheduled[share] = v.step().scheduled
    assert scheduled[0.25] == scheduled[0.0] == {"long": 512}


def test_a_head_whose_grammar_is_compiled_gets_its_room():
    """vLLM promotes a structured-output request to WAITING when it reaches it with its grammar compiled: such a
    head is admitted beside the long prefill as any other."""
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False)
    v.add_request("long", prompt_tokens=4000, output_tokens=2)
    v.step()
    request = _grammar_request(v, "short", 50)
    request.structured_output_request.grammar = object()   # compiled (never used: the test only schedules)
    v.scheduler.add_request(request)
    assert v.scheduler.schedule().num_scheduled_tokens == {"long": 462, "short": 50}


def _lora_request(v: VirtualVLLM, request_id: str, prompt_tokens: int, lora_id: int):
    """A request for LoRA adapter `lora_id` (the scheduler never loads it: no weights needed)."""
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import SamplingParams
    from vllm.v1.request import Request

    params = SamplingParams(max_tokens=2, ignore_eos=True, detokenize=False)
    return Request(request_id, [7] * prompt_tokens, params, None, arrival_time=v.now,
                   lora_request=LoRARequest(f"adapter-{lora_id}", lora_id, "/unused"))


@pytest.mark.parametrize("head_lora,admitted", [(2, False), (1, True)])
def test_no_room_is_kept_for_a_head_whose_lora_finds_max_loras_full(head_lora, admitted):
    """max_loras=1 and the long prefill runs with LoRA 1: vLLM skips a head with LoRA 2 this step, so the prefill must
    keep the whole budget, as with the share off (it was cut by the head's 50 tokens every step, which nobody took).
    A head with LoRA 1 gets its room as any other."""
    scheduled = {}
    for share in (0.0, 0.25):
        v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False, max_loras=1,
                        scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
        v.scheduler.add_request(_lora_request(v, "long", 4000, 1))
        v.step()
        v.scheduler.add_request(_lora_request(v, "short", 50, head_lora))
        scheduled[share] = v.step().scheduled
    if admitted:
        assert scheduled[0.25] == {"long": 462, "short": 50} and scheduled[0.0] == {"long": 512}
    else:
        assert scheduled[0.25] == scheduled[0.0] == {"long": 512}
