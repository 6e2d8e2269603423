"""A user's own trace as a workload of the suite: `ewsjf bench --suite --workload FILE`.

The suite's goals are meant to hold on traces the project has never seen; this is how an operator checks them
on theirs. The trace is replayed like the suite's own workloads: its first --suite-requests requests, loads found
by bisection on FCFS's mean TTFT (1, 3, 10 s and the overload point), classes by its prompt-length terciles. A
length-only file (ShareGPT/BWB) gets drawn arrivals at 1 req/s with the --cv burstiness, one draw per --seed.
Operating points are cached under the file's content digest, so an edited file is measured again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from ewsjf_core.sim import Workload

from .suite_workloads import BY_NAME, SuiteWorkload
from .trace_input import check_regular_file
from .workloads import FORMATS, detect_format, load_workload

_DIGEST_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class TraceWorkload(SuiteWorkload):
    digest: str = ""
    """The trace file's content digest and the arrival options: part of the operating-point cache key."""


def from_trace(spec: str, fmt: str = "auto", cv: float = 1.0) -> SuiteWorkload:
    """The suite workload for `spec`: a suite workload's name (azure, sharegpt, ...) or a trace file in any format
    `ewsjf bench --workload` reads. The file is read once here, so a malformed one fails before any replay."""
    if spec in BY_NAME:   # azure, azure-code, azure-conv included: replayed as the suite replays them
        return BY_NAME[spec]
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}: use one of {', '.join(FORMATS)}")
    check_regular_file(spec)
    kind = detect_format(spec) if fmt == "auto" else fmt
    drawn = kind == "lengths"
    if not drawn and cv != 1.0:
        raise ValueError(f"{spec}: --cv applies only to a length-only trace (ShareGPT/BWB); this {kind} trace has "
                         f"its own arrival times")

    def build(n: int, seed: int) -> Workload:
        if drawn:
            return load_workload(spec, kind, rate=1.0, cv=cv, seed=seed, num_requests=n)
        return load_workload(spec, kind).head(n)

    build(1, 0)   # parse the whole file now: errors name the file and line before the suite starts
    name = os.path.splitext(os.path.basename(spec))[0] or spec
    arrivals = f"drawn at 1 req/s, CV {cv:g}" if drawn else "the trace's own arrivals"
    return TraceWorkload(name, f"{spec} ({kind} trace, {arrivals})", build,
                         digest=f"{_file_digest(spec)}:{kind}" + (f":cv={cv!r}" if drawn else ""))


def content_key(sw: SuiteWorkload) -> dict:
    """What a cache key adds for `sw`: a trace file's content digest; nothing for the suite's own workloads (their
    keys stay what they were)."""
    return {"trace": sw.digest} if isinstance(sw, TraceWorkload) else {}


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_DIGEST_CHUNK):
            h.update(chunk)
    return h.hexdigest()[:24]
