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
