"""Reports of `ewsjf bench`: terminal tables, claims check, fidelity comparison, JSON, markdown, PNG plots."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import numpy as np

CLAIMS = {
    "short_ttft_speedup_min": 4.0,     # FCFS short mean TTFT / EWSJF's
    "throughput_gain_min": 0.30,       # EWSJF output tok/s over FCFS's - 1 (under overload)
    "long_p99_ratio_max": 1.25,        # EWSJF long p99 TTFT / FCFS's
}


def fmt(v: Any, digits: int = 2) -> str:
    """A figure for a table: floats to `digits` places (no decimals from 10,000), missing or non-finite as "-"."""
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "-"
    if isinstance(v, float):
        if abs(v) >= 10000:
            return f"{v:.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def table(rows: list[list[str]], header: list[str], title: str | None = None) -> str:
    """A terminal table (rich; see console.table)."""
    from .console import table as rich_table
    return rich_table(rows, header, title)


def load_label(load: float) -> str:
    """A load as it was given: 0.045 prints 0.045 (12 significant digits hide float noise: 1.1 * 3 -> 3.3)."""
    return f"{load:.12g}"


def md_table(rows: list[list[str]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


MAIN_HEADER = ["policy", "TTFT mean", "p50", "p90", "p99", "short mean", "medium mean", "long mean", "long p99",
               "TPOT p50", "E2E p50", "out tok/s", "tok/s (arrivals)", "goodput req/s", "max wait", "Jain",
               "sched us/step"]


def main_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for r in runs:
        m = r["metrics"]
        c = m["ttft_by_class_s"]
        rows.append([
            r["policy"] + ("" if r.get("engine", "sim") == "sim" else f" [{r['engine']}]"),
            fmt(m["ttft_s"]["mean"]), fmt(m["ttft_s"]["p50"]), fmt(m["ttft_s"]["p90"]), fmt(m["ttft_s"]["p99"]),
            fmt(c["short"]["mean"]), fmt(c["medium"]["mean"]), fmt(c["long"]["mean"]), fmt(c["long"]["p99"]),
            fmt(m["tpot_s"]["p50"], 4), fmt(m["e2e_s"]["p50"]), fmt(m["output_tps"], 0),
            fmt(m["output_tps_window"], 0), fmt(m["goodput_rps"], 3), fmt(m["longest_wait_s"], 1),
            fmt(m["jain_slowdown"], 3),
            fmt(m["scheduler_us_per_step"], 1) if r.get("engine", "sim") == "sim" else "-",
        ])
    return rows


def claims(runs: list[dict], candidate: str = "ewsjf") -> list[dict]:
    """Claims check per (engine, load) where both fcfs and `candidate` ran."""
    out = []
    by = {(r.get("engine", "sim"), r["load"], r["policy"]): r["metrics"] for r in runs}
    for (eng, load, pol), m in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if pol != candidate or (eng, load, "fcfs") not in by:
            continue
        f = by[(eng, load, "fcfs")]
        fs, es = f["ttft_by_class_s"]["short"]["mean"], m["ttft_by_class_s"]["short"]["mean"]
        fl, el = f["ttft_by_class_s"]["long"]["p99"], m["ttft_by_class_s"]["long"]["p99"]
        ft = f["output_tps_window"] or f["output_tps"]
        et = m["output_tps_window"] or m["output_tps"]
        speed = fs / es if fs and es else None
        gain = et / ft - 1 if ft and et else None
        ratio = el / fl if fl and el else None
        out.append({
            "engine": eng, "load": load, "candidate": candidate,
            "short_ttft_fcfs_s": fs, "short_ttft_candidate_s": es, "short_ttft_speedup": speed,
            "short_ttft_ok": speed is not None and speed >= CLAIMS["short_ttft_speedup_min"],
            "tps_fcfs": ft, "tps_candidate": et, "throughput_gain": gain,
            "throughput_ok": gain is not None and gain >= CLAIMS["throughput_gain_min"],
            "long_p99_fcfs_s": fl, "long_p99_candidate_s": el, "long_p99_ratio": ratio,
            "long_p99_ok": ratio is not None and ratio <= CLAIMS["long_p99_ratio_max"],
            "fcfs_saturated_frac": f.get("saturated_frac"),
        })
    return out


def claims_rows(cl: list[dict]) -> list[list[str]]:
    ok = {True: "yes", False: "NO"}
    return [[c["engine"], load_label(c["load"]), c["candidate"],
             f"{fmt(c['short_ttft_fcfs_s'])} / {fmt(c['short_ttft_candidate_s'])} = {fmt(c['short_ttft_speedup'])}x",
             ok[c["short_ttft_ok"]],
             f"{fmt(c['tps_fcfs'], 0)} -> {fmt(c['tps_candidate'], 0)} "
             f"({fmt(100 * c['throughput_gain'] if c['throughput_gain'] is not None else None, 1)}%)",
             ok[c["throughput_ok"]],
             f"{fmt(c['long_p99_candidate_s'])} / {fmt(c['long_p99_fcfs_s'])} = {fmt(c['long_p99_ratio'])}x",
             ok[c["long_p99_ok"]], fmt(c["fcfs_saturated_frac"])] for c in cl]


CLAIMS_HEADER = ["engine", "load", "policy", "short mean TTFT fcfs/cand (>=4x)", "ok",
                 "out tok/s while arriving fcfs->cand (>=+30%)", "ok", "long p99 TTFT cand/fcfs (<=1.25x)", "ok",
                 "fcfs saturated"]


def fidelity(runs: list[dict], tolerance: float = 0.10) -> list[dict]:
    """sim vs vllm under the same policy and load: relative differences of TTFT percentiles and throughput."""
    by = {(r.get("engine", "sim"), r["load"], r["policy"]): r["metrics"] for r in runs}
    out = []
    for (eng, load, pol), v in by.items():
        if eng != "vllm" or ("sim", load, pol) not in by:
            continue
        s = by[("sim", load, pol)]
        items = [("TTFT mean", s["ttft_s"]["mean"], v["ttft_s"]["mean"]),
                 ("TTFT p50", s["ttft_s"]["p50"], v["ttft_s"]["p50"]),
                 ("TTFT p90", s["ttft_s"]["p90"], v["ttft_s"]["p90"]),
                 ("TTFT p99", s["ttft_s"]["p99"], v["ttft_s"]["p99"]),
                 ("TPOT p50", s["tpot_s"]["p50"], v["tpot_s"]["p50"]),
                 ("output tok/s", s["output_tps"], v["output_tps"]),
                 ("tok/s while arriving", s["output_tps_window"], v["output_tps_window"])]
        for name, a, b in items:
            rel = (a - b) / b if a is not None and b else None
            out.append({"load": load, "policy": pol, "metric": name, "sim": a, "vllm": b, "rel_diff": rel,
                        "ok": rel is not None and abs(rel) <= tolerance})
    return out


def fidelity_rows(fd: list[dict]) -> list[list[str]]:
    return [[load_label(d["load"]), d["policy"], d["metric"], fmt(d["sim"], 4), fmt(d["vllm"], 4),
             fmt(100 * d["rel_diff"] if d["rel_diff"] is not None else None, 2) + "%", "yes" if d["ok"] else "NO"]
            for d in fd]


FIDELITY_HEADER = ["load", "policy", "metric", "sim", "vllm", "sim vs vllm", "within 10%"]


def sweep_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for r in sorted(runs, key=lambda r: (r.get("engine", "sim"), r["load"])):
        m = r["metrics"]
        c = m["ttft_by_class_s"]
        engine = "" if r.get("engine", "sim") == "sim" else f" [{r['engine']}]"
        rows.append([load_label(r["load"]), r["policy"] + engine,
                     fmt(m["ttft_s"]["mean"]), fmt(c["short"]["mean"]), fmt(c["long"]["p99"]), fmt(m["e2e_s"]["p50"]),
                     fmt(m["output_tps_window"], 0), fmt(m["goodput_rps"], 3), fmt(m.get("saturated_frac"), 2),
                     fmt(m.get("mfu_linear"), 3)])
    return rows


SWEEP_HEADER = ["load", "policy", "TTFT mean", "short mean", "long p99", "E2E p50", "tok/s (arrivals)",
                "goodput req/s", "saturated", "MFU"]


# ------------------------------------------------------------------------------------------------ files
def write_json(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=_default)


def _default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)


def markdown(doc: dict, plots: list[str] | None = None) -> str:
    s = doc["settings"]
    runs = doc["runs"]
    lines = [f"# ewsjf bench: {s['workload']['name']}", "",
             f"Command: `{s['command']}`", "",
             f"- Workload: {s['workload']['requests']} requests over {s['workload']['duration_s']} s "
             f"({s['workload'].get('rate_rps')} req/s at load 1.0), prompts mean {s['workload']['prompt_mean']} "
             f"tokens, outputs mean {s['workload']['output_mean']} tokens.",
             f"- Model / GPU: {s['step_model']['model']} on {s['step_model']['gpu']} "
             f"(roofline step-time model; {s['step_model'].get('calibration', 'calibration not recorded')}; "
             "no GPU was used).",
             f"- Engine: token budget {s['engine']['token_budget']}, max running {s['engine']['max_running']}, "
             f"KV blocks {s['engine']['kv_blocks']} x {s['engine']['block_size']} tokens, chunked prefill "
             f"{s['engine']['chunked_prefill']}, prefix caching {s['engine']['prefix_caching']}.",
             f"- Length classes by prompt tokens: short <= {s['class_edges'][0]} < medium <= {s['class_edges'][1]} "
             f"< long. SLO for goodput: TTFT <= {s['slo']['ttft_s']} s, TPOT <= {s['slo']['tpot_s']} s.",
             f"- Load = multiple of the trace's arrival rate.", ""]
    loads = sorted({r["load"] for r in runs})
    for load in loads:
        sel = [r for r in runs if r["load"] == load]
        lines += [f"## Load {load_label(load)}", "", "Times in seconds.", "", md_table(main_rows(sel), MAIN_HEADER), ""]
    if len(loads) > 1:
        lines += ["## Load sweep", "", md_table(sweep_rows(runs), SWEEP_HEADER), ""]
    if doc.get("claims"):
        lines += ["## Claims check (EWSJF vs FCFS)", "",
                  "Published claims: short-request mean TTFT >= 4x lower; output throughput >= 30% higher under "
                  "overload (here: output tokens per second while requests are still arriving); long-request p99 "
                  "TTFT no worse than 1.25x FCFS.", "", md_table(claims_rows(doc["claims"]), CLAIMS_HEADER), ""]
    if doc.get("fidelity"):
        lines += ["## Fidelity: sim vs vLLM's real scheduler (same step-time model)", "",
                  md_table(fidelity_rows(doc["fidelity"]), FIDELITY_HEADER), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{os.path.basename(p)}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def plots(out_dir: str, runs: list[dict], ttfts: dict, edges: tuple[int, int]) -> list[str]:
    """TTFT CDF per class (at each load for which per-request data is kept), and latency/throughput vs load."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for (eng, load), per_policy in ttfts.items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
        for ax, cls in zip(axes, ("short", "medium", "long")):
            for pol, d in per_policy.items():
                x = np.sort(d[cls][~np.isnan(d[cls])])
                if not len(x):
                    continue
                ax.plot(np.maximum(x, 1e-3), np.arange(1, len(x) + 1) / len(x), label=pol)
            lo, hi = ("1", edges[0]) if cls == "short" else ((edges[0] + 1, edges[1]) if cls == "medium"
                                                             else (edges[1] + 1, "inf"))
            ax.set_title(f"{cls} prompts ({lo}..{hi} tokens)")
            ax.set_xscale("log")
            ax.set_xlabel("TTFT (s)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("fraction of requests")
        axes[-1].legend(loc="lower right")
        fig.suptitle(f"TTFT CDF per length class, load {load_label(load)} ({eng})")
        fig.tight_layout()
        p = os.path.join(out_dir, f"ttft_cdf_{eng}_load{load_label(load)}.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    loads = sorted({r["load"] for r in runs})
    if len(loads) > 1:
        pols = list(dict.fromkeys(r["policy"] for r in runs))
        engs = list(dict.fromkeys(r.get("engine", "sim") for r in runs))
        for eng in engs:
            fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
            fig2, ax2 = plt.subplots(figsize=(6.5, 4.2))
            for pol in pols:
                sel = sorted((r for r in runs if r["policy"] == pol and r.get("engine", "sim") == eng),
                             key=lambda r: r["load"])
                if not sel:
                    continue
                x = [r["load"] for r in sel]
                axes[0].plot(x, [r["metrics"]["ttft_s"]["mean"] for r in sel], marker="o", label=pol)
                axes[1].plot(x, [r["metrics"]["ttft_by_class_s"]["short"]["mean"] for r in sel], marker="o", label=pol)
                axes[2].plot(x, [r["metrics"]["ttft_by_class_s"]["long"]["p99"] for r in sel], marker="o", label=pol)
                ax2.plot(x, [r["metrics"]["output_tps_window"] or r["metrics"]["output_tps"] for r in sel],
                         marker="o", label=pol)
            for ax, t in zip(axes, ("mean TTFT (s)", "short-request mean TTFT (s)", "long-request p99 TTFT (s)")):
                ax.set_title(t)
                ax.set_xlabel("load (x trace rate)")
                ax.set_yscale("log")
                ax.grid(alpha=0.3)
            axes[0].legend()
            fig.suptitle(f"Latency vs load ({eng})")
            fig.tight_layout()
            p = os.path.join(out_dir, f"latency_vs_load_{eng}.png")
            fig.savefig(p, dpi=110)
            plt.close(fig)
            ax2.set_title(f"Output throughput while requests arrive ({eng})")
            ax2.set_xlabel("load (x trace rate)")
            ax2.set_ylabel("output tokens / s")
            ax2.grid(alpha=0.3)
            ax2.legend()
            fig2.tight_layout()
            p2 = os.path.join(out_dir, f"throughput_vs_load_{eng}.png")
            fig2.savefig(p2, dpi=110)
            plt.close(fig2)
            written += [p, p2]
    return written


REJECTED_IDS_SHOWN = 20
"""Ids of rejected requests a warning lists at most."""


_REASONS = {"context": "the prompt reaches the context length", "kv": "more than the KV cache holds",
            "budget": "more than the token budget, without chunked prefill", "": "refused by the engine"}
"""What each of ewsjf_core.sim.rejection_reasons' answers means, in a warning ("": one the lengths do not explain)."""


def check_rejections(m: dict, rejected_mask, run: str, said: set[tuple[int, ...]],
                     everywhere: str, reasons: list[str]) -> None:
    """Rejected requests are said, by id (a comparison over a subset must not pass silently); all rejected:
    error. A request is rejected for its lengths (context length, KV cache), whatever the policy or load, so
    one warning per run of the command says it for every policy; `said` holds the sets of ids said already,
    and a run that rejects another set (another engine) gets its own warning. `everywhere` names the runs that
    first warning speaks for; `reasons` (rejection_reasons of the workload) groups the ids by why."""
    rejected, total = m.get("rejected", 0), m.get("requests", 0)
    if total and rejected >= total:
        raise ValueError(f"{run}: the engine rejected all {total} requests (too large for the engine: check "
                         f"--max-model-len, --kv-blocks, --token-budget, --model/--gpu)")
    ids = tuple(np.flatnonzero(rejected_mask).tolist())
    if not ids or ids in said:
        return
    where = run if said else everywhere
    said.add(ids)
    groups: dict[str, list[int]] = {}
    for i in ids:
        groups.setdefault(reasons[i], []).append(i)
    parts = []
    for why, group in groups.items():
        shown = ", ".join(map(str, group[:REJECTED_IDS_SHOWN])) + (", ..." if len(group) > REJECTED_IDS_SHOWN else "")
        parts.append(f"request{'s' if len(group) > 1 else ''} {shown} ({_REASONS[why]})")
    print(f"  warning: {where}: {rejected} of {total} requests rejected: {'; '.join(parts)} (positions in the "
          f"replayed workload, from 0)", file=sys.stderr)
