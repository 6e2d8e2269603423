"""Per-queue FIFO lists threaded through slot-indexed next/prev arrays (O(1) link and unlink).

head/tail/depth/work are [class row, queue column]; the last column of each row is the class's resume
lane. work sums the members' effective prefill tokens (the backlog behind the FCFS-wait estimate).
Queues are kept in (deadline, arrival time) order, remaining ties in insertion order; the lane is a stack
(the last request prepended comes first). What that order means is explained in ewsjf_core.waiting.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def link_in_order(slots: np.ndarray, key: np.ndarray, key2: np.ndarray, cls: np.ndarray, qid: np.ndarray,
                  prefill: np.ndarray, nxt: np.ndarray, prv: np.ndarray, head: np.ndarray, tail: np.ndarray,
                  depth: np.ndarray, work: np.ndarray) -> None:
    """Insert each slot into list (cls[s], qid[s]) after the last member whose (key, key2) is no larger.

    Walking back from the tail costs O(1) when keys come in order, as they do from engines.
    """
    for s in slots:
        c = cls[s]
        q = qid[s]
        t = tail[c, q]
        while t >= 0 and (key[t] > key[s] or (key[t] == key[s] and key2[t] > key2[s])):
            t = prv[t]
        prv[s] = t
        if t >= 0:
            nxt[s] = nxt[t]
            nxt[t] = s
        else:
            nxt[s] = head[c, q]
            head[c, q] = s
        if nxt[s] >= 0:
            prv[nxt[s]] = s
        else:
            tail[c, q] = s
        depth[c, q] += 1
        work[c, q] += prefill[s]


@njit(cache=True, nogil=True)
def push_front(slots: np.ndarray, cls: np.ndarray, qid: np.ndarray, prefill: np.ndarray, nxt: np.ndarray,
               prv: np.ndarray, head: np.ndarray, tail: np.ndarray, depth: np.ndarray, work: np.ndarray) -> None:
    """Put each slot at the front of list (cls[s], qid[s]), in turn (the last one ends up first)."""
    for s in slots:
        c = cls[s]
        q = qid[s]
        h = head[c, q]
        prv[s] = -1
        nxt[s] = h
        if h >= 0:
            prv[h] = s
        else:
            tail[c, q] = s
        head[c, q] = s
        depth[c, q] += 1
        work[c, q] += prefill[s]


@njit(cache=True, nogil=True)
def unlink(slots: np.ndarray, cls: np.ndarray, qid: np.ndarray, prefill: np.ndarray, nxt: np.ndarray,
           prv: np.ndarray, head: np.ndarray, tail: np.ndarray, depth: np.ndarray, work: np.ndarray) -> None:
    for s in slots:
        unlink_one(s, cls[s], qid[s], prefill[s], nxt, prv, head, tail, depth, work)


@njit(cache=True, nogil=True)
def unlink_one(s: int, c: int, q: int, slot_prefill: float, nxt: np.ndarray, prv: np.ndarray, head: np.ndarray,
               tail: np.ndarray, depth: np.ndarray, work: np.ndarray) -> None:
    """Take slot s out of list (c, q), whose work counts slot_prefill for it."""
    p = prv[s]
    n = nxt[s]
    if p >= 0:
        nxt[p] = n
    else:
        head[c, q] = n
    if n >= 0:
        prv[n] = p
    else:
        tail[c, q] = p
    nxt[s] = -1
    prv[s] = -1
    depth[c, q] -= 1
    work[c, q] -= slot_prefill


@njit(cache=True, nogil=True)
def list_members(head: np.ndarray, nxt: np.ndarray, first_col: int, end_col: int, total: int) -> np.ndarray:
    """All slots linked in columns [first_col, end_col) of every class row, row by row, in list order."""
    out = np.empty(total, dtype=np.int32)
    n = 0
    for c in range(head.shape[0]):
        for q in range(first_col, end_col):
            s = head[c, q]
            while s >= 0 and n < total:
                out[n] = s
                n += 1
                s = nxt[s]
    return out[:n]


@njit(cache=True, nogil=True)
def members_in_order(head: np.ndarray, nxt: np.ndarray, deadline: np.ndarray, arrival: np.ndarray,
                     seq: np.ndarray, n_cols: int, total: int):
    """All slots linked in columns [0, n_cols) of every class row, row by row, each row in (deadline,
    arrival, seq) order: a merge of the row's lists, which are each in that order already (O(members x
    columns) over the lists' current heads, kept in small local arrays, against a sort's O(members log
    members) over four scattered keys). Returns (slots, True); (a prefix, False) if a list turns out not
    to be in order, for the caller to sort instead."""
    out = np.empty(total, dtype=np.int32)
    cur = np.empty(n_cols, dtype=np.int32)
    key_d = np.empty(n_cols)
    key_a = np.empty(n_cols)
    key_s = np.empty(n_cols, dtype=np.int64)
    n = 0
    for c in range(head.shape[0]):
        for q in range(n_cols):
            s = head[c, q]
            cur[q] = s
            if s >= 0:
                key_d[q], key_a[q], key_s[q] = deadline[s], arrival[s], seq[s]
        while True:
            best = -1
            for q in range(n_cols):
                if cur[q] >= 0 and (best < 0 or key_d[q] < key_d[best] or (key_d[q] == key_d[best] and (
                        key_a[q] < key_a[best] or (key_a[q] == key_a[best] and key_s[q] < key_s[best])))):
                    best = q
            if best < 0:
                break
            if n >= total:
                return out[:n], False
            s = cur[best]
            out[n] = s
            n += 1
            t = nxt[s]
            cur[best] = t
            if t >= 0:
                d, a, k = deadline[t], arrival[t], seq[t]
                if d < key_d[best] or (d == key_d[best] and (a < key_a[best] or (a == key_a[best]
                                                                                  and k < key_s[best]))):
                    return out[:n], False
                key_d[best], key_a[best], key_s[best] = d, a, k
    return out[:n], True
