"""Workload selection for `ewsjf bench`: the vendored default trace, or a file in any supported format."""

from __future__ import annotations

import os

from ewsjf_core.sim import Workload, load_azure, load_csv, load_lengths, load_mooncake
from ewsjf_core.sim.traces import TraceError

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
AZURE_DIR = os.path.join(DATA_DIR, "azure_llm_2023")
AZURE_CODE = os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_code.csv")
AZURE_CONV = os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_conv.csv")

BUILTIN = {
    "azure": ([AZURE_CODE, AZURE_CONV], "Azure LLM inference trace 2023, code + conversation on one time axis"),
    "azure-code": ([AZURE_CODE], "Azure LLM inference trace 2023, code completion service"),
    "azure-conv": ([AZURE_CONV], "Azure LLM inference trace 2023, conversation service"),
}
FORMATS = ("auto", "azure", "lengths", "mooncake", "csv")


def detect_format(path: str) -> str:
    """mooncake for .jsonl/.json; otherwise from the CSV header (azure, lengths, or generic csv)."""
    if path.endswith((".jsonl", ".json")):
        return "mooncake"
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline().strip()
    except OSError as e:
        raise TraceError(f"{path}: cannot read ({e.strerror})") from None
    cells = [c.strip() for c in first.split(",")]
    if cells[:1] == ["TIMESTAMP"]:
        return "azure"
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
        paths, _ = BUILTIN[spec]
        return load_azure(paths, name=spec)
    if not os.path.exists(spec):
        raise TraceError(f"{spec}: no such trace file (built-in workloads: {', '.join(BUILTIN)})")
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(spec)
    if fmt == "azure":
        return load_azure(spec)
    if fmt == "mooncake":
        return load_mooncake(spec)
    if fmt == "lengths":
        if rate is None:
            raise ValueError(f"{spec}: a length-only trace needs an arrival rate (--arrival-rate REQ_PER_S)")
        return load_lengths(spec, rate=rate, cv=cv, seed=seed, n=num_requests)
    return load_csv(spec)


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
    return w
