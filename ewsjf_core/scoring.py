"""Density-weighted scoring: one score per non-empty queue, from its head request (hot path, per step).

For queue q of rank i among N active queues (rank 0 = shortest), head request of job size b, effective
prefill length p and wait W:
    score(q) = qf * (w_base + w_fair(b_q) * log(b + 1)) + uf * w_urg(b_q) * cs / (b + 1)
    qf = (N - i) / (b + 1)                 shorter queues and smaller jobs first
    uf = max(N / 2 - i, 1)                 the urgency's rank preference, counted from the median queue
    cs = W / C_prefill(p)                  urgency: wait relative to the request's own prefill cost
    w_urg(x) = a_u x + b_u,  w_fair(x) = a_f x + b_f,  x = b_q the queue's mean job size
C_prefill(p) = c0 + c1 p + c2 p^2 (online fit, floored at min_cost). A bubble queue's b_q is its centre.

The published form also multiplies the urgency by N - i. For large requests w_urg ~ a_u b cancels the density, so
their order was HRRN's response ratio times N - i: adjacent top queues 2x, 1.5x apart whatever their sizes, and in a
burst a smaller long request went before an older larger one (such swaps set the long class's p99). Counted from
the median, the larger half of the queues age alike, by their heads' own response ratios; the smaller half keep a
rank preference, so fresh short requests still pass aged medium ones in a deep backlog. Issue 9's twentieth pass
(bench/SUITE_PASSES.md): over seeds 0-2 and four presets 1,104 -> 1,134 suite checks, the short class's mean 7-11%
lower, the long p99 ~1% lower.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import prefill_cost_kernel

# Layout of the packed parameter vector the kernels read (one array: swapped whole, never mutated live).
(P_W_BASE, P_A_U, P_B_U, P_A_F, P_B_F, P_C0, P_C1, P_C2, P_MIN_COST, P_BYPASS, P_OUT_WORK, P_OWN_SLACK,
 P_LATE_BYPASS) = range(13)


def pack_params(config: EWSJFConfig, c0: float, c1: float, c2: float, out_work: float = 0.0,
                cap_share: float = 0.0) -> np.ndarray:
    """The scoring parameters of `config` and the current cost-model coefficients, as the kernels read them;
    cap_share: the share of recent steps the engine's running cap held admissions (ewsjf_core.kv_work)."""
    # P_BYPASS: the bypass share of ewsjf_core.selection, the same slack the progress bound grants.
    # P_OUT_WORK: the output term of a request's work in the progress bound (ewsjf_core.progress_bound).
    # P_OWN_SLACK: a request falls due that many times its own prefill past its due point (ewsjf_core.selection).
    # P_LATE_BYPASS: the late bypass share of ewsjf_core.selection, where the running cap did not hold admissions.
    return np.array([config.w_base, config.a_u, config.b_u, config.a_f, config.b_f,
                     c0, c1, c2, config.min_prefill_cost, max(config.fcfs_wait_factor - 1.0, 0.0), out_work,
                     config.own_size_slack, late_bypass(config, cap_share)], dtype=np.float64)


def late_bypass(config: EWSJFConfig, cap_share: float) -> float:
    """EWSJFConfig.late_bypass_share in the share of steps the running cap did not hold admissions."""
    return config.late_bypass_share * min(max(1.0 - cap_share, 0.0), 1.0)


@njit(cache=True, nogil=True)
def queue_ranks(q_active: np.ndarray, q_pos: np.ndarray) -> np.ndarray:
    """Rank of each active queue by position (0 = shortest); -1 for inactive queues."""
    nq = q_active.shape[0]
    rank = np.full(nq, -1, dtype=np.int32)
    for q in range(nq):
        if q_active[q]:
            r = 0
            for o in range(nq):
                if q_active[o] and (q_pos[o] < q_pos[q] or (q_pos[o] == q_pos[q] and o < q)):
                    r += 1
            rank[q] = r
    return rank


@njit(cache=True, nogil=True)
def prefill_cost(p: float, params: np.ndarray) -> float:
    return prefill_cost_kernel(p, params[P_C0], params[P_C1], params[P_C2], params[P_MIN_COST])


@njit(cache=True, nogil=True)
def queue_scores(now: float, heads: np.ndarray, size: np.ndarray, prefill: np.ndarray,
                 arrival: np.ndarray, q_active: np.ndarray, q_pos: np.ndarray, q_mean: np.ndarray,
                 params: np.ndarray) -> np.ndarray:
    """Score of every queue whose head slot is heads[q] (-1: empty queue, scored -inf)."""
    nq = heads.shape[0]
    rank = queue_ranks(q_active, q_pos)
    n_active = 0
    for q in range(nq):
        if q_active[q]:
            n_active += 1
    scores = np.full(nq, -np.inf)
    for q in range(nq):
        h = heads[q]
        if h < 0:
            continue
        b = size[h]
        wait = now - arrival[h]
        if wait < 0.0:
            wait = 0.0
        qf = (n_active - rank[q]) / (b + 1.0)
        uf = max(0.5 * n_active - rank[q], 1.0)
        cs = wait / prefill_cost(prefill[h], params)
        xq = q_mean[q]
        w_urg = params[P_A_U] * xq + params[P_B_U]
        w_fair = params[P_A_F] * xq + params[P_B_F]
        scores[q] = qf * (params[P_W_BASE] + w_fair * np.log(b + 1.0)) + uf * w_urg * cs / (b + 1.0)
    return scores
