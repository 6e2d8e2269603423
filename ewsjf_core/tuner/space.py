"""The tuned parameter space: which EWSJFConfig fields the tuner moves, and within which bounds.

theta = (a_u, b_u, a_f, b_f, alpha) always; w_base and max_queues only when EWSJFConfig.tune_bounds names
them. Bounds come from EWSJFConfig.tune_bounds. max_queues is an integer dimension, the rest are real.
A point is a plain list of numbers in `ParamSpace.names` order (that is what scikit-optimize and the JSON
state hold); `to_config` turns one into a validated EWSJFConfig.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ewsjf_core.config import THETA_FIELDS, EWSJFConfig

OPTIONAL_FIELDS = ("w_base", "max_queues")
INTEGER_FIELDS = frozenset({"max_queues"})


@dataclass(frozen=True)
class ParamSpace:
    names: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]

    @classmethod
    def from_config(cls, config: EWSJFConfig) -> "ParamSpace":
        """theta's five fields (each must have bounds) plus any optional field tune_bounds names."""
        tb = dict(config.tune_bounds)
        missing = [n for n in THETA_FIELDS if n not in tb]
        if missing:
            raise ValueError(f"EWSJFConfig.tune_bounds lacks bounds for {', '.join(missing)}")
        names = THETA_FIELDS + tuple(n for n in OPTIONAL_FIELDS if n in tb)
        bounds = []
        for n in names:
            lo, hi = (float(v) for v in tb[n])
            if n in INTEGER_FIELDS:
                lo, hi = float(math.ceil(lo)), float(math.floor(hi))
                if lo < 1 or hi <= lo:
                    raise ValueError(f"tune_bounds[{n!r}] must hold at least two integers >= 1")
            bounds.append((lo, hi))
        return cls(tuple(names), tuple(bounds))

    def to_dict(self) -> dict[str, list[float]]:
        return {n: [lo, hi] for n, (lo, hi) in zip(self.names, self.bounds)}

    def dimensions(self) -> list[Any]:
        """scikit-optimize dimensions (imported lazily: skopt is heavy and only the tuner needs it)."""
        from skopt.space import Integer, Real
        return [Integer(int(lo), int(hi), name=n) if n in INTEGER_FIELDS else Real(lo, hi, name=n)
                for n, (lo, hi) in zip(self.names, self.bounds)]

    def clip(self, point: Sequence[float]) -> list[float]:
        """The point moved inside the bounds (integers rounded): a config outside them is tuned from its
        nearest legal point."""
        if len(point) != len(self.names):
            raise ValueError(f"point has {len(point)} values, the space {len(self.names)} ({self.names})")
        out: list[float] = []
        for n, v, (lo, hi) in zip(self.names, point, self.bounds):
            v = min(max(float(v), lo), hi)
            out.append(int(round(v)) if n in INTEGER_FIELDS else v)
        return out

    def from_config_values(self, config: EWSJFConfig) -> list[float]:
        """The config's current values of the tuned fields, clipped into the bounds."""
        return self.clip([getattr(config, n) for n in self.names])

    def as_mapping(self, point: Sequence[float]) -> dict[str, float]:
        return {n: (int(v) if n in INTEGER_FIELDS else float(v)) for n, v in zip(self.names, point)}

    def to_config(self, base: EWSJFConfig, point: Sequence[float]) -> EWSJFConfig:
        """base with the tuned fields set to `point` (validated by EWSJFConfig). Lowering max_queues below
        the number of initial_edges would be invalid, so initial_edges are then trimmed to fit."""
        changes: dict[str, Any] = self.as_mapping(self.clip(point))
        mq = changes.get("max_queues")
        if mq is not None and len(base.initial_edges) > mq:
            changes["initial_edges"] = tuple(base.initial_edges[:mq])
        return base.replace(**changes)

    def same_as(self, other: Mapping[str, Sequence[float]]) -> bool:
        """True when a saved space (to_dict form) has the same names and bounds."""
        return {k: [float(x) for x in v] for k, v in other.items()} == self.to_dict()
