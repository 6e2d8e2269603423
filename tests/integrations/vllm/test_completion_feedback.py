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


def _cap_flags(**engine) -> list[bool]:
    """at_running_cap of every step vLLM's real scheduler fed back, for 6 requests of 64-token prompts and
    20 output tokens each."""
    v = VirtualVLLM("ewsjf", max_num_batched_tokens=2048, **engine)
    flags = []
    q = v.scheduler.ewsjf_queue
    real = q.observe_step
    q.observe_step = lambda d, p, o, cap=False, *rest: (flags.append(cap), real(d, p, o, cap, *rest))[1]
    for i in range(6):
        v.add_request(f"r{i}", prompt_tokens=64, output_tokens=20)
    for _ in range(200):
        if not v.has_unfinished():
            break
        v.step()
    v.scheduler.ewsjf_stats()      # feeds the last steps
    return flags


def test_steps_held_by_the_running_cap_are_reported_as_such():
    """max_num_seqs 2: four requests wait while two decode, and those steps say the cap held them; once
    the last two run, nothing waits and no step says so."""
    flags = _cap_flags(num_blocks=4096, max_num_seqs=2)
    assert flags[:19] == [True] * 19 and not any(flags[-19:])


def test_steps_held_by_kv_memory_are_not_reported_as_the_cap():
    """A KV cache of 10 blocks of 16 tokens holds two of the requests: the others wait on memory, below the
    running cap of 8."""
    flags = _cap_flags(num_blocks=11, max_num_seqs=8)
    assert flags and not any(flags)


def test_steps_paused_for_new_requests_are_not_counted_as_held_by_kv_memory():
    """vLLM's PAUSED_NEW runs the running requests and admits no waiting one. Those steps were fed back as steps whose
    waiting requests KV memory held (below the token budget): after a long pause the share read 1.0, and the
    requests queued next were weighed by their KV memory-time in the starvation bound. They still feed the cost
    model: what they ran, they ran."""
    from vllm.v1.core.sched.interface import PauseState

    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=512)
    v.add_request("long", prompt_tokens=300, output_tokens=200)
    for _ in range(3):
        v.step()
    s = v.scheduler
    s.set_pause_state(PauseState.PAUSED_NEW)
    for i in range(5):
        v.add_request(f"w{i}", prompt_tokens=50, output_tokens=2)
    fitted = s.ewsjf_stats()["cost_model"]["steps"]
    for _ in range(100):
        assert v.step().scheduled == {"long": 1}
    stats = s.ewsjf_stats()
    assert stats["waiting"] == 5 and stats["cost_model"]["steps"] == fitted + 100
    assert stats["admissions_held"]["below_token_budget"] == 0.0
