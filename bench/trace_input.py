"""Reading untrusted trace files: bounded line reads, field parsing with limits, errors naming file and line.

A trace file may be anything a user points at (a device such as /dev/zero, a binary file, a file without a
newline, numbers beyond int64): every failure is a `TraceError` naming the file (and line), never a bare
exception or an unbounded read.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

MAX_LINE_CHARS = 1 << 24
"""Longest line read from a trace (16 Mi characters: a Mooncake line of a million-token prompt holds
~2,000 hash ids, ~20 KB). A longer "line" is a binary file or a device, and is refused."""

MAX_TOKENS = 2 ** 31 - 1
"""Most tokens in one prompt or output: engines index token positions with 32-bit integers."""

MAX_PRIORITY = 2 ** 62
"""Priorities lie in [-MAX_PRIORITY, MAX_PRIORITY]: int64 with headroom for the queues' arithmetic."""

MAX_REQUESTS = 10 ** 8
"""Most requests drawn for one workload (a few GB of arrays): more is a typo, not a benchmark."""

MAX_ARRIVAL_S = float(2 ** 33)
"""Latest arrival time, seconds after the trace's start (~272 years): below it a float64 clock keeps better
than 2 us resolution, so step times of microseconds still add up. Beyond it a replay is silently wrong."""


class TraceError(ValueError):
    """A trace file is malformed; the message names the file and the line."""


def check_regular_file(path, what: str = "trace file") -> None:
    """A readable regular file (not a directory, device, FIFO) or TraceError naming it."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise TraceError(f"{p}: no such {what}")
    if not os.path.isfile(p):
        raise TraceError(f"{p}: not a regular file (the {what} must be a file, not a directory or a device)")
    if not os.access(p, os.R_OK):
        raise TraceError(f"{p}: cannot read (permission denied)")


def text_lines(path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, str]]:
    """(line number, text) of a regular text file, each line read with a bounded read."""
    check_regular_file(path)
    line = 0
    try:
        with open(path, encoding=encoding, newline="") as f:
            while True:
                line += 1
                text = f.readline(MAX_LINE_CHARS + 1)
                if not text:
                    return
                if len(text) > MAX_LINE_CHARS:
                    raise TraceError(f"{path}:{line}: line longer than {MAX_LINE_CHARS} characters "
                                     f"(not a trace file?)")
                yield line, text
    except UnicodeDecodeError:
        raise TraceError(f"{path}:{line}: not UTF-8 text (a binary file?)") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read ({e.strerror or e})") from None


def first_line(path) -> str:
    """The first line of a text file (bounded read), stripped."""
    for _, text in text_lines(path):
        return text.strip()
    return ""


def int_field(path, line: int, name: str, text: str, minimum: int = 0, maximum: int = MAX_TOKENS) -> int:
    """An integer cell (an integral float such as 5.0 is accepted) within [minimum, maximum]."""
    try:
        v = int(text)   # int() ignores surrounding whitespace
    except (ValueError, TypeError):
        try:
            f = float(text)
        except (ValueError, TypeError):
            raise TraceError(f"{path}:{line}: {name} must be an integer, got {text!r}") from None
        if not f.is_integer():
            raise TraceError(f"{path}:{line}: {name} must be an integer, got {text!r}") from None
        v = int(f)
    if minimum <= v <= maximum:
        return v
    return check_int(path, line, name, v, minimum, maximum)   # raises, naming the bounds


def check_int(path, line: int, name: str, v, minimum: int = 0, maximum: int = MAX_TOKENS) -> int:
    """A Python int (not bool) within [minimum, maximum], or TraceError naming it."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TraceError(f"{path}:{line}: {name} must be an integer, got {v!r}")
    if not minimum <= v <= maximum:
        raise TraceError(f"{path}:{line}: {name} must be in [{minimum}, {maximum}], got {_short(v)}")
    return v


def arrival_field(path, line: int, name: str, v: float) -> float:
    """An arrival time in seconds: finite, >= 0 and <= MAX_ARRIVAL_S."""
    if not (math.isfinite(v) and 0 <= v <= MAX_ARRIVAL_S):
        raise TraceError(f"{path}:{line}: {name} must be finite, >= 0 and at most {MAX_ARRIVAL_S:.0f} s "
                         f"(~272 years) after the trace's start, got {_short(v)}")
    return v


def seconds_field(path, line: int, name: str, text: str) -> float:
    """An arrival time cell: a number of seconds, as arrival_field bounds it."""
    try:
        v = float(text)
    except ValueError:
        raise TraceError(f"{path}:{line}: {name} must be a number of seconds, got {text!r}") from None
    return arrival_field(path, line, name, v)


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:20] + "..." + s[-8:] + f" ({len(s)} digits)"
