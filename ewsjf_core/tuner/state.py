"""The tuner's persistent state: the recent trials (history), the best point, the parameters last known good.

Saved as JSON (atomically: written to a temporary file in the same folder, then renamed over the old
one), so a restarted tuner resumes: it re-applies `last_good` and, since proposals are a pure function of
the seed and the history (optimizer.py), continues exactly where it stopped. A file written for another
parameter space (different names or bounds) is not resumed: its history would mislead the surrogate.

The history keeps the newest trials only (add_trial's `keep`; the runner keeps at least what its next
proposals read: the current window and the windows its seed points come from). A tuner serving for weeks
runs a trial every minute or so; kept whole, its history grew without bound, and so did every save (the
whole file, after each trial) and every scan of it. `trials` counts every trial of the tuner's life.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass
class TrialRecord:
    trial: int                     # 1-based, over the tuner's whole life
    window: int                    # replay window (or live epoch) the trial was scored on
    point: list[float]             # in ParamSpace.names order
    reward: float | None           # None: the trial failed (raised, timed out)
    terms: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = "ok"             # ok | error | timeout | rolled_back
    error: str = ""
    seconds: float = 0.0           # wall time of the trial

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["reward"] = _finite_or_none(self.reward)
        d["terms"] = {k: _finite_or_none(v) for k, v in self.terms.items()}
        d["metrics"] = {k: _finite_or_none(v) for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_json(cls, d: Any) -> "TrialRecord":
        """From to_json's form; ValueError (naming the field) on missing keys, wrong types or NaN."""
        if not isinstance(d, dict):
            raise ValueError(f"a history entry must be an object, got {type(d).__name__}")
        return cls(trial=_int(d, "trial"), window=_int(d, "window"), point=_numbers(d.get("point"), "point"),
                   reward=_finite_or_none_checked(d.get("reward"), "reward"),
                   terms=_number_map(d.get("terms", {}), "terms"), metrics=_number_map(d.get("metrics", {}), "metrics"),
                   status=_str(d.get("status", "ok"), "status"), error=_str(d.get("error", ""), "error"),
                   seconds=_finite(d.get("seconds", 0.0), "seconds"))


