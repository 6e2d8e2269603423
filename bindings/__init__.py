"""ewsjf.bindings: the host API engines call.

    from ewsjf.bindings import EWSJFQueue, EWSJFConfig
    q = EWSJFQueue(EWSJFConfig(max_wait=30.0))
    q.add("r1", prompt_tokens=812, arrival_time=t)
    q.begin_step(now); rid = q.pop(); q.observe_step(0.031, prefill_tokens=812, decode_tokens=57)
"""

from ewsjf.bindings.base import RequestInfo, WaitingQueue
from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.config import EWSJFConfig

__all__ = ["EWSJFConfig", "EWSJFQueue", "RequestInfo", "WaitingQueue"]
