"""Differences between the supported vLLM releases (0.29-0.33) that the integration has to bridge.

Read from each release's vllm/v1/core/sched/ (tests/integrations/vllm/test_interface_compat.py checks the
installed one against what the adapter provides):
  - 0.29, 0.30: the scheduler keeps requests it could not admit yet (waiting for a grammar, remote KV,
    streaming input) in `skipped_waiting`, a second RequestQueue that vLLM drains before `waiting`.
    0.31 on: that queue is `kv_holding_waiting` (requests already holding KV blocks, drained first) plus
    `deferred_waiting`, a set marking blocked requests that stay in one of the two queues.
  - RequestQueue.prepend_requests takes another RequestQueue up to 0.30 and an iterable of requests from
    0.31; the adapter accepts any iterable (a RequestQueue iterates its requests), so both work.
  - streaming-input sessions (0.32; a release without them counts none): a session waiting for its next input
    (num_waiting_for_streaming_input of them) sits in the held queue yet keeps its model-runner slot, and vLLM
    counts it against the running cap when it admits (active_requests).
  - 0.33 adds the abstract SchedulerInterface.has_request(request_id); vLLM's Scheduler implements it and
    the EWSJF schedulers inherit it.
Nothing else the adapter relies on changed between these releases.
"""

from __future__ import annotations

from typing import Any

HELD_QUEUE_NAMES = ("kv_holding_waiting", "skipped_waiting")
"""vLLM's own second waiting queue, newest name first (drained before `waiting` in every release)."""


def held_waiting(scheduler: Any) -> Any:
    """vLLM's second waiting queue of `scheduler` (kv_holding_waiting, or skipped_waiting before 0.31):
    requests vLLM admits before anything in `waiting`. Empty tuple if the release has none."""
    for name in HELD_QUEUE_NAMES:
        queue = getattr(scheduler, name, None)
        if queue is not None:
            return queue
    return ()


def running_cap(scheduler: Any) -> int:
    """The most requests `scheduler` admits into its running set: max_num_active_reqs where the release has
    it (admission apart from the model runner's slots), else max_num_running_reqs (max_num_seqs)."""
    return getattr(scheduler, "max_num_active_reqs", None) or scheduler.max_num_running_reqs


def streaming_sessions_idle(scheduler: Any) -> int:
    """Streaming-input sessions of `scheduler` waiting for their next input (0 where the release has none)."""
    return getattr(scheduler, "num_waiting_for_streaming_input", 0)


def active_requests(scheduler: Any) -> int:
    """Requests holding a running slot, as vLLM's admission counts them against running_cap: the running set
    plus the streaming sessions waiting for input (they keep their model-runner slot)."""
    return len(scheduler.running) + streaming_sessions_idle(scheduler)


def admits_new(scheduler: Any) -> bool:
    """Whether vLLM's admission loop takes from `waiting` this step: not while paused (PAUSED_NEW admits only
    requests holding KV blocks, PAUSED_ALL nothing). Releases without pausing always do."""
    state = getattr(scheduler, "pause_state", None)
    return state is None or state.name == "UNPAUSED"


def num_waiting(scheduler: Any) -> int:
    """Requests waiting in `scheduler` (its `waiting` plus the held queue), as vLLM counts them."""
    return len(scheduler.waiting) + len(held_waiting(scheduler))