@dataclass
class TunerState:
    seed: int
    mode: str
    space: dict[str, list[float]]          # ParamSpace.to_dict()
    history: list[TrialRecord] = field(default_factory=list)   # the newest trials, oldest first
    window: int = 0                        # current window index
    window_seeds: list[list[float]] | None = None   # the current window's fixed first points
    best_point: list[float] | None = None  # best scored point of the latest window with a winner
    best_reward: float | None = None
    last_good: dict[str, float] | None = None   # tuned fields of the config in force, known good
    applied: int = 0                       # parameter swaps done
    rollbacks: int = 0
    failures: int = 0
    trials: int = 0                        # trials run over the tuner's whole life (history keeps the newest)

    def add_trial(self, rec: TrialRecord, keep: int) -> None:
        """Record a finished trial; the history then keeps its newest `keep` trials (at least this one)."""
        self.history.append(rec)
        self.trials = max(self.trials, rec.trial)
        self.trim(keep)

    def trim(self, keep: int) -> None:
        """Drop all but the newest `keep` trials (at least one) from the history."""
        excess = len(self.history) - max(1, keep)
        if excess > 0:
            del self.history[:excess]

    def window_trials(self, window: int | None = None) -> list[TrialRecord]:
        w = self.window if window is None else window
        return [t for t in self.history if t.window == w]

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "seed": self.seed, "mode": self.mode, "space": self.space,
                "history": [t.to_json() for t in self.history], "window": self.window,
                "window_seeds": self.window_seeds,
                "best_point": self.best_point, "best_reward": _finite_or_none(self.best_reward),
                "last_good": self.last_good, "applied": self.applied, "rollbacks": self.rollbacks,
                "failures": self.failures, "trials": self.trials}

    @classmethod
    def from_json(cls, d: Any) -> "TunerState":
        """From to_json's form. Valid JSON with wrong content (a missing key, a wrong type, NaN, a point of
        the wrong length) raises ValueError naming the field: the tuner then warns and starts afresh."""
        if not isinstance(d, dict):
            raise ValueError(f"tuner state must be a JSON object, got {type(d).__name__}")
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"tuner state version {d.get('version')!r}, expected {STATE_VERSION}")
        space = d.get("space")
        if not isinstance(space, dict) or not space:
            raise ValueError("tuner state: space must be a non-empty object")
        for name, b in space.items():
            if len(_numbers(b, f"space[{name!r}]")) != 2:
                raise ValueError(f"tuner state: space[{name!r}] must be [low, high]")
        dims = len(space)
        history = d.get("history", [])
        if not isinstance(history, list):
            raise ValueError("tuner state: history must be a list")
        records = [TrialRecord.from_json(t) for t in history]
        newest = max((r.trial for r in records), default=0)
        trials = _int(d, "trials", newest)   # files written before the count was kept: the newest trial's number
        if trials < newest:
            raise ValueError(f"tuner state: trials ({trials}) is below the newest trial's number ({newest})")
        seeds = d.get("window_seeds")
        if seeds is not None:
            if not isinstance(seeds, list):
                raise ValueError("tuner state: window_seeds must be a list of points or null")
            seeds = [_point(p, "window_seeds", dims) for p in seeds]
        best = d.get("best_point")
        last_good = d.get("last_good")
        if last_good is not None:
            if not isinstance(last_good, dict) or set(last_good) != set(space):
                raise ValueError(f"tuner state: last_good must map exactly the space's fields {sorted(space)}")
            last_good = {k: _finite(v, f"last_good[{k!r}]") for k, v in last_good.items()}
        return cls(seed=_int(d, "seed"), mode=_str(d.get("mode"), "mode"), space=space, history=records,
                   window=_int(d, "window", 0), window_seeds=seeds,
                   best_point=None if best is None else _point(best, "best_point", dims),
                   best_reward=_finite_or_none_checked(d.get("best_reward"), "best_reward"),
                   last_good=last_good, applied=_int(d, "applied", 0), rollbacks=_int(d, "rollbacks", 0),
                   failures=_int(d, "failures", 0), trials=trials)

    def save(self, path: str | os.PathLike[str]) -> None:
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tuner-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=1, allow_nan=False)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TunerState":
        with open(path) as f:
            return cls.from_json(json.load(f))


def _finite_or_none(v: Any) -> Any:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ----- validation of a loaded file (each raises ValueError naming the field) -----
_MISSING = object()


def _int(d: dict[str, Any], key: str, default: Any = _MISSING) -> int:
    v = d.get(key, default)
    if v is _MISSING:
        raise ValueError(f"tuner state: missing {key!r}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"tuner state: {key} must be an integer, got {v!r}")
    return v


def _str(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"tuner state: {key} must be a string, got {v!r}")
    return v


def _finite(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"tuner state: {key} must be a number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"tuner state: {key} must be finite, got {v!r}")
    return f


def _finite_or_none_checked(v: Any, key: str) -> float | None:
    return None if v is None else _finite(v, key)


def _numbers(v: Any, key: str) -> list[float]:
    if not isinstance(v, list):
        raise ValueError(f"tuner state: {key} must be a list of numbers, got {v!r}")
    return [_finite(x, key) for x in v]


def _point(v: Any, key: str, dims: int) -> list[float]:
    p = _numbers(v, key)
    if len(p) != dims:
        raise ValueError(f"tuner state: {key} has {len(p)} values, the space {dims}")
    return p


def _number_map(v: Any, key: str) -> dict[str, float]:
    if not isinstance(v, dict):
        raise ValueError(f"tuner state: {key} must be an object, got {v!r}")
    return {str(k): _finite_or_none_checked(x, f"{key}[{k!r}]") for k, x in v.items()}
