"""The tuner's persistent state: every trial (history), the best point, the parameters last known good.

Saved as JSON (atomically: written to a temporary file in the same folder, then renamed over the old
one), so a restarted tuner resumes: it re-applies `last_good` and, since proposals are a pure function of
the seed and the history (optimizer.py), continues exactly where it stopped. A file written for another
parameter space (different names or bounds) is not resumed: its history would mislead the surrogate.
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
    def from_json(cls, d: dict[str, Any]) -> "TrialRecord":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class TunerState:
    seed: int
    mode: str
    space: dict[str, list[float]]          # ParamSpace.to_dict()
    history: list[TrialRecord] = field(default_factory=list)
    window: int = 0                        # current window index
    window_seeds: list[list[float]] | None = None   # the current window's fixed first points
    best_point: list[float] | None = None  # best scored point of the latest window with a winner
    best_reward: float | None = None
    last_good: dict[str, float] | None = None   # tuned fields of the config in force, known good
    applied: int = 0                       # parameter swaps done
    rollbacks: int = 0
    failures: int = 0

    @property
    def trials(self) -> int:
        return len(self.history)

    def window_trials(self, window: int | None = None) -> list[TrialRecord]:
        w = self.window if window is None else window
        return [t for t in self.history if t.window == w]

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "seed": self.seed, "mode": self.mode, "space": self.space,
                "history": [t.to_json() for t in self.history], "window": self.window,
                "window_seeds": self.window_seeds,
                "best_point": self.best_point, "best_reward": _finite_or_none(self.best_reward),
                "last_good": self.last_good, "applied": self.applied, "rollbacks": self.rollbacks,
                "failures": self.failures}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TunerState":
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"tuner state version {d.get('version')!r}, expected {STATE_VERSION}")
        return cls(seed=int(d["seed"]), mode=str(d["mode"]), space=d["space"],
                   history=[TrialRecord.from_json(t) for t in d.get("history", [])],
                   window=int(d.get("window", 0)), window_seeds=d.get("window_seeds"), best_point=d.get("best_point"),
                   best_reward=d.get("best_reward"), last_good=d.get("last_good"),
                   applied=int(d.get("applied", 0)), rollbacks=int(d.get("rollbacks", 0)),
                   failures=int(d.get("failures", 0)))

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
