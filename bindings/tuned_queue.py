"""TunedEWSJFQueue: an EWSJFQueue with the Bayesian tuner attached (EWSJF.md section 4).

The queue itself is unchanged on the hot path except for cheap additions:
- add() records the arrival (id, time, prompt and cached tokens, priority, queue depth) in the tuner's
  recorder (one dict insert and one array extend); resize_all() (the engine's prefix cache was reset) gives
  the recorded requests still waiting their new cached tokens;
- begin_step() is overridden only in live mode, to sample stats()["queues"] every `stats_every` steps for
  the partition terms of live trials (on the engine thread, which owns the queue), or in the bench when
  no on_step hook drives the tuner; otherwise it is EWSJFQueue's own.
The host reports what it learns later with `on_first_token(id, t)` and `on_finish(id, output_tokens, t)`
(the recorder's methods themselves: one dict lookup each). The tuner reads the fitted cost coefficients
as four floats (a possibly torn read during an update is harmless to a replay).

Two ways to drive the tuner:
- `start_tuner()` / `stop_tuner()`: a background daemon thread (real time; the serving case). Replay
  trials run in a niced worker process by default, so they neither hold this process's GIL nor its core.
- `tick()`: synchronous, e.g. from the sim's on_step hook in virtual time (the bench's `ewsjf-tuned`):
  a trial runs every `trial_every_s` clock seconds once the first window is recorded.
The tuner only ever calls set_config() (atomic swap, installed at the next step): if it raises, hangs or
dies, scheduling goes on with the last good parameters.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
from time import perf_counter as _perf
from typing import Any, Callable

from ewsjf.bindings.base import Clock, RequestId
from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.field_checks import finite_float, short
from ewsjf_core.tuner.objective import Objective
from ewsjf_core.tuner.recorder import WindowRecorder
from ewsjf_core.tuner.runner import Tuner
from ewsjf_core.tuner.settings import TunerSettings


_base_add = EWSJFQueue.add
_log = logging.getLogger(__name__)


class TunedEWSJFQueue(EWSJFQueue):
    def __init__(self, config: EWSJFConfig | None = None, clock: Clock | None = None,
                 settings: TunerSettings | None = None, objective: Objective | None = None,
                 recorder: WindowRecorder | None = None, start: bool = False, executor: Any = None,
                 stats_every: int = 64, cost_coefficients: Callable[[], tuple] | None = None) -> None:
        super().__init__(config, clock)
        self._sim_trial_every_s: float | None = None
        self._hooked = False
        self.tuner_wall_s = 0.0                        # real seconds spent in tick() (synchronous trials)
        self.tuner_settings = settings or TunerSettings()
        self.recorder = recorder if recorder is not None else WindowRecorder()   # an empty one is falsy (len 0)
        rec = self.recorder
        if rec.clock is None:
            rec.clock = lambda: self.clock()
        self._on_arrival = rec.on_arrival
        self.on_first_token = rec.on_first_token
        self.on_finish = rec.on_finish
        self._stats_every = max(1, int(stats_every))
        self._steps = 0
        self._sample_stats = self.tuner_settings.mode == "live"
        self.stats_samples: collections.deque = collections.deque(maxlen=512)
        if objective is None:
            objective = default_objective(self.tuner_settings, self)
        self.tuner = Tuner(self, objective, self.tuner_settings, recorder=self.recorder,
                           clock=lambda: self.clock(), executor=executor, cost_coefficients=cost_coefficients)
        self._select_begin_step()
        if start:
            self.start_tuner()

    needs_request_ids = True
    """The tuner's recorder matches arrivals, first tokens and finishes by request id: drive it by id."""

    # ----- hot path additions -----
    def push(self, item: Any, *args: Any, **kwargs: Any) -> int:
        raise TypeError("TunedEWSJFQueue records arrivals by request id: use add()/prepend(), not push()")

    def add(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
            priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> None:
        depth = len(self)
        if arrival_time is None:
            arrival_time = float(self.clock())  # one reading, for the queue and the recorder alike
        _base_add(self, request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        # The request is queued now: a recorder failure must not make add() look failed (the caller would
        # retry or drop a request that is waiting). Validated fields cannot fail to record; log if they do.
        try:
            self._on_arrival(request_id, arrival_time, prompt_tokens, cached_tokens, priority, depth)
        except Exception:  # noqa: BLE001
            _log.exception("tuner recorder: arrival of request %r not recorded", request_id)

    def resize_all(self, sizes: Callable[[Any], tuple[int, int, int | None]]) -> None:
        """EWSJFQueue.resize_all (the engine's prefix cache was reset), and the recorder's rows of the requests
        still waiting take their new cached tokens (WindowRecorder.on_resize): a replay of the window would
        replay cache hits that are gone. Nothing is recorded if a size is refused (nothing changes)."""
        cached: dict[Any, int] = {}

        def sized(request_id: Any) -> tuple[int, int, int | None]:
            new = sizes(request_id)
            cached[request_id] = new[1]
            return new

        super().resize_all(sized)
        self.recorder.on_resize(cached)

    @property
    def sim_trial_every_s(self) -> float | None:
        """Virtual seconds between synchronous trials (bench); None: no synchronous driving."""
        return self._sim_trial_every_s

    @sim_trial_every_s.setter
    def sim_trial_every_s(self, value: float | None) -> None:
        self._sim_trial_every_s = value
        self._select_begin_step()

    def _select_begin_step(self) -> None:
        # The begin_step override only when it has work (live-mode sampling, or driving trials from the
        # sim without an on_step hook): otherwise the plain EWSJFQueue method, with no extra frame.
        if self._sample_stats or (self._sim_trial_every_s is not None and not self._hooked):
            self.__dict__.pop("begin_step", None)
        else:
            self.begin_step = super().begin_step

    def begin_step(self, now: float | None = None) -> None:
        super().begin_step(now)
        if self.sim_trial_every_s is not None and not self._hooked:
            self.tick(self.sim_trial_every_s)    # no on_step hook wired: drive from here (timed as hot path)
        if self._sample_stats:
            self._steps += 1
            if self._steps % self._stats_every == 0 and len(self):
                self.stats_samples.append((self.clock(), self.stats()["queues"]))

    # ----- host feedback -----
    # on_first_token(request_id, t=None) and on_finish(request_id, output_tokens, t=None) are the
    # recorder's own methods, bound in __init__ (no wrapper frame on the engine's path); t defaults to
    # the queue's clock.

    # ----- driving the tuner -----
    def start_tuner(self) -> None:
        self.tuner.start()

    def stop_tuner(self, timeout: float | None = 5.0) -> None:
        self.tuner.stop(timeout)

    def tick(self, trial_every_s: float = 0.0) -> Any:
        """One synchronous tuner step (see Tuner.tick); returns the trial record or None."""
        t0 = _perf()
        try:
            return self.tuner.tick(trial_every_s)
        finally:
            self.tuner_wall_s += _perf() - t0

    def on_sim_step(self, step: int, start_s: float, duration_s: float, prefill_tokens: int,
                    decode_tokens: int) -> None:
        """simulate()'s on_step hook: drive the tuner in virtual time, outside the queue's timed methods
        (in production the trials run in another thread/process, so they are no hot-path cost)."""
        if not self._hooked:
            self._hooked = True
            self._select_begin_step()
        if self.sim_trial_every_s is not None:
            self.tick(self.sim_trial_every_s)

    def stats(self) -> dict[str, Any]:
        s = super().stats()
        s["policy"] = "ewsjf-tuned"
        s["tuner"] = self.tuner.metrics()
        return s


def default_objective(settings: TunerSettings, queue: Any) -> Objective:
    if settings.mode == "live":
        from ewsjf_core.tuner.live import LiveObjective
        return LiveObjective(settings.weights, samples=queue.stats_samples)
    from ewsjf_core.tuner.replay import ReplayObjective
    # The candidate queue is built by the replay (in a worker process): the core never imports bindings.
    return ReplayObjective(EWSJFQueue, settings.weights)


# ----- the bench's `ewsjf-tuned` policy ----------------------------------------------------------------
BENCH_SETTINGS = TunerSettings(
    mode="replay", seed=0, window_s=120.0, min_window_requests=500, trials_per_window=8,
    retune_every_s=600.0, max_replay_requests=2000, replay_budget=1.0, guard_s=60.0, executor="thread")
"""Defaults of `ewsjf bench --policies ewsjf-tuned`: replay windows of the last 120 virtual seconds (at most
the 2,000 most recent requests with their backlog), 8 trials per window, one trial every BENCH_TRIAL_EVERY_S
virtual seconds, a new window 10 minutes after the last one at the earliest. The bench runs the trials in
line, so their work is bounded by the work of the replay they tune: after the first window, the trials
replay no more requests than the bench itself has (replay_budget=1.0, ewsjf_core/tuner/budget.py), on any
trace length or load. Override with the environment variable EWSJF_TUNER (a JSON object of TunerSettings
fields, plus "trial_every_s")."""
BENCH_TRIAL_EVERY_S = 5.0


def bench_queue(clock: Any, config: EWSJFConfig | None = None, settings: TunerSettings | None = None,
                trial_every_s: float | None = None, engine: Any = None) -> TunedEWSJFQueue:
    """Factory of the bench's `ewsjf-tuned` policy: a TunedEWSJFQueue starting from `config`, tuned
    synchronously in the sim's virtual time (deterministic). Trials run from simulate()'s on_step hook
    when the bench passes `on_step=queue.on_sim_step`, else from begin_step (then their time counts as
    scheduler time). `engine` (an ewsjf_core.sim EngineConfig, its kv_blocks resolved: with_kv_blocks) is
    the engine the bench replays on: the trials replay on it too, unless the settings name their own."""
    env_settings, env_every = bench_tuner_settings()
    settings = env_settings if settings is None else settings
    if engine is not None:
        settings = settings.on_engine(dataclasses.asdict(engine))
    q = TunedEWSJFQueue(config, clock=clock, settings=settings)
    q.sim_trial_every_s = float(trial_every_s if trial_every_s is not None else env_every)
    return q


def bench_tuner_settings() -> tuple[TunerSettings, float]:
    """BENCH_SETTINGS and BENCH_TRIAL_EVERY_S with the overrides of $EWSJF_TUNER, checked: a bad value raises a
    ValueError naming the variable and the setting (the bench calls this before any replay)."""
    raw = os.environ.get("EWSJF_TUNER", "")
    if not raw:
        return BENCH_SETTINGS, BENCH_TRIAL_EVERY_S
    try:
        overrides = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"EWSJF_TUNER is not valid JSON: {e}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"EWSJF_TUNER must be a JSON object of TunerSettings fields (and trial_every_s), "
                         f"got {short(overrides)}")
    every = overrides.pop("trial_every_s", BENCH_TRIAL_EVERY_S)
    if finite_float(every) is None or every <= 0:
        raise ValueError(f"EWSJF_TUNER: trial_every_s must be a finite number > 0, got {short(every)}")
    fields = {f.name: getattr(BENCH_SETTINGS, f.name) for f in dataclasses.fields(TunerSettings)}
    try:   # from_mapping: nested mappings ("weights": {...}) become their dataclasses
        return TunerSettings.from_mapping({**fields, **overrides}), float(every)
    except (TypeError, ValueError) as e:
        raise ValueError(f"EWSJF_TUNER: {e}") from None
