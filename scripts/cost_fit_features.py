"""Whether the decodes' KV context would let the cost model tell the decodes' cost from its per-step c0 (issue 9,
twenty-third pass): a diagnostic.

    .venv/bin/python scripts/cost_fit_features.py WORKLOAD LOAD [--seed N] [--gpu h200] [--window 500]

Replays one suite cell (a suite workload or a trace file, at the suite's operating point) under EWSJF's default,
records every step's duration, prefill tokens, decode tokens and the KV tokens its attention read (the simulator's
own step inputs), and fits the cost model's features two ways: the four the step feedback carries (1, p, p^2, d, as
ewsjf_core.cost_model) and the same with the KV tokens read as a fifth, each by least squares over consecutive
windows of steps and recursively as the queue fits them (regularised forgetting, which keeps what a direction last
learned while no step excites it).
Where the engine runs at its running cap with its KV cache full, every step decodes about as many tokens over about as
many cached tokens, so both the decode count and the KV context stay near constant and neither can be told apart
from c0: the columns "d cv" and "kv cv" (coefficient of variation over the window) show it.
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench.console import table
from ewsjf.bench.suite import add_cell_arguments, cell_from_args
from ewsjf.bench.suite_policies import run_policy
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import regularised_update
from ewsjf_core.sim import EngineConfig, RooflineStepTime


class _RecordedSteps:
    """The step-time model, recording each step's (duration, prefill, decode, KV tokens read)."""

    def __init__(self, model: RooflineStepTime) -> None:
        self.model = model
        self.rows: list[tuple[float, int, int, int]] = []

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def step_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int, kv_tokens_read: int,
                  prefill_seqs: int = 0, **kw) -> float:
        duration = self.model.step_time(prefill_tokens, prefill_attn_tokens2, decode_tokens, kv_tokens_read,
                                        prefill_seqs, **kw)
        self.rows.append((duration, prefill_tokens, decode_tokens, kv_tokens_read))
        return duration


def _features(rows: np.ndarray, n: int) -> np.ndarray:
    """The cost model's scaled features (1, p, p^2, d in thousands of tokens), then the KV tokens read in millions."""
    p = rows[:, 1] / 1e3
    return np.c_[np.ones(rows.shape[0]), p, p * p, rows[:, 2] / 1e3, rows[:, 3] / 1e6][:, :n]


def recursive_c0(rows: np.ndarray, n: int, config: EWSJFConfig) -> np.ndarray:
    """c0 after each step, fitted as the queue fits it (ewsjf_core.cost_model.regularised_update: its prior, its
    forgetting; the fifth feature's prior 0)."""
    # the prior in _features' units (seconds per thousand tokens, per million squared), the fifth feature's 0
    prior = np.array([config.prior_c0, config.prior_c1 * 1e3, config.prior_c2 * 1e6, config.prior_decode * 1e3,
                      0.0])[:n]
    strength, forgetting = config.cost_prior_strength, config.cost_forgetting
    info, rhs, theta, aux = np.eye(n) * strength, prior * strength, prior.copy(), np.zeros(2)
    c0 = np.empty(rows.shape[0])
    for k, x in enumerate(_features(rows, n)):
        regularised_update(info, rhs, theta, prior, strength, (1.0 - forgetting) * strength, aux, x, rows[k, 0],
                           forgetting)
        c0[k] = theta[0]
    return c0


def window_fits(rows: np.ndarray, window: int) -> list[list[str]]:
    """Per window of steps: how much d and the KV context vary (coefficient of variation), c0 fitted by least
    squares over the window with four features and with five, and c0 of the recursive fit at the window's end."""
    recursive = [recursive_c0(rows, n, EWSJFConfig()) for n in (4, 5)]
    out = []
    for end in range(window, rows.shape[0] + 1, window):
        part = rows[end - window:end]
        fits = [np.linalg.lstsq(_features(part, n), part[:, 0], rcond=None)[0] for n in (4, 5)]
        cv = [float(np.std(v) / max(np.mean(v), 1e-9)) for v in (part[:, 2], part[:, 3])]
        out.append([f"{end}", f"{np.mean(part[:, 1] > 0):.2f}", f"{cv[0]:.2f}", f"{cv[1]:.2f}",
                    f"{fits[0][0] * 1e3:.1f}", f"{fits[1][0] * 1e3:.1f}", f"{fits[1][4] * 1e3:.1f}",
                    f"{recursive[0][end - 1] * 1e3:.1f}", f"{recursive[1][end - 1] * 1e3:.1f}"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    add_cell_arguments(ap)
    ap.add_argument("--window", type=int, default=500, help="steps per fit")
    args = ap.parse_args()
    sw, _, wl = cell_from_args(args)
    steps = _RecordedSteps(RooflineStepTime(sw.model, sw.gpu))
    run_policy(wl, "ewsjf", steps, EngineConfig())
    header = ["steps to", "prefill share", "d cv", "kv cv", "c0 ms, window (4)", "c0 ms, window (5)",
              "ms per M kv, window (5)", "c0 ms, recursive (4)", "c0 ms, recursive (5)"]
    print(table(window_fits(np.array(steps.rows, dtype=np.float64), args.window), header,
                title=f"{args.workload} @ {args.load}, seed {args.seed}: fits over windows of {args.window} steps, "
                      "and the recursive fit at each window's end"))


if __name__ == "__main__":
    main()
