"""The goals of `ewsjf bench --suite` (issue 9), checked per cell (one workload at one load).

- hrrn: EWSJF dominates HRRN: short-class mean TTFT <= HRRN's and long-class p99 TTFT <= HRRN's.
- fair: bounded unfairness: long-class p99 TTFT <= 1.25x FCFS's and longest wait <= 1.5x FCFS's.
- near: where FCFS's mean TTFT >= 3 s, EWSJF's short-class mean-TTFT gain over FCFS (FCFS / EWSJF) is
  >= 0.8x oracle-SJF's gain; elsewhere not applicable. Oracle-SJF ignores the fairness bounds: where no swept
  scheduler (the cell's frontier: EWSJF's fairness knob, SJF with aging, the baselines) reaches 0.8x its gain
  while keeping them, the goal is unreachable within the bounds there, and the cell says so with that
  frontier's figure (verdict "unreachable": neither a pass nor a failure of EWSJF).
  The dominance goal is judged the same way where the sweep ran (there, and wherever EWSJF misses dominance
  over an HRRN that breaks the bounds: sweep_decides): when HRRN itself breaks the fairness bounds
  and no swept scheduler within them (EWSJF's knob, SJF with aging, the baselines) has both a short mean and
  a long p99 at most HRRN's, dominating HRRN is unreachable within the bounds there (verdict "unreachable",
  with HRRN's fairness figures).
- tput: output tokens/s (while requests arrive) >= FCFS's, within THROUGHPUT_TOLERANCE: every policy emits
  the same tokens, and step-boundary effects move the rate by a few tenths of a percent either way.
Each check returns its verdict and the figures behind it, so a failing cell shows its cause.
"""

from __future__ import annotations

import numpy as np

LONG_P99_MAX = 1.25
LONGEST_WAIT_MAX = 1.5
NEAR_LIMIT_MIN = 0.8
NEAR_LIMIT_FCFS_MEAN_S = 3.0
THROUGHPUT_TOLERANCE = 0.005
GOALS = ("hrrn", "fair", "near", "tput")


def later_than_fcfs(ttft: np.ndarray, fcfs_ttft: np.ndarray, long_mask: np.ndarray) -> list[float]:
    """Per request, not per class: the shares of the measured requests (all, then the long class) whose TTFT is over
    LONGEST_WAIT_MAX x the one FCFS gave that same request. The goals judge the class's p99 and the longest wait;
    this says how many requests a policy makes wait much longer than FCFS would (a scheduler that lowers the long
    class's p99 by delaying its largest requests shows it here). Requests no policy served are left out."""
    served = np.isfinite(ttft) & np.isfinite(fcfs_ttft)
    later = served & (ttft > LONGEST_WAIT_MAX * fcfs_ttft)
    return [float(later.sum() / max(served.sum(), 1)),
            float((later & long_mask).sum() / max((served & long_mask).sum(), 1))]


def short_mean(m: dict) -> float:
    return m["ttft_by_class_s"]["short"]["mean"]


def long_p99(m: dict) -> float:
    return m["ttft_by_class_s"]["long"]["p99"]


def tps(m: dict) -> float:
    return m.get("output_tps_window") or m["output_tps"]


def short_gain(m: dict, fcfs: dict) -> float:
    return short_mean(fcfs) / max(short_mean(m), 1e-9)


def dominates(m: dict, hrrn: dict) -> bool:
    """Short-class mean TTFT and long-class p99 TTFT both at most HRRN's."""
    return short_mean(m) <= short_mean(hrrn) and long_p99(m) <= long_p99(hrrn)


def fcfs_ratios(m: dict, fcfs: dict) -> tuple[float, float]:
    """(long-class p99, longest wait), each over FCFS's: the two fairness figures."""
    p99 = long_p99(m) / max(long_p99(fcfs), 1e-9)
    wait = (m["longest_wait_s"] or 0.0) / max(fcfs["longest_wait_s"] or 0.0, 1e-9)
    return p99, wait


def within_bounds(m: dict, fcfs: dict) -> bool:
    p99, wait = fcfs_ratios(m, fcfs)
    return p99 <= LONG_P99_MAX and wait <= LONGEST_WAIT_MAX


def frontier(runs: dict[str, dict]) -> tuple[float, str]:
    """(best short-class gain over FCFS among `runs` keeping both fairness bounds, by which spec)."""
    f = runs["fcfs"]
    best, by = 1.0, "fcfs"
    for spec, m in runs.items():
        g = short_gain(m, f)
        if g > best and within_bounds(m, f):
            best, by = g, spec
    return best, by


