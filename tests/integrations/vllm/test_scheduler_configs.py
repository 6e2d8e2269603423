"""EWSJF's scheduler under the scheduler settings operators set on `vllm serve`, against vLLM's own FCFS scheduler
with the same settings (virtual harness).

A drawn combination of vLLM settings (max_num_seqs, max_num_active_seqs, token budget, chunked prefill on/off under
vLLM's budget rule, long_prefill_token_threshold and its adaptive floor, prefix caching, KV blocks tight or ample,
block size, watermark, full-ISL reservation, async scheduling, fcfs/priority policy) that vLLM's validation accepts,
and of the adapter's options (waiting_head_share, prefix_cache_lookup, lazy_begin_step, output_prediction), runs a
small mixed workload (1-token prompts, prompts up to max_model_len, max_tokens 1, arrivals over steps, priorities,
aborts of waiting and running requests, an operator's pause / resume / reset_prefix_cache) to completion under
both schedulers. Each must: finish or abort every
request exactly once, give every finished request all its tokens, leave nothing waiting or running, keep the
adapter's length equal to vLLM's count, and end within a bound of steps (no livelock). test_scheduler_soak.py
covers long messy traffic at one setting; here the settings vary and the traffic is short.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewsjf.bench.virtual_vllm import VirtualVLLM
from ewsjf.integrations.vllm.compat import held_waiting

EXAMPLES = int(os.environ.get("EWSJF_VLLM_CONFIG_EXAMPLES", "40"))   # a longer probe: e.g. 2000
OPTIONS_OFF = {"log_interval_s": 0.0, "metrics_interval_s": 0.0}
INT64 = (-2 ** 63, 2 ** 63 - 1)   # the priorities vLLM's API accepts
NO_CAP = 2 ** 62   # a max_tokens no request reaches
OPERATOR_ACTIONS = {"pause_new": "PAUSED_NEW", "pause_all": "PAUSED_ALL", "resume": "UNPAUSED",
                    "reset_prefix_cache": ""}
PAUSE_STEPS = 3   # a pause lasts this many steps


@dataclass(frozen=True)
class Job:
    rid: str
    step: int
    """The step before which it arrives."""
    prompt: int
    max_tokens: int
    priority: int
    prefix_group: int | None


@st.composite
def engine_settings(draw) -> dict:
    """VirtualVLLM keyword arguments that vLLM 0.32's SchedulerConfig and CacheConfig accept."""
    max_model_len = draw(st.sampled_from([128, 512]))
    chunked = draw(st.booleans())
    max_num_seqs = draw(st.sampled_from([1, 3, 32]))
    if chunked:   # vLLM: max_num_batched_tokens >= max_num_seqs; without chunking also >= max_model_len
        budget = draw(st.sampled_from([max_num_seqs, 40, 300, 4096]))
    else:
        budget = draw(st.sampled_from([max_model_len, 4096]))
    budget = max(budget, max_num_seqs)
    block_size = draw(st.sampled_from([1, 16, 64]))
    per_request = -(-max_model_len // block_size) + 1   # blocks for the longest request, alone
    num_blocks = per_request + draw(st.sampled_from([1, 4, 200]))   # tight (preemptions) or ample
    extra = {}
    active = draw(st.sampled_from([None, 1, max_num_seqs]))
    if active is not None:
        extra["max_num_active_seqs"] = min(active, max_num_seqs)
    extra["long_prefill_token_threshold_adaptive"] = draw(st.booleans())
    # Below the budget (room for draft tokens). Without chunking, vLLM's own FCFS never admits a prompt longer
    # than it (vLLM checks nothing there), so it only goes with chunked prefill here.
    scheduled = draw(st.sampled_from([None, max_num_seqs, budget // 2]))
    if scheduled and chunked:
        extra["max_num_scheduled_tokens"] = scheduled
    return dict(max_model_len=max_model_len, enable_chunked_prefill=chunked, max_num_seqs=max_num_seqs,
                max_num_batched_tokens=budget, block_size=block_size, num_blocks=num_blocks,
                long_prefill_token_threshold=draw(st.sampled_from([0, 8, 100])),
                enable_prefix_caching=draw(st.booleans()), scheduler_reserve_full_isl=draw(st.booleans()),
                watermark=draw(st.sampled_from([0.0, 0.05])), async_scheduling=draw(st.booleans()),
                policy=draw(st.sampled_from(["fcfs", "priority"])), scheduler_config=extra)


ewsjf_options = st.fixed_dictionaries({
    "waiting_head_share": st.sampled_from([0.0, 0.25, 1.0]), "prefix_cache_lookup": st.booleans(),
    "lazy_begin_step": st.booleans(), "output_prediction": st.sampled_from(["none", "max_tokens"])})


@st.composite
def workloads(draw, max_model_len: int, length_capped: bool) -> tuple[list[Job], dict, dict[int, str]]:
    """Jobs, aborts by step and operator actions by step (OPERATOR_ACTIONS). A job's prompt leaves room in
    max_model_len for its max_tokens (vLLM's server clamps max_tokens so); if length_capped, some jobs' max_tokens
    are far beyond it (an offline LLM's SamplingParams are not clamped: vLLM stops them at max_model_len)."""
    n = draw(st.integers(8, 30))
    jobs = []
    for i in range(n):
        max_tokens = draw(st.sampled_from([1, 1, 2, 9, NO_CAP] if length_capped else [1, 1, 2, 9]))
        prompt = draw(st.sampled_from([1, 2, 17, 90, max_model_len // 2, max_model_len - 1]))
        prompt = min(prompt, max_model_len - (1 if max_tokens == NO_CAP else max_tokens))
        jobs.append(Job(f"r{i}", draw(st.integers(0, 25)), prompt, max_tokens,
                        draw(st.sampled_from([0, 0, 1, -3, *INT64])), draw(st.sampled_from([None, None, 1]))))
    aborts: dict[int, list[str]] = {}
    for rid in draw(st.lists(st.sampled_from([j.rid for j in jobs]), max_size=5, unique=True)):
        aborts.setdefault(draw(st.integers(0, 40)), []).append(rid)
    actions = draw(st.dictionaries(st.integers(0, 40), st.sampled_from(sorted(OPERATOR_ACTIONS)), max_size=3))
    return jobs, aborts, actions


def _check_places(v: VirtualVLLM, ewsjf: bool) -> None:
    """Every live request is in exactly one of vLLM's queues; the adapter's length is vLLM's count."""
    s = v.scheduler
    waiting = [r.request_id for r in s.waiting]
    held = [r.request_id for r in held_waiting(s)]
    running = [r.request_id for r in s.running]
    everywhere = waiting + held + running
    assert len(everywhere) == len(set(everywhere)) and set(everywhere) == set(s.requests)
    assert len(s.waiting) == len(waiting) and s.get_request_counts() == (len(running), len(waiting) + len(held))
    if ewsjf:
        assert len(s.ewsjf_queue) == len(waiting) == s.ewsjf_queue.stats()["waiting"]


def _act(v: VirtualVLLM, action: str) -> None:
    """An operator's action on the engine (vLLM's /pause, /resume and /reset_prefix_cache endpoints)."""
    from vllm.v1.core.sched.interface import PauseState

    if action == "reset_prefix_cache":   # (preempts every running request first)
        v.scheduler.reset_prefix_cache(reset_running_requests=True)
    else:
        v.scheduler.set_pause_state(getattr(PauseState, OPERATOR_ACTIONS[action]))


def _drive(name: str, engine: dict, options: dict, jobs: list[Job], aborts: dict[int, list[str]],
           actions: dict[int, str]) -> VirtualVLLM:
    ewsjf = name == "ewsjf"
    kwargs = {"ewsjf_options": {**OPTIONS_OFF, **options}} if ewsjf else None
    v = VirtualVLLM(name, scheduler_kwargs=kwargs, **engine)
    arriving = sorted(jobs, key=lambda j: j.step)
    # Generous: every token of every job, many times over (chunks of one token, recomputation after preemption).
    bound = 200 + 8 * sum(j.prompt + _tokens(j, engine) for j in jobs)
    step, resume_at = 0, -1
    while arriving or v.has_unfinished() or v.requests:   # (paused, vLLM counts nothing unfinished)
        assert step < bound, f"{name}: no end after {step} steps; waiting {v.waiting_ids()}, running {v.running_ids()}"
        while arriving and arriving[0].step <= step:
            j = arriving.pop(0)
            # A microsecond apart, as requests reach a server: vLLM's priority policy preempts the running request
            # with the largest (priority, arrival_time), the first of equals, so two equal keys could preempt each
            # other forever where a KV cache holds only one of them.
            v.advance_to(v.now + 1e-6)
            v.add_request(j.rid, prompt_tokens=j.prompt, output_tokens=j.max_tokens, priority=j.priority,
                          prefix_group=j.prefix_group, prefix_tokens=40)
        if step in aborts:
            v.abort(aborts[step])
        if step == resume_at:
            _act(v, "resume")
        if step in actions:
            _act(v, actions[step])
            resume_at = step + PAUSE_STEPS if actions[step].startswith("pause") else resume_at
        if v.has_unfinished():
            v.step()
        else:
            v.advance_to(v.now + 0.01)
        _check_places(v, ewsjf)
        step += 1
    return v


def _tokens(job: Job, engine: dict) -> int:
    """The output tokens a job gets if it runs to its end: max_tokens, or up to max_model_len."""
    return min(job.max_tokens, engine["max_model_len"] - job.prompt)


def _outcome(v: VirtualVLLM, jobs: list[Job], engine: dict) -> dict[str, str]:
    finished, aborted = set(v.finish_time) - v.aborted, v.aborted
    assert not set(v.finish_time) & aborted
    assert finished | aborted == {j.rid for j in jobs}, "a request was lost"
    assert len(v.admission_order) == len(set(v.admission_order)), "a request was admitted as new twice"
    for j in jobs:
        if j.rid in finished:
            assert v.output_tokens[j.rid] == _tokens(j, engine), j
    assert not v.scheduler.waiting and not v.scheduler.running and not v.scheduler.requests
    return {j.rid: ("finished" if j.rid in finished else "aborted") for j in jobs}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine=engine_settings(), options=ewsjf_options, data=st.data())
def test_every_setting_vllm_accepts_runs_every_request_to_its_end_as_fcfs_does(engine, options, data):
    # Async: two requests run to max_model_len in a tight KV cache preempt each other forever under vLLM's own
    # FCFS (left to vLLM); length-capped jobs only run in sync mode here.
    jobs, aborts, actions = data.draw(workloads(engine["max_model_len"], not engine["async_scheduling"]))
    fcfs = _outcome(_drive("fcfs", engine, options, jobs, aborts, actions), jobs, engine)
    ours = _outcome(_drive("ewsjf", engine, options, jobs, aborts, actions), jobs, engine)
    # An abort lands on the same step under both, but the request may have finished already under one order:
    # requests never aborted must end alike (finished) under both.
    never_aborted = {j.rid for j in jobs} - {rid for ids in aborts.values() for rid in ids}
    assert {rid: fcfs[rid] for rid in never_aborted} == {rid: ours[rid] for rid in never_aborted}


@pytest.mark.parametrize("max_tokens", [2 ** 53 + 1, 10 ** 18])
def test_max_tokens_beyond_the_context_is_predicted_as_what_the_context_leaves(max_tokens):
    """output_prediction max_tokens: an offline LLM's max_tokens is not clamped to max_model_len; vLLM's FCFS runs
    such a request up to the context. EWSJF refused it at arrival (a prediction past its 2**53 bound); it predicts
    what the context leaves instead, and runs it as FCFS does."""
    outputs = {}
    for name in ("fcfs", "ewsjf"):
        options = {**OPTIONS_OFF, "output_prediction": "max_tokens"}
        kwargs = {"ewsjf_options": options} if name == "ewsjf" else None
        v = VirtualVLLM(name, max_model_len=256, scheduler_kwargs=kwargs)
        v.add_request("unbounded", prompt_tokens=100, output_tokens=max_tokens)
        v.add_request("short", prompt_tokens=10, output_tokens=4)
        while v.has_unfinished():
            v.step()
        outputs[name] = v.output_tokens
    assert outputs["ewsjf"] == outputs["fcfs"] == {"unbounded": 156, "short": 4}
