"""Dynamic queue routing: job size -> queue id (hot path, per arrival batch).

Queues are the partition's core ranges [lo_i, hi_i], sorted and disjoint, possibly with holes between.
For a size x, with i the last queue whose lo_i <= x (binary search):
  - x <= band_up * hi_i                       -> queue i   (inside, or up to 10% above its upper edge)
  - x >= band_down * lo_{i+1}                 -> queue i+1 (down to 90% of the next queue's lower edge)
  - x below every queue                       -> queue 0   (the shortest queue takes everything shorter)
  - otherwise x lies in a hole or beyond the longest queue: an active bubble queue whose window
    [c / (1 + w), c * (1 + w)] holds x takes it; else a new bubble centred on x opens if fewer than
    max_bubbles exist; else x joins the nearer neighbour queue (log distance).
Queue ids: main queue i is i; bubble j is bubble_base + j.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _last_lo_at_most(lo: np.ndarray, n: int, x: float) -> int:
    """Index of the last lo[i] <= x among lo[:n] (sorted), or -1."""
    a = 0
    b = n
    while a < b:
        mid = (a + b) // 2
        if lo[mid] <= x:
            a = mid + 1
        else:
            b = mid
    return a - 1


@njit(cache=True, nogil=True)
def route_lengths(sizes: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_main: int, band_up: float,
                  band_down: float, bubble_center: np.ndarray, bubble_active: np.ndarray,
                  bubble_idle: np.ndarray, bubble_width: float, bubble_base: int) -> np.ndarray:
    """Queue id of each size. Opens bubbles in place (bubble_center/active/idle) as needed."""
    out = np.empty(sizes.shape[0], dtype=np.int32)
    widen = 1.0 + bubble_width
    for r in range(sizes.shape[0]):
        x = sizes[r]
        i = _last_lo_at_most(lo, n_main, x)
        if i < 0:
            out[r] = 0
            continue
        if x <= band_up * hi[i]:
            out[r] = i
            continue
        if i + 1 < n_main and x >= band_down * lo[i + 1]:
            out[r] = i + 1
            continue
        chosen = -1
        best = np.inf
        for j in range(bubble_active.shape[0]):
            if bubble_active[j]:
                c = bubble_center[j]
                if c / widen <= x <= c * widen:
                    d = abs(np.log(x / c))
                    if d < best:
                        best = d
                        chosen = j
        if chosen < 0:
            for j in range(bubble_active.shape[0]):
                if not bubble_active[j]:
                    bubble_active[j] = True
                    bubble_center[j] = x
                    bubble_idle[j] = 0
                    chosen = j
                    break
        if chosen >= 0:
            out[r] = bubble_base + chosen
        elif i + 1 < n_main and np.log(lo[i + 1] / x) < np.log(x / hi[i]):
            out[r] = i + 1
        else:
            out[r] = i
    return out