def sweep_decides(metrics: dict[str, dict], candidate: str = "ewsjf") -> bool:
    """Whether the cell's sweep may change a verdict: the near-limit goal applies (FCFS's mean TTFT >= 3 s),
    or the candidate misses dominance over an HRRN that itself breaks the fairness bounds."""
    e, f, h = metrics[candidate], metrics["fcfs"], metrics.get("hrrn")
    if f["ttft_s"]["mean"] >= NEAR_LIMIT_FCFS_MEAN_S:
        return True
    return h is not None and not within_bounds(h, f) and not dominates(e, h)


def check_cell(metrics: dict[str, dict], candidate: str = "ewsjf", front: dict[str, dict] | None = None
               ) -> dict[str, dict]:
    """{goal: {"ok": bool | None, "why": text}} for one cell; metrics[policy] = summarize() output; front:
    the swept schedulers' summaries at this cell (see the module docstring's near goal), when run."""
    e, f = metrics[candidate], metrics["fcfs"]
    out: dict[str, dict] = {}
    h = metrics.get("hrrn")
    if h is not None:
        ok = dominates(e, h)
        why = f"short {short_mean(e):.2f}/{short_mean(h):.2f} long p99 {long_p99(e):.1f}/{long_p99(h):.1f}"
        out["hrrn"] = {"ok": ok, "why": why if ok else why + _excess(e, h)}
        if not out["hrrn"]["ok"] and front:
            out["hrrn"] = _dominance_reachable(out["hrrn"], {**front, **metrics}, h, f)
    p99_ratio, wait_ratio = fcfs_ratios(e, f)
    out["fair"] = {"ok": within_bounds(e, f),
                   "why": f"p99 {p99_ratio:.2f}x wait {wait_ratio:.2f}x"}
    o = metrics.get("oracle-sjf")
    if o is not None and f["ttft_s"]["mean"] >= NEAR_LIMIT_FCFS_MEAN_S:
        g_e, g_o = short_gain(e, f), short_gain(o, f)
        out["near"] = {"ok": g_e >= NEAR_LIMIT_MIN * g_o, "why": f"gain {g_e:.2f}x vs oracle {g_o:.2f}x"}
        if not out["near"]["ok"] and front:
            best, by = frontier({**front, **metrics})
            if best < NEAR_LIMIT_MIN * g_o:
                out["near"] = {"ok": None, "unreachable": True,
                               "why": f"gain {g_e:.2f}x vs oracle {g_o:.2f}x; best within bounds {best:.2f}x ({by})"}
    else:
        out["near"] = {"ok": None, "why": "n/a"}
    t_ratio = tps(e) / max(tps(f), 1e-9)
    out["tput"] = {"ok": t_ratio >= 1.0 - THROUGHPUT_TOLERANCE, "why": f"{100 * (t_ratio - 1):+.1f}%"}
    return out


def _excess(m: dict, hrrn: dict) -> str:
    """By how much each figure that fails dominance is above HRRN's: the table rounds them, and a miss by 0.1%
    (two figures that print alike) reads differently from one by 10%."""
    over = [f"{name} +{100 * (mine / theirs - 1):.1f}%"
            for name, mine, theirs in (("short", short_mean(m), short_mean(hrrn)),
                                       ("long p99", long_p99(m), long_p99(hrrn)))
            if mine > theirs and theirs > 0]
    return f" (over HRRN's: {', '.join(over)})" if over else ""


def _dominance_reachable(verdict: dict, runs: dict[str, dict], h: dict, f: dict) -> dict:
    """The failed dominance verdict as it is, or "unreachable" when no run within the fairness bounds (HRRN
    included) matches HRRN on both short mean and long p99."""
    if any(within_bounds(m, f) and dominates(m, h) for m in runs.values()):
        return verdict
    hp, hw = fcfs_ratios(h, f)
    return {"ok": None, "unreachable": True,
            "why": f"{verdict['why']}; HRRN's long p99 {hp:.2f}x, longest wait {hw:.2f}x FCFS's, and no swept "
                   f"scheduler within the bounds matches it"}


def mark(ok: bool | None, unreachable: bool = False) -> str:
    if unreachable:
        return "unreachable"
    return "-" if ok is None else ("pass" if ok else "FAIL")
