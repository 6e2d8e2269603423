"""vllm:ewsjf_starvation_promotions_total counts a starved request once, when it leaves the EWSJF queue for vLLM's
running set, through vLLM's real scheduler.

vLLM pops a waiting request it cannot schedule this step (its grammar still compiling, say) and prepends it back at
the end of the step. A starved request's pop was counted as a promotion: one skipped so and then aborted while waiting
was counted as promoted although it never ran (the admitted counter's case, tests/.../test_admitted_counter.py).
"""

from ewsjf.bench.virtual_vllm import VirtualVLLM
from ewsjf.integrations.vllm.series import samples

from tests.integrations.vllm.test_admitted_counter import _grammar_request


def _promotions(v: VirtualVLLM) -> float:
    """vllm:ewsjf_starvation_promotions_total as the exporters read it."""
    return next(value for name, _, value in samples(v.scheduler.ewsjf_stats())
                if name == "vllm:ewsjf_starvation_promotions")


def _starving_grammar_request(v: VirtualVLLM):
    """A grammar-blocked request (see _grammar_request) already past its deadline when first popped."""
    request = _grammar_request(v, "held", 50)
    v.scheduler.add_request(request)
    v.advance_to(v.now + 1.0)   # past max_wait (0.5 s)
    return request


def _virtual_vllm() -> VirtualVLLM:
    return VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False,
                       scheduler_kwargs={"ewsjf_config": {"max_wait": 0.5, "fcfs_wait_factor": 0.0}})


def test_a_skipped_starved_request_aborted_while_waiting_is_not_counted():
    v = _virtual_vllm()
    _starving_grammar_request(v)
    for _ in range(3):
        assert not v.scheduler.schedule().num_scheduled_tokens   # popped (starved, then from the lane), skipped
    assert v.abort("held") == ["held"]
    assert _promotions(v) == 0


def test_a_skipped_starved_request_is_counted_once_when_admitted():
    v = _virtual_vllm()
    request = _starving_grammar_request(v)
    for _ in range(3):
        assert not v.scheduler.schedule().num_scheduled_tokens
    request.structured_output_request.grammar = object()   # compiled (never used: the test only schedules)
    assert v.scheduler.schedule().num_scheduled_tokens == {"held": 50}
    v.scheduler.schedule()   # the next step: its admission stands
    assert _promotions(v) == 1


def test_the_last_chosen_queue_is_the_queue_of_the_last_request_admitted_not_of_one_put_back():
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False)
    v.scheduler.add_request(_grammar_request(v, "held", 50))
    v.add_request("a", prompt_tokens=40, output_tokens=20)
    v.step()   # "a" admitted from its queue, "held" skipped (put back into the resume lane)
    stats = v.scheduler.ewsjf_stats()
    admitted_from = [q["id"] for q in stats["queues"] if q["admitted"]]
    assert admitted_from == [stats["last_source_queue"]]
    for _ in range(3):
        v.step()   # "held" popped from the resume lane and put back each time; nothing else admitted
        assert v.scheduler.ewsjf_stats()["last_source_queue"] == admitted_from[0]
