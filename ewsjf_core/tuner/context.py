"""What an objective may see of the serving side, and nothing else of the tuner.

The tuner builds one TrialContext when it starts and hands it to its objective's `prepare` (and, for
replay objectives, `prepare_range`) and to live scoring. Objectives never touch the tuner, the queue's
private state or each other: everything they read goes through these few callables and values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner.budget import ReplayBudget
from ewsjf_core.tuner.recorder import WindowRecorder
from ewsjf_core.tuner.settings import TunerSettings

CostCoefficients = tuple[float, float, float, float]


@dataclass
class TrialContext:
    clock: Callable[[], float]
    """The host's clock (virtual time in a simulator)."""
    recorder: WindowRecorder
    """Arrivals, first tokens and finishes the host reported."""
    settings: TunerSettings
    config: Callable[[], EWSJFConfig]
    """The queue's configuration in force."""
    cost_coefficients: Callable[[], CostCoefficients]
    """(c0, c1, c2, cd) of the queue's fitted prefill-cost model, safe to read from any thread."""
    queue_cap: float
    """Queue-count cap of the reward's queue-count penalty (largest max_queues the search allows plus
    the bubble queues)."""
    wait: Callable[[float], bool]
    """Sleeps up to `seconds`; True when the tuner is stopping (a live trial then ends early)."""
    budget: ReplayBudget = field(default_factory=ReplayBudget)
    """The replay work spent so far against the traffic recorded (replay objectives; budget.py)."""
    counters: dict[str, int] = field(default_factory=dict)
    """Counts objectives keep for visibility (e.g. windows skipped for lack of contention)."""

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def queue_cost_coefficients(queue: Any) -> CostCoefficients:
    """(c0, c1, c2, cd) of the queue's fitted prefill-cost model through its public `cost_coefficients`
    (EWSJFQueue's; never stats(), which is engine-thread only), else the config's priors."""
    coeffs = getattr(queue, "cost_coefficients", None)
    if coeffs is not None:
        return tuple(float(c) for c in coeffs)  # type: ignore[return-value]
    c = queue.config
    return (c.prior_c0, c.prior_c1, c.prior_c2, c.prior_decode)


def queue_cap(config: EWSJFConfig, max_queues_bound: float | None) -> float:
    """The queue-count penalty's cap: the largest max_queues the search may pick, plus bubble queues."""
    hi = config.max_queues if max_queues_bound is None else max_queues_bound
    return float(hi + config.max_bubbles)
