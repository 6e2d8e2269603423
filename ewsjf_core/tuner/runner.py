"""The tuner: proposes, scores and applies parameters, off the hot path.

One trial at a time: propose a point (optimizer.py), build the candidate config, score it with the
objective (replay or live), record it. After `trials_per_window` trials on a window, the window's best
point is applied through the queue's atomic `set_config`, if it beats the parameters in force on the same
window. The rollback guard then watches the live latency metric (mean TTFT / C_prefill of requests that
arrived after the swap, against the same figure for the `guard_s` before it) and restores the previous
parameters when it worsened by more than `rollback_threshold`.

Safety: every failure of a trial (an exception, a timeout, a dead worker) is recorded and the tuner goes
on; the queue only ever receives validated configs, and after a failed live trial (whose candidate was in
force) the last good config is restored. After `max_consecutive_failures` failures in a row the tuner
stops itself; the queue keeps serving the last good parameters either way. The tuner never holds a lock
the engine needs: the only shared objects are the recorder (its own short lock) and the queue's config
attribute (one atomic store).

Drive it either synchronously (`run_trial()`, e.g. from a simulator's step hook in virtual time) or in
the background (`start()` / `stop()`): a daemon thread that sleeps between trials so that trials take at
most `duty_cycle` of wall time.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any, Callable

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner.budget import ReplayBudget
from ewsjf_core.tuner.executor import (ExecutorBroken, ProcessExecutor, ThreadExecutor, TrialError,
                                       TrialTimeout)
from ewsjf_core.tuner.context import TrialContext, queue_cap, queue_cost_coefficients
from ewsjf_core.tuner.guard import RollbackGuard
from ewsjf_core.tuner.objective import Objective
from ewsjf_core.tuner.optimizer import propose
from ewsjf_core.tuner.recorder import WindowRecorder
from ewsjf_core.tuner.settings import MIN_GUARD_S, TunerSettings
from ewsjf_core.tuner.space import ParamSpace
from ewsjf_core.tuner.state import TrialRecord, TunerState

log = logging.getLogger("ewsjf.tuner")
MAX_PAUSE_S = 1e9
"""The longest rest between two background trials (the settings' bound on seconds): far beyond any run, and
within what threading's waits accept (about 9.2e9 s)."""


class Tuner:
    def __init__(self, queue: Any, objective: Objective, settings: TunerSettings = TunerSettings(),
                 recorder: WindowRecorder | None = None, clock: Callable[[], float] | None = None,
                 executor: Any = None, cost_coefficients: Callable[[], tuple] | None = None) -> None:
        self.queue = queue
        self.objective = objective
        self.settings = settings
        self.recorder = recorder if recorder is not None else WindowRecorder()
        if hasattr(objective, "prepare_range") and settings.min_window_requests > self.recorder.max_requests:
            # A window is at most what the recorder keeps: no window would ever open, silently.
            raise ValueError(f"TunerSettings.min_window_requests ({settings.min_window_requests}) is more than the "
                             f"recorder keeps (WindowRecorder.max_requests {self.recorder.max_requests}): "
                             f"no window could ever be replayed")
        self.clock = clock or getattr(queue, "clock", None) or time.time
        self.space = ParamSpace.from_config(queue.config)
        self._stop = threading.Event()
        self.context = TrialContext(
            clock=self.clock, recorder=self.recorder, settings=settings, config=lambda: self.queue.config,
            cost_coefficients=cost_coefficients or (lambda: queue_cost_coefficients(self.queue)),
            queue_cap=self._queue_cap(), wait=self._stop.wait,
            budget=ReplayBudget(settings.replay_budget))
        self.guard = RollbackGuard(self.context)
        if executor is None:
            use_process = (settings.executor == "process"
                           or (settings.executor == "auto" and settings.mode == "replay"
                               and not objective.in_process))
            executor = ProcessExecutor(nice=settings.worker_nice) if use_process else ThreadExecutor()
        if objective.in_process and isinstance(executor, ProcessExecutor):
            raise ValueError("this objective must run in the serving process: use a thread executor")
        self.executor = executor
        self.state = self._load_or_new()
        self._ctx: Any = None
        self._live_pending: tuple | None = None
        self._next_window_at = -math.inf
        self._incumbent_replay: tuple | None = None
        self._last_tick_trial = -math.inf
        self._last_tick_guard = -math.inf
        self._consecutive_failures = 0
        self.stopped_reason = ""
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()   # one trial at a time, whichever thread drives
        if self.state.last_good is not None:
            self._swap(self.space.to_config(self.queue.config,
                                            [self.state.last_good[n] for n in self.space.names]))
        else:
            self.state.last_good = self._in_force_mapping()

    # ----- state ---------------------------------------------------------------------------------------
    def _load_or_new(self) -> TunerState:
        s = self.settings
        path = s.state_path
        if path and os.path.exists(path):
            try:
                st = TunerState.load(path)
                if st.seed == s.seed and st.mode == s.mode and self.space.same_as(st.space):
                    st.trim(self._history_keep())
                    if not self.objective.stateless and st.window_trials():
                        st.window += 1   # the interrupted window's traffic is gone: start a new one
                        st.window_seeds = None
                    log.info("tuner resumed from %s: %d trials", path, st.trials)
                    return st
                log.warning("tuner state %s is for another seed/mode/space: starting afresh", path)
            except Exception as e:  # noqa: BLE001 - a corrupt file must not stop serving
                log.warning("tuner state %s unreadable (%s): starting afresh", path, e)
        return TunerState(seed=s.seed, mode=s.mode, space=self.space.to_dict())

    def _history_keep(self) -> int:
        """Trials the state keeps: history_limit, and at least the current window and keep_top earlier ones,
        which the next proposals read (_seed_points)."""
        s = self.settings
        return max(s.history_limit, (s.keep_top + 1) * s.trials_per_window)

    def save(self) -> None:
        if self.settings.state_path:
            try:
                self.state.save(self.settings.state_path)
            except Exception as e:  # noqa: BLE001
                log.warning("tuner state not saved: %s", e)

    def _queue_cap(self) -> float:
        """The reward's queue-count cap for the space searched (its largest max_queues, when tuned)."""
        names = self.space.names
        mq = self.space.bounds[names.index("max_queues")][1] if "max_queues" in names else None
        return queue_cap(self.queue.config, mq)

    def _follow_tune_bounds(self) -> None:
        """Search the space the config in force bounds: a host set_config may have changed tune_bounds since
        the space was built, and a window opened on the old one would propose points outside the new bounds
        (or leave out, or keep, a field the host added or removed). Called between windows only, so no
        window mixes two spaces. The trials found in the old space would mislead the new search (as a state
        file of another space does): the history and best point are dropped, the counts go on."""
        space = ParamSpace.from_config(self.queue.config)
        if space == self.space:
            return
        log.info("tuner: tune_bounds changed, the next window searches %s", space.to_dict())
        self.space = space
        self.context.queue_cap = self._queue_cap()
        st = self.state
        st.space, st.history, st.window_seeds = space.to_dict(), [], None
        st.best_point, st.best_reward = None, None
        st.last_good = self._in_force_mapping()

    def _in_force_mapping(self) -> dict[str, float]:
        return self.space.as_mapping(self.space.from_config_values(self.queue.config))

    def _swap(self, config: EWSJFConfig) -> None:
        self.queue.set_config(config)

    # ----- one trial -----------------------------------------------------------------------------------
    def _seed_points(self) -> list[list[float]]:
        """The parameters in force first, then the best points of earlier windows."""
        pts = [self.space.from_config_values(self.queue.config)]
        by_window: dict[int, TrialRecord] = {}
        for t in self.state.history:
            if t.window < self.state.window and t.status == "ok" and t.reward is not None:
                b = by_window.get(t.window)
                if b is None or t.reward > b.reward:
                    by_window[t.window] = t
        for w in sorted(by_window, reverse=True)[: self.settings.keep_top]:
            pts.append(self.space.clip(by_window[w].point))
        return pts

    def _window_seed(self) -> int:
        return int(np.random.SeedSequence([self.settings.seed & 0xFFFFFFFF, self.state.window])
                   .generate_state(1)[0])

    def run_trial(self) -> TrialRecord | None:
        """Score one candidate, blocking (and close the window when it is complete). None: nothing to do
        yet (not enough traffic recorded, or the tuner stopped)."""
        with self._lock:
            begun = self._begin()
            if begun is None:
                return None
            rec, cand, t0 = begun
            if cand is None:
                return self._end(rec, t0)
            try:
                if self.objective.applies_candidate:
                    self._swap(cand)
                out = self.executor.call(self.objective.evaluate, self._ctx, cand,
                                         timeout=self.settings.trial_timeout_s
                                         + (self.settings.live_trial_s if self.objective.applies_candidate
                                            else 0.0))
                self._score(rec, out)
                self.context.budget.charge(out.get("metrics", {}).get("replayed_requests", 0))
                seeds = self.state.window_seeds
                if ("fresh_ttft" in out and seeds
                        and np.allclose(self.space.clip(rec.point), self.space.clip(seeds[0]), rtol=1e-9, atol=0)):
                    self._incumbent_replay = (out["fresh_ttft"], getattr(self._ctx, "info", {}))
            except Exception as e:  # noqa: BLE001 - any failure keeps the last good parameters
                self._fail(rec, e)
            return self._end(rec, t0)

    def _begin(self) -> tuple[TrialRecord, EWSJFConfig | None, float] | None:
        """Propose the next candidate: (record, candidate config or None if proposing failed, start)."""
        if self.stopped_reason:
            return None
        if self._ctx is None:
            if self.clock() < self._next_window_at:
                return None
            self._follow_tune_bounds()
            try:
                self._ctx = self.objective.prepare(self.context)
            except Exception as e:  # noqa: BLE001
                log.warning("tuner could not prepare a window: %s", e)
                self._ctx = None
            if self._ctx is None:
                return None
        st = self.state
        if st.window_seeds is None or not st.window_trials():
            st.window_seeds = self._seed_points()
        done = [t for t in st.window_trials() if t.status == "ok" and t.reward is not None]
        t0 = time.monotonic()
        rec = TrialRecord(trial=st.trials + 1, window=st.window, point=[], reward=None)
        try:
            point = self.executor.call(propose, self.space, self._window_seed(), [t.point for t in done],
                                       [t.reward for t in done], st.window_seeds, self.settings.optimizer,
                                       timeout=self.settings.trial_timeout_s)
            rec.point = [float(v) for v in point]
            return rec, self.space.to_config(self.queue.config, point), t0
        except Exception as e:  # noqa: BLE001
            self._fail(rec, e)
            return rec, None, t0

    def _score(self, rec: TrialRecord, out: dict[str, Any]) -> None:
        r = float(out["reward"])
        if not math.isfinite(r):
            raise TrialError(f"objective returned a non-finite reward {r!r}")
        rec.reward = r
        rec.terms = {k: float(v) for k, v in out.get("terms", {}).items()}
        rec.metrics = {k: float(v) for k, v in out.get("metrics", {}).items()}
        self._consecutive_failures = 0

    def _fail(self, rec: TrialRecord, e: BaseException) -> None:
        if rec.status != "ok":
            return                      # already failed (proposal)
        rec.reward = None
        rec.status = "timeout" if isinstance(e, TrialTimeout) else "error"
        rec.error = str(e)[-2000:]
        self.state.failures += 1
        self._consecutive_failures += 1
        log.warning("tuner trial %d failed: %s", rec.trial, (str(e).splitlines() or [repr(e)])[0])
        if isinstance(e, ExecutorBroken):
            self.stopped_reason = f"executor broken: {e}"
        elif self._consecutive_failures >= self.settings.max_consecutive_failures:
            self.stopped_reason = f"{self._consecutive_failures} consecutive failed trials"

    def _end(self, rec: TrialRecord, t0: float) -> TrialRecord:
        rec.seconds = time.monotonic() - t0
        if self.objective.applies_candidate:
            self._restore_last_good()   # the candidate served its trial; the good parameters return
        st = self.state
        st.add_trial(rec, self._history_keep())
        if len(st.window_trials()) >= self.settings.trials_per_window:
            self._close_window()
        self.save()
        return rec

    def _restore_last_good(self) -> None:
        lg = self.state.last_good
        if lg is not None:
            try:
                self._swap(self.space.to_config(self.queue.config, [lg[n] for n in self.space.names]))
            except Exception as e:  # noqa: BLE001
                log.error("tuner could not restore last good parameters: %s", e)

    def _close_window(self) -> None:
        st = self.state
        ok = [t for t in st.window_trials() if t.status == "ok" and t.reward is not None]
        self._ctx = None
        self._next_window_at = self.clock() + self.settings.retune_every_s
        seeds = st.window_seeds
        st.window += 1
        st.window_seeds = None
        if not ok:
            return
        best = max(ok, key=lambda t: t.reward)
        start = self.space.clip(seeds[0]) if seeds else None
        incumbent = [t for t in ok
                     if start is not None and np.allclose(self.space.clip(t.point), start, rtol=1e-9, atol=0.0)]
        inc_reward = max(t.reward for t in incumbent) if incumbent else -math.inf
        st.best_point, st.best_reward = list(best.point), best.reward
        if best.reward > inc_reward + self.settings.improve_margin:
            self._apply(best)
        self._incumbent_replay = None

    def _apply(self, rec: TrialRecord) -> None:
        """Swap the winner in and arm the rollback guard (guard.py says what it watches)."""
        previous = self.queue.config
        cand = self.space.to_config(previous, rec.point)
        now = self.clock()
        incumbent = self._incumbent_replay if hasattr(self.objective, "prepare_range") else None
        armed = self.guard.arm(rec, previous, now, incumbent)
        self._swap(cand)
        self.state.applied += 1
        rec.metrics["applied"] = 1.0
        rec.metrics["applied_at"] = float(now)
        log.info("tuner applied trial %d: %s (reward %.4g)", rec.trial, self.space.as_mapping(rec.point),
                 rec.reward)
        if not armed:   # too little recent traffic to judge the swap against: it is the new last good
            self.state.last_good = self._in_force_mapping()

    def _replay_guard_period(self, start: float, now: float) -> list[float] | None:
        """The guard period's requests replayed under the parameters in force (replay objectives)."""
        prepared = self.objective.prepare_range(self.context, start, now)
        if prepared is None:
            return None
        out = self.executor.call(self.objective.evaluate, prepared, self.queue.config,
                                 timeout=self.settings.trial_timeout_s)
        self.context.budget.charge(out.get("metrics", {}).get("replayed_requests", 0))
        return out["fresh_ttft"]

    # ----- rollback guard ------------------------------------------------------------------------------
    def check_guard(self, force: bool = False) -> str | None:
        """Judge a pending swap once `guard_s` has passed (or now, with force): 'kept' or 'rolled_back';
        None when there is nothing to judge yet."""
        g = self.guard.pending
        if g is None:
            return None
        now = self.clock()
        if not force and now - g.swapped_at < self.settings.guard_s:
            return None
        raw_after = math.nan
        try:
            after, n, raw_after = self.guard.figure(g, now, self._replay_guard_period)
        except Exception as e:  # noqa: BLE001 - cannot judge: keep the swap (the replay chose it)
            log.warning("tuner guard could not judge trial %d: %s", g.record.trial, e)
            after, n = math.nan, 0
        if n < self.settings.rollback_min_samples and not force:
            if now - g.swapped_at < 4 * self.settings.guard_s:
                return None            # too little traffic yet: keep watching a while
        self.guard.pending = None
        with self._lock:
            if self.guard.worse(g, after, n, raw_after):
                # The tuned parameters go back; what the host set since the swap (other fields) stays.
                self._swap(self.space.to_config(self.queue.config, self.space.from_config_values(g.previous)))
                g.record.status = "rolled_back"
                self.state.rollbacks += 1
                self.state.best_point, self.state.best_reward = None, None
                log.warning("tuner rolled back trial %d: guard figure %.3g -> %.3g (%s)", g.record.trial,
                            g.baseline, after, "live/replay" if g.normalized else "live TTFT/C_prefill")
                verdict = "rolled_back"
            else:
                self.state.last_good = self._in_force_mapping()
                verdict = "kept"
            self.save()
            return verdict

    def tick(self, min_interval: float = 0.0) -> TrialRecord | None:
        """Synchronous driving (a simulator's step hook, in its virtual clock): judge a pending swap;
        otherwise run a trial if `min_interval` clock seconds passed since the last one began (a pending
        swap is judged at that pace too). Live
        trials are two-phase here: the candidate goes in force at one tick and is scored at the first
        tick `live_trial_s` later, so traffic flows in between. Returns the finished trial or None."""
        now = self.clock()
        pending = self._live_pending
        if pending is not None:
            rec, cand, t0, c0 = pending
            if now - c0 < self.settings.live_trial_s:
                return None
            self._live_pending = None
            with self._lock:
                try:
                    self._score(rec, self.objective.score(self.context, c0, now))
                except Exception as e:  # noqa: BLE001
                    self._fail(rec, e)
                return self._end(rec, t0)
        if now - self._last_tick_guard >= min_interval:
            # Judged at the trials' pace, not every host step: a judgement snapshots the recorder and
            # (replay objectives) replays the guard period, which may not have enough traffic yet.
            self._last_tick_guard = now
            self.check_guard()
        if self.guard.pending is not None or self.stopped_reason:
            return None
        if now - self._last_tick_trial < min_interval:
            return None
        self._last_tick_trial = now          # an attempt (even one that finds no window) waits min_interval
        if not self.objective.applies_candidate:
            return self.run_trial()
        with self._lock:
            begun = self._begin()
            if begun is None:
                return None
            rec, cand, t0 = begun
            self._last_tick_trial = now
            if cand is None:
                return self._end(rec, t0)
            try:
                self._swap(cand)
            except Exception as e:  # noqa: BLE001
                self._fail(rec, e)
                return self._end(rec, t0)
            self._live_pending = (rec, cand, t0, now)
            return None

    # ----- background thread ---------------------------------------------------------------------------
    def start(self) -> "Tuner":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ewsjf-tuner", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.executor.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        s = self.settings
        idle = max(min(1.0, s.guard_s / 4), MIN_GUARD_S)
        while not self._stop.is_set():
            try:
                self.check_guard()
                if self.guard.pending is not None:   # no new trials while a swap is judged
                    self._stop.wait(idle)
                    continue
                if self.stopped_reason:
                    log.error("tuner stopped: %s (parameters in force kept)", self.stopped_reason)
                    return
                t0 = time.monotonic()
                rec = self.run_trial()
                spent = time.monotonic() - t0
                if rec is None:
                    self._stop.wait(idle)
                    continue
                busy = spent if not self.objective.applies_candidate else spent - s.live_trial_s
                self._stop.wait(self.pause_after(busy))
            except Exception as e:  # noqa: BLE001 - the tuner must never take the server down
                log.exception("tuner loop error: %s", e)
                self._consecutive_failures += 1
                if self._consecutive_failures >= s.max_consecutive_failures:
                    self.stopped_reason = f"loop errors: {e}"
                self._stop.wait(idle)

    def pause_after(self, busy_s: float) -> float:
        """Seconds the background loop rests after a trial that kept it busy `busy_s`: trial_interval_s at
        least, and long enough that trials take at most duty_cycle of wall time; at most MAX_PAUSE_S (a tiny
        duty cycle asked for more than Event.wait accepts, and its OverflowError counted as a loop error)."""
        s = self.settings
        pause = max(s.trial_interval_s, max(busy_s, 0.0) * (1.0 - s.duty_cycle) / s.duty_cycle)
        return min(pause, MAX_PAUSE_S)

    # ----- visibility ----------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        st = self.state
        return {"mode": self.settings.mode, "trials": st.trials, "window": st.window,
                "window_trials": len(st.window_trials()), "applied": st.applied,
                "rollbacks": st.rollbacks, "failures": st.failures, "best_reward": st.best_reward,
                "params": self._in_force_mapping(), "last_good": st.last_good,
                "guard_pending": self.guard.pending is not None, "running": self.running,
                "stopped": self.stopped_reason, "replayed_requests": self.context.budget.replayed,
                "windows_refused_by_budget": self.context.budget.refused, **self.context.counters}
