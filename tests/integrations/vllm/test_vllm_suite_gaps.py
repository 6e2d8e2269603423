"""What vLLM's own tests/v1/core/test_scheduler.py checks of a scheduler class that the rest of this folder
did not, as this project's tests (run vLLM's suite itself with scripts/run_vllm_scheduler_tests.sh)."""

import pytest
from vllm.v1.request import RequestStatus

from ewsjf.bench.virtual_vllm import VirtualVLLM


def _fcfs_engine(fcfs_like_config, **kw):
    return VirtualVLLM("ewsjf", scheduler_kwargs={"ewsjf_config": fcfs_like_config}, **kw)


def test_waiting_queue_indexes_like_vllms_deque(fcfs_like_config):
    """vLLM's tests index scheduler.waiting (its FCFS queue is a deque): waiting[i] is the i-th to be admitted."""
    v = _fcfs_engine(fcfs_like_config)
    reqs = [v.add_request(f"r{i}", prompt_tokens=10 + i, output_tokens=2) for i in range(5)]
    w = v.scheduler.waiting
    assert [w[i] for i in range(5)] == reqs == list(w)
    assert w[-1] is reqs[-1] and w[-5] is reqs[0]
    for bad in (5, -6):
        with pytest.raises(IndexError):
            w[bad]
    with pytest.raises(TypeError):
        w["r0"]
    v.scheduler.finish_requests("r1", RequestStatus.FINISHED_ABORTED)
    assert [w[i].request_id for i in range(len(w))] == ["r0", "r2", "r3", "r4"]


def test_preempted_requests_return_in_order_at_the_front(fcfs_like_config):
    """vLLM's test_preempt_during_execution / priority tests: a preempted request is next, ahead of arrivals."""
    v = _fcfs_engine(fcfs_like_config, max_num_seqs=2)
    for i in range(4):
        v.add_request(f"r{i}", prompt_tokens=20, output_tokens=50)
    v.step(duration=0.01)
    assert v.running_ids() == ["r0", "r1"]
    assert v.preempt("r1") == "r1"
    w = v.scheduler.waiting
    assert [w[i].request_id for i in range(len(w))] == ["r1", "r2", "r3"]
    r = v.step(duration=0.01)
    assert r.resumed == ["r1"] and not r.new


def test_finish_and_counts_match_vllms_bookkeeping(fcfs_like_config):
    """vLLM's test_finish_request / test_get_num_unfinished_requests with the EWSJF queue as `waiting`."""
    v = _fcfs_engine(fcfs_like_config)
    for i in range(10):
        v.add_request(f"r{i}", prompt_tokens=10, output_tokens=2)
    s = v.scheduler
    for i in range(10):
        s.finish_requests(f"r{i}", RequestStatus.FINISHED_ABORTED)
        assert f"r{i}" not in s.requests and len(s.waiting) == 9 - i
        assert s.get_num_unfinished_requests() == 9 - i
    assert len(s.ewsjf_queue) == 0
