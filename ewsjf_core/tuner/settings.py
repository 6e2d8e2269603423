"""Every tuner knob in one place, with its default (also readable from a mapping: YAML, CLI)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ewsjf_core.field_checks import FloatBounds, check_choice, check_float, check_int, short
from ewsjf_core.tuner.optimizer import OptimizerSettings
from ewsjf_core.tuner.reward import RewardWeights

MODES = ("replay", "live")
EXECUTORS = ("auto", "thread", "process")
_COUNT = 10 ** 9
_INT_BOUNDS = {
    "seed": (-2 ** 63, 2 ** 63 - 1), "trials_per_window": (1, 10_000), "keep_top": (0, 10_000),
    "window_requests": (1, _COUNT), "min_window_requests": (1, _COUNT), "max_replay_requests": (1, _COUNT),
    "worker_nice": (-20, 19), "rollback_min_samples": (1, _COUNT), "max_consecutive_failures": (1, _COUNT),
    "history_limit": (1, 10_000_000),
}
_SECONDS = FloatBounds(0.0, 1e9, low_inclusive=False)
MIN_TRIAL_TIMEOUT_S = 1e-3
"""The shortest trial timeout: the process executor waits for its worker in whole milliseconds (selectors round a
shorter wait up to 1 ms, the thread executor's Event.wait does not), so below it a timeout would not mean what it
says, and a denormal one (5e-324) times every trial out at once in a thread."""
MIN_LIVE_TRIAL_S = 1e-3
"""The shortest live trial: it is scored on the requests that arrived after its swap and had a first token before it
ended, which takes an engine step (milliseconds at least), and it runs under the trial timeout, whose floor is the
same; a denormal one (5e-324) ends at once, so every live trial saw no request, failed, and the tuner stopped."""
MIN_GUARD_S = 1e-2
"""The shortest guard: the background loop looks at a pending swap every max(min(1 s, guard_s / 4), MIN_GUARD_S),
so it cannot judge one sooner, and a denormal guard_s (5e-324) left the baseline window before a swap empty: the
guard never armed, and every swap went unwatched."""
_FLOAT_BOUNDS = {
    "improve_margin": FloatBounds(0.0, 1e9), "window_s": _SECONDS, "min_window_depth": FloatBounds(0.0, 1e9),
    "replay_budget": FloatBounds(0.0, 1e9, low_inclusive=False), "live_trial_s": FloatBounds(MIN_LIVE_TRIAL_S, 1e9),
    "trial_interval_s": FloatBounds(0.0, 1e9), "retune_every_s": FloatBounds(0.0, 1e9),
    "duty_cycle": FloatBounds(0.0, 1.0, low_inclusive=False), "trial_timeout_s": FloatBounds(MIN_TRIAL_TIMEOUT_S, 1e9),
    "rollback_threshold": FloatBounds(0.0, 1e9), "guard_s": FloatBounds(MIN_GUARD_S, 1e9),
}


@dataclass(frozen=True)
class TunerSettings:
    mode: str = "replay"
    """replay (default): candidates replay the recorded last window through the sim; live: each candidate
    serves real traffic for `live_trial_s` (the published design; bursty traffic confuses it)."""
    seed: int = 0
    weights: RewardWeights = field(default_factory=RewardWeights)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    trials_per_window: int = 8
    """Trials scored on one window; the window's winner is applied when they are done."""
    keep_top: int = 2
    """Best points of earlier windows re-scored first in a new window (after the parameters in force)."""
    history_limit: int = 1000
    """Trials kept in the state (and its file), the newest; the older are dropped, the count goes on. At
    least (keep_top + 1) x trials_per_window are kept: what the next windows' proposals read."""
    improve_margin: float = 0.002
    """Apply a winner only if its reward beats the parameters in force by more than this (same window;
    0.002 is about 0.2% of mean slowdown): no swaps, and no rollback risk, for noise-level gains."""
    window_s: float = 120.0
    """replay: the window is the traffic that arrived in the last window_s seconds (host clock)..."""
    window_requests: int = 1000
    """...extended further back, when that holds fewer, to the last window_requests arrivals: a window
    of bursty traffic must be a fair sample of it, not one burst or one lull."""
    min_window_requests: int = 500
    """replay: fewer recorded requests than this in the window: wait for more traffic."""
    min_window_depth: float = 4.0
    """replay: a window is tuned on only if its arrivals found at least this many requests already
    waiting, on average (when the host reports depths; TunedEWSJFQueue does). Without contention every
    admission order serves the window alike, so its trials could not tell parameters apart: the tuner
    waits for traffic that exercises the scheduler instead of spending trials on it."""
    max_replay_requests: int = 4000
    """replay: the most recent requests of the window replayed at most (bounds a trial's CPU)."""
    replay_budget: float | None = None
    """replay: requests the tuner may replay per request recorded (budget.py). The first window is free;
    after it, a window opens only when the replays since the first window plus its own trials
    (trials_per_window x its replay size) stay within replay_budget x the arrivals recorded since the
    tuner started. None: no bound (serving, where duty_cycle bounds the tuner's wall time; the bench, in
    virtual time, sets it)."""
    live_trial_s: float = 120.0
    """live: how long each candidate serves before it is scored. At least MIN_LIVE_TRIAL_S (1 ms)."""
    trial_interval_s: float = 0.0
    """Minimum pause between two trials."""
    retune_every_s: float = 300.0
    """After a window closes, the next window starts this many seconds (host clock) later at the
    earliest: tuning is a strategic, every-few-minutes activity, not a continuous one."""
    duty_cycle: float = 0.25
    """At most this fraction of wall time is spent in trials: after a trial of t seconds the tuner
    sleeps t * (1 - duty_cycle) / duty_cycle (live trials, which mostly wait, are exempt)."""
    trial_timeout_s: float = 120.0
    """A trial running longer is abandoned (thread) or killed (process): the last good parameters stay. At least
    MIN_TRIAL_TIMEOUT_S (1 ms)."""
    executor: str = "auto"
    """auto: a worker process for replay, a thread for live and synthetic objectives. process is refused with
    mode live (its trials act on the serving queue)."""
    worker_nice: int = 19
    rollback_threshold: float = 0.5
    """Roll back when, over `guard_s` after a swap, the live mean TTFT/C_prefill grew by more than this
    fraction AND (replay mode) so did how many times slower live was than the replayed prediction for the same
    requests (a paired geometric mean, which cancels changes of traffic: guard.calibration). Live mode compares
    the raw live figure only."""
    guard_s: float = 60.0
    """How long the rollback guard watches after a swap (host clock), and the window before it that the baseline is
    measured over. At least MIN_GUARD_S (10 ms)."""
    rollback_min_samples: int = 30
    """Requests with a first token the guard needs on each side before it judges."""
    max_consecutive_failures: int = 5
    """The tuner stops (parameters untouched) after this many failed trials in a row."""
    state_path: str | None = None
    """JSON file the state is saved to after every trial and resumed from on start."""
    engine: Mapping[str, Any] = field(default_factory=dict)
    """replay: keyword arguments of ewsjf_core.sim EngineConfig (token budget, max running, ...)."""

    def __post_init__(self) -> None:
        """Every field's type and bounds (ValueError naming it): settings that pass must run."""
        check_choice(self, "mode", MODES)
        check_choice(self, "executor", EXECUTORS)
        if self.mode == "live" and self.executor == "process":
            # Live trials act on the real queue, so they run in the serving process: the Tuner would refuse it.
            raise ValueError('TunerSettings.mode="live" cannot run with TunerSettings.executor="process": live '
                             'trials act on the serving queue; use executor="thread" or "auto"')
        for name, (low, high) in _INT_BOUNDS.items():
            check_int(self, name, low, high)
        for name, bounds in _FLOAT_BOUNDS.items():
            if not (name == "replay_budget" and self.replay_budget is None):   # None: unbounded
                check_float(self, name, bounds)
        if self.state_path is not None and not (isinstance(self.state_path, str) and self.state_path):
            raise ValueError(f"TunerSettings.state_path must be a file path or None, got {short(self.state_path)}")
        for name, kind in (("weights", RewardWeights), ("optimizer", OptimizerSettings)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"TunerSettings.{name} must be a {kind.__name__} (or a mapping of its fields), "
                                 f"got {short(getattr(self, name))}")
        _check_engine(self.engine)

    def replace(self, **changes: Any) -> "TunerSettings":
        return dataclasses.replace(self, **changes)

    def on_engine(self, engine: Mapping[str, Any]) -> "TunerSettings":
        """These settings with replays on `engine` (EngineConfig fields: the engine being tuned), the keys
        set in `self.engine` winning over its own."""
        return self.replace(engine={**engine, **self.engine})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "TunerSettings":
        v = dict(values)
        unknown = sorted(set(v) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"TunerSettings has no setting(s) {', '.join(unknown)}")
        if isinstance(v.get("weights"), Mapping):
            v["weights"] = RewardWeights(**v["weights"])
        if isinstance(v.get("optimizer"), Mapping):
            v["optimizer"] = OptimizerSettings(**v["optimizer"])
        return cls(**v)


def _check_engine(engine: Any) -> None:
    """TunerSettings.engine must build an EngineConfig: a trial that cannot build its engine would fail every
    window, so a bad key or value is refused here, naming it."""
    from ewsjf_core.sim.config import EngineConfig   # the sim is only needed to check the replay's engine
    if not isinstance(engine, Mapping):
        raise ValueError(f"TunerSettings.engine must be a mapping of EngineConfig fields, got "
                         f"{type(engine).__name__}")
    unknown = sorted(set(engine) - {f.name for f in dataclasses.fields(EngineConfig)})
    if unknown:
        raise ValueError(f"TunerSettings.engine: EngineConfig has no field(s) {', '.join(map(str, unknown))}")
    try:
        EngineConfig(**engine)
    except (TypeError, ValueError) as e:
        raise ValueError(f"TunerSettings.engine: {e}") from None
