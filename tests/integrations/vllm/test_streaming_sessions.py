"""Streaming-input sessions (vLLM 0.32: a resumable request goes on with its client's next input) through vLLM's
real scheduler with EWSJF. A session waiting for its next input sits in vLLM's held queue yet keeps its
model-runner slot, and vLLM's admission counts it against the running cap (max_num_seqs): the adapter must count
it so too, where it asks whether vLLM will admit anything (the head share) or what held admissions (at_running_cap).
"""

import inspect

import pytest
from vllm.sampling_params import SamplingParams
from vllm.v1.request import Request, RequestStatus

from ewsjf.bench.virtual_vllm import VirtualVLLM

if "resumable" not in inspect.signature(Request).parameters:
    pytest.skip("this vLLM release has no streaming-input sessions", allow_module_level=True)


def _engine(share: float = 0.25) -> VirtualVLLM:
    """max_num_seqs 2, one slot taken by a streaming session waiting for input."""
    v = VirtualVLLM("ewsjf", max_num_seqs=2, max_num_batched_tokens=512, enable_prefix_caching=False,
                    scheduler_kwargs={"ewsjf_options": {"waiting_head_share": share}})
    params = SamplingParams(max_tokens=1, ignore_eos=True, detokenize=False)
    v.scheduler.add_request(Request("session", [5] * 20, params, None, arrival_time=v.now, resumable=True))
    for _ in range(2):   # its first turn: prefill and its one token
        v.step()
    assert v.requests["session"].status == RequestStatus.WAITING_FOR_STREAMING_REQ
    return v


def test_no_room_is_kept_for_a_head_the_sessions_slot_keeps_out():
    """The long prefill holds the other slot: vLLM admits nothing, so the long prefill keeps the whole budget, as
    with the share off. It was cut by the short head's 50 tokens every step, which nobody took."""
    scheduled = {}
    for share in (0.0, 0.25):
        v = _engine(share)
        v.add_request("long", prompt_tokens=4000, output_tokens=2)
        v.step()
        v.add_request("short", prompt_tokens=50, output_tokens=2)
        scheduled[share] = [v.step().scheduled for _ in range(3)]
    assert scheduled[0.25] == scheduled[0.0] == [{"long": 512}] * 3


def test_steps_the_sessions_slot_holds_admissions_in_are_reported_at_the_running_cap():
    """One request decodes beside the idle session: the cap holds the others, and those steps say so (they said
    nothing, counting the running set alone). Once nothing but the session waits (for its client, not for a
    slot), no step says so."""
    v = _engine()
    flags = []
    queue = v.scheduler.ewsjf_queue
    real = queue.observe_step
    queue.observe_step = lambda d, p, o, cap=False, *rest: (flags.append(cap), real(d, p, o, cap, *rest))[1]
    for rid in ("a", "b", "c"):
        v.add_request(rid, prompt_tokens=64, output_tokens=10)
    for _ in range(40):
        if v.finish_time.keys() >= {"a", "b", "c"}:
            break
        v.step()
    v.scheduler.ewsjf_stats()   # feeds the last steps
    assert flags[:19] == [True] * 19 and not any(flags[-9:])


def test_a_session_whose_turn_ends_after_it_was_preempted_does_not_take_the_engine_down():
    """Async scheduling: the session is preempted while the step that samples its last token of the turn is in
    flight; that output then ends its turn, and vLLM re-queues it (_handle_stopped_request) while it still waits
    in the queue it was preempted into. The adapter raised KeyError ("already waiting") inside vLLM's
    update_from_output: the engine died. vLLM's own deque takes it twice, then drops it from its queues (a loss
    in vLLM itself, its FCFS alike); with EWSJF the engine goes on exactly as with vLLM's FCFS."""
    outcome = {}
    for name in ("fcfs", "ewsjf"):
        v = VirtualVLLM(name, max_num_seqs=4, max_num_batched_tokens=512, async_scheduling=True,
                        enable_prefix_caching=False)
        params = SamplingParams(max_tokens=1, ignore_eos=True, detokenize=False)
        v.scheduler.add_request(Request("session", [5] * 20, params, None, arrival_time=v.now, resumable=True))
        v.add_request("other", prompt_tokens=30, output_tokens=3)
        v.step()   # both prefill: the session's one token of this turn is in flight
        assert v.preempt("session") == "session"
        for _ in range(10):
            v.step()
        s = v.scheduler
        if name == "ewsjf":
            assert len(s.waiting) == len(s.ewsjf_queue) == s.ewsjf_queue.stats()["waiting"]
        outcome[name] = (sorted(v.finish_time), v.waiting_ids(), v.running_ids(), sorted(s.requests))
    assert outcome["ewsjf"] == outcome["fcfs"]
    assert outcome["fcfs"][0] == ["other", "session"]   # (the session's turn ended; vLLM keeps it in no queue)
