"""The adapter against the installed vLLM's scheduler interface, read from vLLM's own classes and source.

Runs with any supported release, also where vLLM's engine cannot start (vLLM 0.33's CUDA build on a machine
without a GPU: scripts/test_vllm_versions.sh runs only this file there): nothing here builds an engine.
"""

import inspect
import re

from vllm.v1.core.sched import async_scheduler as vllm_async_mod
from vllm.v1.core.sched import request_queue as vllm_queue_mod
from vllm.v1.core.sched import scheduler as vllm_sched_mod
from vllm.v1.core.sched.request_queue import RequestQueue

from ewsjf.integrations.vllm import compat
from ewsjf.integrations.vllm.request_queue import EWSJFRequestQueue
from ewsjf.integrations.vllm.scheduler import AsyncEWSJFScheduler, EWSJFScheduler, EWSJFSchedulerMixin

SOURCES = [inspect.getsource(vllm_sched_mod), inspect.getsource(vllm_async_mod)]


def test_every_abstract_method_is_implemented():
    """A method vLLM adds as abstract (0.33: SchedulerInterface.has_request) leaves no class abstract."""
    assert not EWSJFRequestQueue.__abstractmethods__
    assert not EWSJFScheduler.__abstractmethods__
    assert not AsyncEWSJFScheduler.__abstractmethods__
    for name in RequestQueue.__abstractmethods__:
        assert getattr(EWSJFRequestQueue, name) is not getattr(RequestQueue, name), name


def test_every_waiting_queue_operation_vllm_uses_exists():
    """Whatever the installed vLLM calls on a waiting queue, the adapter has (read from vLLM's source)."""
    used = set()
    for src in SOURCES:
        used |= set(re.findall(r"self\.waiting\.(\w+)", src))
        used |= set(re.findall(r"\b(?:request_queue|from_queue)\.(\w+)", src))
        if re.search(r"self\.waiting\[", src):
            used.add("__getitem__")
    assert used, "vLLM's scheduler source no longer names self.waiting: the adapter needs a look"
    missing = sorted(name for name in used if not hasattr(EWSJFRequestQueue, name))
    assert not missing, f"vLLM {vllm_version()} uses {missing} on its waiting queue"


def test_prepend_requests_accepts_what_each_release_passes():
    """0.29/0.30 pass another RequestQueue, 0.31+ an iterable (a deque); in both, like deque.extendleft."""
    sig = inspect.signature(vllm_queue_mod.RequestQueue.prepend_requests)
    assert list(sig.parameters) == ["self", "requests"]
    src = inspect.getsource(EWSJFRequestQueue.prepend_requests)
    assert "for request in requests" in src  # iterates its argument: any RequestQueue or iterable


def test_held_waiting_queue_name_is_known():
    """vLLM's second waiting queue exists under one of the names compat knows (drained before waiting)."""
    init_src = inspect.getsource(vllm_sched_mod.Scheduler.__init__)
    names = [n for n in compat.HELD_QUEUE_NAMES if f"self.{n} = create_request_queue" in init_src]
    assert len(names) == 1, f"vLLM {vllm_version()}: held queue not found among {compat.HELD_QUEUE_NAMES}"


def test_overridden_methods_keep_their_signatures():
    """The mixin's overrides forward to vLLM's methods: those must exist with the parameters it passes."""
    base = vllm_sched_mod.Scheduler
    expect = {"update_from_output": ["scheduler_output", "model_runner_output"],
              "finish_requests": ["request_ids", "finished_status"],
              "_free_request": ["request"], "schedule": [], "shutdown": []}
    for name, params in expect.items():
        assert name in vars(EWSJFSchedulerMixin), name
        got = [p for p in inspect.signature(getattr(base, name)).parameters if p != "self"]
        assert got[:len(params)] == params, (name, got)
    # Attributes of vLLM's Scheduler that the mixin reads after vLLM's constructor.
    init_src = inspect.getsource(base.__init__)
    for attr in ("vllm_config", "cache_config", "kv_cache_manager", "waiting", "running", "requests"):
        assert re.search(rf"self\.{attr}\b\s*(:[^=]*)?=", init_src), attr


def test_prefix_cache_lookup_calls_exist():
    """The read-only prefix-cache lookup at arrival uses these KV-cache manager calls (3-tuple result)."""
    from vllm.v1.core.kv_cache_coordinator import KVCacheCoordinator
    from vllm.v1.core.kv_cache_manager import KVCacheManager

    assert callable(getattr(KVCacheManager, "prefix_cache_lookup_enabled", None))
    sig = inspect.signature(KVCacheCoordinator.find_longest_cache_hit)
    assert list(sig.parameters)[1:3] == ["block_hashes", "max_cache_hit_length"]


def vllm_version() -> str:
    import vllm

    return str(getattr(vllm, "__version__", "?"))
