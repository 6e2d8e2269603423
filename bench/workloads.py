"""Workload selection for `ewsjf bench`: the vendored default trace, or a file in any supported format."""

from __future__ import annotations

import os

from ewsjf_core.sim import Workload

from .trace_input import MAX_ARRIVAL_S, TraceError, check_regular_file, first_line
from .traces import is_burstgpt_header, load_azure, load_burstgpt, load_csv, load_lengths, load_mooncake

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
AZURE_DIR = os.path.join(DATA_DIR, "azure_llm_2023")
AZURE_CODE = os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_code.csv")
AZURE_CONV = os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_conv.csv")

BUILTIN = {
    "azure": ([AZURE_CODE, AZURE_CONV], "Azure LLM inference trace 2023, code + conversation on one time axis"),
    "azure-code": ([AZURE_CODE], "Azure LLM inference trace 2023, code completion service"),
    "azure-conv": ([AZURE_CONV], "Azure LLM inference trace 2023, conversation service"),
}
FORMATS = ("auto", "azure", "burstgpt", "lengths", "mooncake", "csv")


def detect_format(path: str) -> str:
    """mooncake for .jsonl/.json; otherwise from the CSV header (azure, burstgpt, lengths, or generic csv)."""
    if path.endswith((".jsonl", ".json")):
        return "mooncake"
    first = first_line(path)
    cells = [c.strip() for c in first.split(",")]
    if cells[:1] == ["TIMESTAMP"]:
        return "azure"
    if is_burstgpt_header(cells):
        return "burstgpt"
    if "num_prefill_tokens" in cells:
        return "lengths"
    return "csv"


def load_workload(spec: str = "azure", fmt: str = "auto", *, rate: float | None = None, cv: float = 1.0,
                  seed: int = 0, num_requests: int | None = None) -> Workload:
    """A built-in name (azure, azure-code, azure-conv) or a path.

    Length-only files (ShareGPT/BWB) need `rate` (requests/s); `cv` sets the arrival burstiness (1: Poisson,
    else Gamma) and `num_requests` how many to draw.
    """
    if spec in BUILTIN:
        _no_drawn_arrivals(spec, "azure", rate, num_requests)
        paths, _ = BUILTIN[spec]
        return load_azure(paths, name=spec)
    if not os.path.exists(spec):
        raise TraceError(f"{spec}: no such trace file (built-in workloads: {', '.join(BUILTIN)})")
    check_regular_file(spec)
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(spec)
    if fmt != "lengths":
        _no_drawn_arrivals(spec, fmt, rate, num_requests)
    if fmt == "azure":
        return load_azure(spec)
    if fmt == "mooncake":
        return load_mooncake(spec)
    if fmt == "burstgpt":
        return load_burstgpt(spec)
    if fmt == "lengths":
        if rate is None:
            raise ValueError(f"{spec}: a length-only trace needs an arrival rate (--arrival-rate REQ_PER_S)")
        return load_lengths(spec, rate=rate, cv=cv, seed=seed, n=num_requests)
    return load_csv(spec)


def _no_drawn_arrivals(spec: str, fmt: str, rate: float | None, num_requests: int | None) -> None:
    """Arrival options would be silently ignored on a trace with its own arrival times: refuse them."""
    if rate is not None or num_requests is not None:
        raise ValueError(f"{spec}: --arrival-rate and --num-requests apply only to a length-only trace "
                         f"(ShareGPT/BWB); this {fmt} trace has its own arrival times")


def prepare(w: Workload, *, rate_scale: float = 1.0, window: tuple[float, float] | None = None,
            max_requests: int | None = None) -> Workload:
    """Apply the time window (seconds of the original trace, re-based to 0), then the request cap, then
    the rate scaling (arrival times / rate_scale)."""
    if window is not None:
        w = w.slice(*window)
    if max_requests is not None:
        w = w.head(max_requests)
    if rate_scale != 1.0:
        w = w.scale_rate(rate_scale)
    if not len(w):
        raise ValueError("the selected workload is empty (check --window / --max-requests)")
    check_span(w, what=f"workload {w.name}")
    return w


def check_span(w: Workload, load: float = 1.0, what: str = "--rate-scale") -> None:
    """The workload at `load` x its rate must end within MAX_ARRIVAL_S (a float64 clock keeps us steps)."""
    last = float(w.arrival_s[-1]) / load if len(w) else 0.0
    if not last <= MAX_ARRIVAL_S:
        raise ValueError(f"{what}: at load {load:.12g} the last request arrives {last:.3g} s after the first, "
                         f"beyond {MAX_ARRIVAL_S:.0f} s (~272 years), where a float64 clock loses "
                         f"microsecond steps (check --rate-scale, --sweep, --arrival-rate, --window)")
