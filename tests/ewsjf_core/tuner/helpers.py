"""Shared helpers of the tuner tests: a known synthetic objective and a minimal host queue."""

from __future__ import annotations

import time

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner import ParamSpace

SPACE = ParamSpace.from_config(EWSJFConfig())
# The known optimum, inside the default bounds.
OPTIMUM = {"a_u": 2.0e-3, "b_u": 1.5, "a_f": 3.0e-4, "b_f": 0.3, "alpha": 6.0}
POOR = {"a_u": 5.0e-3, "b_u": 0.0, "a_f": 1.0e-3, "b_f": 1.0, "alpha": 2.0}


def quadratic(values) -> float:
    """-(squared distance to OPTIMUM), each coordinate scaled to its bounds: max 0 at the optimum."""
    total = 0.0
    for n, (lo, hi) in zip(SPACE.names, SPACE.bounds):
        total += ((values[n] - OPTIMUM[n]) / (hi - lo)) ** 2
    return -total


def raising(values) -> float:
    raise RuntimeError("objective exploded")


def hanging(values) -> float:
    time.sleep(30)
    return 0.0


class FakeQueue:
    """The part of the host queue the tuner touches: config, set_config, clock."""

    def __init__(self, config: EWSJFConfig | None = None, clock=None) -> None:
        self._config = config or EWSJFConfig()
        self.clock = clock or time.monotonic
        self.swaps = 0

    @property
    def config(self) -> EWSJFConfig:
        return self._config

    def set_config(self, config: EWSJFConfig) -> None:
        self._config = config
        self.swaps += 1


def poor_config() -> EWSJFConfig:
    return EWSJFConfig().replace(**POOR)


def point_of(config: EWSJFConfig) -> list[float]:
    return SPACE.from_config_values(config)


def close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))
