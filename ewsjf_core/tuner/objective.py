"""What a trial measures. An objective scores one candidate EWSJFConfig within a window:

    prepared = objective.prepare(ctx)            # once per window (None: not enough traffic yet)
    out = objective.evaluate(prepared, config)   # once per trial, possibly in a worker process
    out == {"reward": float, "terms": {...RewardTerms...}, "metrics": {...}}

`ctx` is the tuner's TrialContext (context.py): all an objective sees of the serving side. Two optional
capabilities the tuner looks for: `prepare_range(ctx, start, end)` (a replay objective: the rollback
guard replays its period with it) and `score(ctx, t0, t1)` (a live objective scored in two phases when
the tuner is driven synchronously by tick()).

`stateless`: the window's context can be rebuilt after a restart (a synthetic function), so a resumed
tuner continues the interrupted window; otherwise a resumed tuner starts a new window.
`in_process`: evaluate must run in the serving process (live trials act on the real queue).
`applies_candidate`: evaluate expects the candidate to be in force on the live queue during the trial.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner.context import TrialContext


class Objective(Protocol):
    stateless: bool
    in_process: bool
    applies_candidate: bool

    def prepare(self, ctx: TrialContext) -> Any | None: ...

    def evaluate(self, prepared: Any, config: EWSJFConfig) -> dict[str, Any]: ...


class ReplayingObjective(Objective, Protocol):
    def prepare_range(self, ctx: TrialContext, start: float, end: float,
                      info: dict | None = None) -> Any | None: ...


class LiveScoredObjective(Objective, Protocol):
    def score(self, ctx: TrialContext, t0: float, t1: float) -> dict[str, Any]: ...


class FunctionObjective:
    """A known function of the tuned parameters (tests, examples): reward = fn({name: value}).
    Picklable when fn is (a module-level function)."""

    stateless = True
    in_process = False
    applies_candidate = False

    def __init__(self, fn: Callable[[Mapping[str, float]], float], names: tuple[str, ...]) -> None:
        self.fn = fn
        self.names = names

    def prepare(self, ctx: TrialContext) -> Any:
        return True

    def evaluate(self, prepared: Any, config: EWSJFConfig) -> dict[str, Any]:
        values = {n: getattr(config, n) for n in self.names}
        return {"reward": float(self.fn(values)), "terms": {}, "metrics": {}}
