"""Argument value types of `ewsjf bench`: each parses one option's text or raises ArgumentTypeError
(argparse turns that into a one-line usage error naming the option)."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal, InvalidOperation
from typing import Callable

from .trace_input import MAX_ARRIVAL_S, MAX_TOKENS

MAX_LOADS = 100
"""Most loads in one --sweep (each load replays every policy): more is a typo, and 1:1e9:1e-6 would hang."""

INT32_MAX = 2 ** 31 - 1


def int_in(lo: int, hi: int = INT32_MAX) -> Callable[[str], int]:
    """An integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {text[:40]}")
        return v
    parse.__name__ = "integer"
    return parse


def divisor_of(n: int) -> Callable[[str], int]:
    """An integer that divides n (a KV block size: the prefix blocks of n tokens are whole blocks)."""
    def parse(text: str) -> int:
        v = int_in(1, n)(text)
        if n % v:
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            raise argparse.ArgumentTypeError(f"expected a divisor of {n} ({', '.join(map(str, divisors))}), "
                                             f"got {text[:40]}")
        return v
    parse.__name__ = "integer"
    return parse


def int_list(what: str, lo: int, hi: int) -> Callable[[str], list[int]]:
    """A comma list of distinct integers in [lo, hi], at least one (`what` names them in errors)."""
    def parse(text: str) -> list[int]:
        try:
            vals = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma list of {what}, got {text[:40]!r}") from None
        if not vals or any(not lo <= v <= hi for v in vals):
            raise argparse.ArgumentTypeError(f"{what} must be in [{lo}, {hi}], got {text[:40]!r}")
        if len(set(vals)) != len(vals):   # each would be measured twice
            raise argparse.ArgumentTypeError(f"a value appears twice in {text[:40]!r}")
        return vals
    parse.__name__ = what
    return parse


def positive_float(allow_inf: bool = False, hi: float = math.inf, lo: float = 0.0) -> Callable[[str], float]:
    """A number > 0 (and >= lo when lo > 0, and <= hi), finite unless allow_inf; never NaN."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if math.isinf(v) and allow_inf and v > 0:
            return v
        if not (math.isfinite(v) and 0 < v <= hi and v >= lo):
            low = f">= {lo:g}" if lo > 0 else "> 0"
            bound = f" and <= {hi:g}" if math.isfinite(hi) else ""
            raise argparse.ArgumentTypeError(f"expected a finite number {low}{bound}, got {text!r}")
        return v
    parse.__name__ = "number"
    return parse


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    return _fraction(text, 1.0, "[0, 1]")


def fraction_below_one(text: str) -> float:
    """A number in [0, 1)."""
    return _fraction(text, math.nextafter(1.0, 0.0), "[0, 1)")


def _fraction(text: str, hi: float, interval: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= v <= hi:
        raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
    return v


def _decimal(text: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not d.is_finite() or d <= 0 or not 0 < float(d) < math.inf:
        raise argparse.ArgumentTypeError(f"loads must be finite numbers > 0, got {text!r}")
    return d


def load_range(text: str) -> list[float]:
    """START:STOP:STEP, inclusive, computed in decimal so each load keeps the digits it was given
    (0.045:0.055:0.005 gives 0.045, 0.05, 0.055; floats would give 0.049999...)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP or a comma list, got {text!r}")
    start, stop, step = (_decimal(x) for x in parts)
    if stop < start:
        raise argparse.ArgumentTypeError(f"expected START <= STOP, got {text!r}")
    n = int((stop - start) / step) + 1
    if n > MAX_LOADS:
        raise argparse.ArgumentTypeError(f"{text!r} gives {n} loads; at most {MAX_LOADS} per sweep")
    return [float(start + i * step) for i in range(n)]


def loads(text: str) -> list[float]:
    """A load sweep: START:STOP:STEP or a comma list of distinct loads."""
    vals = load_range(text) if ":" in text else [float(_decimal(x)) for x in text.split(",") if x.strip()]
    if not vals:
        raise argparse.ArgumentTypeError(f"expected at least one load, got {text!r}")
    if len(vals) > MAX_LOADS:
        raise argparse.ArgumentTypeError(f"{len(vals)} loads; at most {MAX_LOADS} per sweep")
    if len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError(f"a load appears twice in {text!r}")
    return vals


def window(text: str) -> tuple[float, float]:
    """START:END seconds with 0 <= START < END (END may be inf: to the end of the trace)."""
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END seconds, got {text!r}") from None
    if not (0 <= a <= MAX_ARRIVAL_S) or math.isnan(b) or b <= a:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < END seconds (START finite), got {text!r}")
    return a, b


def edges(text: str) -> tuple[int, int]:
    """SHORT_MAX,MEDIUM_MAX prompt tokens, increasing."""
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SHORT_MAX,MEDIUM_MAX tokens, got {text!r}") from None
    if not 0 < a < b <= MAX_TOKENS:
        raise argparse.ArgumentTypeError(f"class edges must be increasing, > 0 and <= {MAX_TOKENS}, got {text!r}")
    return a, b


def names(option: str, allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """A comma list of distinct names from `allowed`, at least one."""
    def parse(text: str) -> list[str]:
        vals = [x.strip() for x in text.split(",") if x.strip()]
        if not vals:
            raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(allowed)}, got {text!r}")
        for v in vals:
            if v not in allowed:
                raise argparse.ArgumentTypeError(f"unknown {option} {v!r}: use {', '.join(allowed)}")
        if len(set(vals)) != len(vals):
            raise argparse.ArgumentTypeError(f"a name appears twice in {text!r}")
        return vals
    parse.__name__ = option
    return parse
