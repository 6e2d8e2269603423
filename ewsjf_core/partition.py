"""Refine-and-Prune: split observed job sizes into performance-homogeneous queues (off the hot path).

Sizes are compared by their prefill cost, not their raw length: the partition works on
v = log(b + b0), b0 = c0 / c1 from the cost model (C_prefill(b) ~ c0 + c1 b = c1 (b + b0)). On this
scale, 100 vs 200 tokens differ as much as 2000 vs 4000, and prompts shorter than b0 (dominated by the
fixed cost) count as alike. On raw lengths, k-means spends its clusters on the sparse long tail and puts
most requests into one wide shortest queue; on v the queues have comparable cost spreads.

1. Coarse: exact 1-D k-means of v with k0 clusters, by dynamic programming over the sorted values. Each DP
   row is filled by divide and conquer over the monotone split points (O(k n log n)): the global optimum,
   not a Lloyd's-iteration local one.
2. Refine: inside a part, split at the largest gap between consecutive sorted values when that gap exceeds
   alpha * mean(gap); recurse while a part has >= min_size members and range >= min_rel_range * mean.
3. Prune: while more than max_queues parts remain, merge the adjacent pair whose merged group is the most
   compact: the least increase in within-part squared deviation, n1 n2 / (n1 + n2) (mean1 - mean2)^2
   (Ward's criterion, consistent with the k-means objective). Small splinters cut off by the refine step
   merge back first; large, well-separated parts stay apart.

Parts never split a run of equal sizes, so every queue's [lo, hi] range is well defined and disjoint.
Reported statistics (lo, hi, mean, spread, density) are in tokens.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _sse(s1: np.ndarray, s2: np.ndarray, i: int, j: int) -> float:
    """Sum of squared deviations of sorted[i..j] (inclusive) from their mean, from prefix sums."""
    n = j - i + 1
    t = s1[j + 1] - s1[i]
    v = s2[j + 1] - s2[i] - t * t / n
    return v if v > 0.0 else 0.0


@njit(cache=True, nogil=True)
def kmeans_1d_exact(sorted_x: np.ndarray, k: int) -> np.ndarray:
    """Optimal k-means of sorted 1-D data. Returns the k start indices of the clusters (first is 0).

    D[m, j] = min over i of D[m-1, i-1] + sse(i, j); the argmin is monotone in j, so each row is filled by
    divide and conquer (an explicit stack: lo, hi of the j range, and the window of candidate i).
    """
    n = sorted_x.shape[0]
    if k > n:
        k = n
    s1 = np.zeros(n + 1)
    s2 = np.zeros(n + 1)
    for t in range(n):
        s1[t + 1] = s1[t] + sorted_x[t]
        s2[t + 1] = s2[t] + sorted_x[t] * sorted_x[t]
    prev = np.empty(n)
    for j in range(n):
        prev[j] = _sse(s1, s2, 0, j)
    arg = np.zeros((k, n), dtype=np.int64)
    cur = np.empty(n)
    stack = np.empty((4 * (n + 2), 4), dtype=np.int64)
    for m in range(1, k):
        cur[:] = np.inf
        top = 0
        stack[0, 0] = m
        stack[0, 1] = n - 1
        stack[0, 2] = m
        stack[0, 3] = n - 1
        top = 1
        while top > 0:
            top -= 1
            lo = stack[top, 0]
            hi = stack[top, 1]
            olo = stack[top, 2]
            ohi = stack[top, 3]
            if lo > hi:
                continue
            mid = (lo + hi) // 2
            best = np.inf
            best_i = olo
            upper = ohi if ohi < mid else mid
            for i in range(olo, upper + 1):
                c = prev[i - 1] + _sse(s1, s2, i, mid)
                if c < best:
                    best = c
                    best_i = i
            cur[mid] = best
            arg[m, mid] = best_i
            stack[top, 0] = lo
            stack[top, 1] = mid - 1
            stack[top, 2] = olo
            stack[top, 3] = best_i
            top += 1
            stack[top, 0] = mid + 1
            stack[top, 1] = hi
            stack[top, 2] = best_i
            stack[top, 3] = ohi
            top += 1
        prev, cur = cur, prev
    starts = np.zeros(k, dtype=np.int64)
    end = n - 1
    for m in range(k - 1, 0, -1):
        starts[m] = arg[m, end]
        end = starts[m] - 1
    return starts


@njit(cache=True, nogil=True)
def _snap_to_runs(sorted_x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Move each cut back to the start of its run of equal values; drop cuts that become empty."""
    out = np.empty(starts.shape[0], dtype=np.int64)
    m = 0
    for c in starts:
        while c > 0 and sorted_x[c] == sorted_x[c - 1]:
            c -= 1
        if m == 0 or c > out[m - 1]:
            out[m] = c
            m += 1
    return out[:m]


