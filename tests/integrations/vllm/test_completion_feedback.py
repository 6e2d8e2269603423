"""Each request vLLM finishes reaches the EWSJF queue's completion feedback (observe_finished) with its prompt
and output lengths, through vLLM's real scheduler; an aborted request that never generated is not counted."""

from ewsjf.bench.virtual_vllm import VirtualVLLM


def test_finished_requests_report_prompt_and_output_lengths():
    v = VirtualVLLM("ewsjf", num_blocks=4096, max_num_seqs=8, max_num_batched_tokens=2048)
    seen = []
    q = v.scheduler.ewsjf_queue
    real = q.observe_finished
    q.observe_finished = lambda p, o: (seen.append((p, o)), real(p, o))[1]
    v.add_request("a", prompt_tokens=40, output_tokens=3)
    v.add_request("b", prompt_tokens=300, output_tokens=7)
    for _ in range(50):
        if not v.has_unfinished():
            break
        v.step()
    v.add_request("never", prompt_tokens=50, output_tokens=5)
    v.abort("never")              # aborted while waiting: no output, not a completion
    assert sorted(seen) == [(40, 3), (300, 7)]
    assert q._kv_work.mean_output(300) > q._kv_work.mean_output(40)
