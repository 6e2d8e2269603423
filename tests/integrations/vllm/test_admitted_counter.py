"""vllm:ewsjf_queue_admitted_total counts the requests that left the EWSJF queue for vLLM's running set, once each,
through vLLM's real scheduler.

vLLM pops a waiting request it cannot schedule this step (its grammar still compiling, say) and prepends it back at
the end of the step. The pop was counted as an admission from its queue; a request skipped so and then aborted while
waiting was counted as admitted although it never ran.
"""

from ewsjf.bench.virtual_vllm import VirtualVLLM
from ewsjf.integrations.vllm.series import samples


def _grammar_request(v: VirtualVLLM, request_id: str, prompt_tokens: int):
    """A structured-output request: vLLM skips it (WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR) every step until its
    grammar is compiled, which here happens only when the test sets one."""
    from vllm.sampling_params import SamplingParams, StructuredOutputsParams
    from vllm.v1.request import Request

    params = SamplingParams(max_tokens=2, ignore_eos=True, detokenize=False,
                            structured_outputs=StructuredOutputsParams(json={"type": "object"}))
    return Request(request_id, [7] * prompt_tokens, params, None, arrival_time=v.now)


def _admitted_total(v: VirtualVLLM) -> float:
    """The sum of vllm:ewsjf_queue_admitted_total over the queues, as the exporters read it."""
    return sum(value for name, _, value in samples(v.scheduler.ewsjf_stats()) if name == "vllm:ewsjf_queue_admitted")


def test_a_skipped_request_aborted_while_waiting_is_not_counted():
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False)
    v.scheduler.add_request(_grammar_request(v, "held", 50))
    v.add_request("a", prompt_tokens=40, output_tokens=2)
    for _ in range(3):
        v.step()
    assert v.waiting_ids() == ["held"]   # skipped in each of the three steps
    assert v.abort("held") == ["held"]
    while v.has_unfinished():
        v.step()
    assert _admitted_total(v) == 1   # "a" only


def test_a_skipped_request_is_counted_once_when_admitted():
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512, enable_prefix_caching=False)
    request = _grammar_request(v, "held", 50)
    v.scheduler.add_request(request)
    for _ in range(3):
        assert not v.scheduler.schedule().num_scheduled_tokens   # skipped: nothing else waits
    request.structured_output_request.grammar = object()   # compiled (never used: the test only schedules)
    assert v.scheduler.schedule().num_scheduled_tokens == {"held": 50}
    assert _admitted_total(v) == 1