@njit(cache=True, nogil=True)
def refine_by_gaps(sorted_x: np.ndarray, starts: np.ndarray, alpha: float, min_size: int,
                   min_rel_range: float) -> np.ndarray:
    """Split parts at dominant gaps. `starts` are part start indices; returns the refined start indices."""
    n = sorted_x.shape[0]
    is_start = np.zeros(n + 1, dtype=np.bool_)
    stack = np.empty((n + 1, 2), dtype=np.int64)
    top = 0
    for p in range(starts.shape[0]):
        s = starts[p]
        e = starts[p + 1] - 1 if p + 1 < starts.shape[0] else n - 1
        is_start[s] = True
        stack[top, 0] = s
        stack[top, 1] = e
        top += 1
    while top > 0:
        top -= 1
        s = stack[top, 0]
        e = stack[top, 1]
        count = e - s + 1
        if count < min_size:
            continue
        rng = sorted_x[e] - sorted_x[s]
        mean = 0.0
        for t in range(s, e + 1):
            mean += sorted_x[t]
        mean /= count
        if rng <= 0.0 or rng < min_rel_range * mean:
            continue
        best_gap = -1.0
        best_t = s
        for t in range(s, e):
            g = sorted_x[t + 1] - sorted_x[t]
            if g > best_gap:
                best_gap = g
                best_t = t
        if best_gap <= alpha * rng / (count - 1):
            continue
        is_start[best_t + 1] = True
        stack[top, 0] = s
        stack[top, 1] = best_t
        top += 1
        stack[top, 0] = best_t + 1
        stack[top, 1] = e
        top += 1
    return np.nonzero(is_start[:n])[0]


@njit(cache=True, nogil=True)
def prune_adjacent(sorted_x: np.ndarray, starts: np.ndarray, max_queues: int) -> np.ndarray:
    """Merge adjacent parts, least Ward cost first, until at most max_queues remain."""
    n = sorted_x.shape[0]
    cur = starts.copy()
    m = cur.shape[0]
    s1 = np.zeros(n + 1)
    for t in range(n):
        s1[t + 1] = s1[t] + sorted_x[t]
    while m > max_queues:
        best = np.inf
        best_p = 0
        for p in range(m - 1):
            a = cur[p]
            b = cur[p + 1]
            e = cur[p + 2] if p + 2 < m else n
            na = b - a
            nb = e - b
            diff = (s1[b] - s1[a]) / na - (s1[e] - s1[b]) / nb
            cost = na * nb / (na + nb) * diff * diff
            if cost < best:
                best = cost
                best_p = p
        for p in range(best_p + 1, m - 1):
            cur[p] = cur[p + 1]
        m -= 1
    return cur[:m]


@njit(cache=True, nogil=True)
def part_stats(sorted_x: np.ndarray, starts: np.ndarray):
    """Per part: lo, hi, mean, spread (standard deviation), count, density (count / max(range, 1))."""
    n = sorted_x.shape[0]
    m = starts.shape[0]
    lo = np.empty(m)
    hi = np.empty(m)
    mean = np.empty(m)
    spread = np.empty(m)
    count = np.empty(m, dtype=np.int64)
    density = np.empty(m)
    for p in range(m):
        s = starts[p]
        e = starts[p + 1] - 1 if p + 1 < m else n - 1
        c = e - s + 1
        mu = 0.0
        for t in range(s, e + 1):
            mu += sorted_x[t]
        mu /= c
        var = 0.0
        for t in range(s, e + 1):
            var += (sorted_x[t] - mu) ** 2
        lo[p] = sorted_x[s]
        hi[p] = sorted_x[e]
        mean[p] = mu
        spread[p] = np.sqrt(var / c)
        count[p] = c
        density[p] = c / max(sorted_x[e] - sorted_x[s], 1.0)
    return lo, hi, mean, spread, count, density


@njit(cache=True, nogil=True)
def refine_and_prune(sizes: np.ndarray, cost_offset: float, k0: int, alpha: float, min_size: int,
                     min_rel_range: float, max_queues: int):
    """The whole partition: sizes (any order, > 0) -> per-queue lo, hi, mean, spread, count, density.

    Clustering runs on log(size + cost_offset); the statistics are in tokens.
    """
    x = np.sort(sizes)
    v = np.log(x + cost_offset)
    n_distinct = 1
    for t in range(1, v.shape[0]):
        if v[t] != v[t - 1]:
            n_distinct += 1
    starts = _snap_to_runs(v, kmeans_1d_exact(v, min(k0, n_distinct)))
    starts = _snap_to_runs(v, refine_by_gaps(v, starts, alpha, min_size, min_rel_range))
    starts = prune_adjacent(v, starts, max_queues)
    return part_stats(x, starts)
