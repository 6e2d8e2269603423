"""Checks of a frozen dataclass's numeric fields against their bounds, shared by every settings class.

A config file or keyword yields Python ints and floats; anything else (a str, a bool, an int beyond float's
range, NaN) or a value out of bounds raises ValueError naming the class and the field. The upper bounds
callers give are sanity limits, far beyond any useful value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


def is_int_or_float(v: object) -> bool:
    """A Python int or float (bool excluded): what a config file or keyword yields (is_real takes numpy scalars
    too)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_integer(v: object) -> bool:
    """Any integer, numpy scalars included, but not a bool: what the host API and the simulator take as a count
    or an id."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v: object) -> bool:
    """Any real number, numpy scalars included, but not a bool: what the host API and the simulator's engine
    settings take."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


@dataclass(frozen=True)
class FloatBounds:
    low: float
    high: float
    low_inclusive: bool = True
    allow_inf: bool = False   # math.inf accepted besides [low, high] (max_wait: no bound)

    def contains(self, v: float) -> bool:
        if self.allow_inf and v == math.inf:
            return True
        return (v >= self.low if self.low_inclusive else v > self.low) and v <= self.high

    def describe(self) -> str:
        lo = f"{'>=' if self.low_inclusive else '>'} {self.low:g}"
        return f"{lo} and <= {self.high:g}" + (" (or inf)" if self.allow_inf else "")


def check_int(obj: Any, name: str, low: int, high: int) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ValueError(f"{type(obj).__name__}.{name} must be an integer in [{low}, {high}], got {short(v)}")


def as_float(v: object) -> float:
    """v as a float where it is a Python int or float that a float can hold; NaN otherwise (a str, a bool, an
    int beyond float's range: no bound contains NaN)."""
    if not is_int_or_float(v):
        return math.nan
    try:
        return float(v)
    except OverflowError:
        return math.nan


def finite_float(v: object) -> float | None:
    """float(v) if v is a finite real number, numpy scalars included (is_real); None otherwise, an int beyond
    float's range included (no OverflowError)."""
    if not is_real(v):
        return None
    try:
        f = float(v)
    except (OverflowError, ValueError, TypeError):
        return None
    return f if math.isfinite(f) else None


def check_float(obj: Any, name: str, bounds: FloatBounds) -> None:
    """Check the field and store it as a float (an int from a file becomes 2.0)."""
    v = getattr(obj, name)
    f = as_float(v)
    if math.isnan(f) or not bounds.contains(f):
        raise ValueError(f"{type(obj).__name__}.{name} must be a number {bounds.describe()}, got {short(v)}")
    object.__setattr__(obj, name, f)


def check_choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    v = getattr(obj, name)
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{type(obj).__name__}.{name} must be one of {choices}, got {short(v)}")


def short(v: object) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:40] + f"... ({len(r)} chars)"
