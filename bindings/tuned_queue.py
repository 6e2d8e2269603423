"""TunedEWSJFQueue: an EWSJFQueue with the Bayesian tuner attached (EWSJF.md section 4).

The queue itself is unchanged on the hot path except for three cheap additions:
- add() records the arrival (id, time, prompt and cached tokens, priority) in the tuner's recorder;
- observe_step() refreshes a cached copy of the fitted cost coefficients every `coeff_every` steps, so
  the tuner never reads the cost model from another thread;
- begin_step() (live mode only) samples stats()["queues"] every `stats_every` steps for the partition
  terms of live trials; the sampling runs on the engine thread, which owns the queue.
The host reports what it learns later with `on_first_token(id, t)` and `on_finish(id, output_tokens, t)`.

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
from typing import Any

from ewsjf.bindings.base import Clock, RequestId
from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner.objective import Objective
from ewsjf_core.tuner.recorder import WindowRecorder
from ewsjf_core.tuner.runner import Tuner
from ewsjf_core.tuner.settings import TunerSettings


class TunedEWSJFQueue(EWSJFQueue):
    def __init__(self, config: EWSJFConfig | None = None, clock: Clock | None = None,
                 settings: TunerSettings | None = None, objective: Objective | None = None,
                 recorder: WindowRecorder | None = None, start: bool = False, executor: Any = None,
                 coeff_every: int = 32, stats_every: int = 64) -> None:
        super().__init__(config, clock)
        self.tuner_settings = settings or TunerSettings()
        self.recorder = recorder or WindowRecorder()
        self._coeffs = tuple(self._cost.coefficients)
        self._coeff_every = max(1, int(coeff_every))
        self._stats_every = max(1, int(stats_every))
        self._steps = 0
        self._sample_stats = self.tuner_settings.mode == "live"
        self.stats_samples: collections.deque = collections.deque(maxlen=512)
        if objective is None:
            objective = default_objective(self.tuner_settings, self)
        self.tuner = Tuner(self, objective, self.tuner_settings, recorder=self.recorder,
                           clock=lambda: self.clock(), executor=executor,
                           cost_coefficients=lambda: self._coeffs)
        if start:
            self.start_tuner()

    # ----- hot path additions -----
    def add(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
            priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> None:
        super().add(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        self.recorder.on_arrival(request_id, self.clock() if arrival_time is None else arrival_time,
                                 prompt_tokens, cached_tokens, priority)

    def begin_step(self, now: float | None = None) -> None:
        super().begin_step(now)
        if self._sample_stats:
            self._steps += 1
            if self._steps % self._stats_every == 0 and len(self):
                self.stats_samples.append((self.clock(), self.stats()["queues"]))

    def observe_step(self, duration_s: float, prefill_tokens: int, decode_tokens: int) -> None:
        super().observe_step(duration_s, prefill_tokens, decode_tokens)
        if self._cost.steps % self._coeff_every == 0:
            self._coeffs = tuple(self._cost.coefficients)

    # ----- host feedback -----
    def on_first_token(self, request_id: RequestId, t: float | None = None) -> None:
        self.recorder.on_first_token(request_id, self.clock() if t is None else t)

    def on_finish(self, request_id: RequestId, output_tokens: int, t: float | None = None) -> None:
        self.recorder.on_finish(request_id, output_tokens, self.clock() if t is None else t)

    # ----- driving the tuner -----
    def start_tuner(self) -> None:
        self.tuner.start()

    def stop_tuner(self, timeout: float | None = 5.0) -> None:
        self.tuner.stop(timeout)

    def tick(self, trial_every_s: float = 0.0) -> Any:
        """One synchronous tuner step (see Tuner.tick); returns the trial record or None."""
        return self.tuner.tick(trial_every_s)

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
    return ReplayObjective(settings.weights)
