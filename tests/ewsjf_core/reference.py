"""Plain-Python references of the jitted kernels, written for clarity, not speed.

The differential tests check kernel == reference on random inputs. Each reference restates the rule from
the module docstring it mirrors, independently of the kernel's code.
"""

from __future__ import annotations

import itertools
import math


def sse(xs: list[float]) -> float:
    if not xs:
        return 0.0
    mu = sum(xs) / len(xs)
    return sum((x - mu) ** 2 for x in xs)


def kmeans_cost(sorted_x: list[float], starts: list[int]) -> float:
    bounds = list(starts) + [len(sorted_x)]
    return sum(sse(sorted_x[a:b]) for a, b in zip(bounds, bounds[1:]))


def kmeans_brute_force(sorted_x: list[float], k: int) -> float:
    """Minimum k-means cost over every contiguous split of sorted data (exponential: small n only)."""
    n = len(sorted_x)
    k = min(k, n)
    best = math.inf
    for cuts in itertools.combinations(range(1, n), k - 1):
        best = min(best, kmeans_cost(sorted_x, [0, *cuts]))
    return best


def snap_to_runs(sorted_x: list[float], starts: list[int]) -> list[int]:
    out: list[int] = []
    for c in starts:
        while c > 0 and sorted_x[c] == sorted_x[c - 1]:
            c -= 1
        if not out or c > out[-1]:
            out.append(c)
    return out


def refine_by_gaps(sorted_x, starts, alpha, min_size, min_rel_range) -> list[int]:
    n = len(sorted_x)
    parts = [(s, (starts[i + 1] if i + 1 < len(starts) else n) - 1) for i, s in enumerate(starts)]
    result = set(starts)

    def refine(s: int, e: int) -> None:
        xs = sorted_x[s:e + 1]
        if len(xs) < min_size:
            return
        rng = xs[-1] - xs[0]
        if rng <= 0 or rng < min_rel_range * (sum(xs) / len(xs)):
            return
        gaps = [xs[t + 1] - xs[t] for t in range(len(xs) - 1)]
        g = max(gaps)
        if g <= alpha * rng / (len(xs) - 1):
            return
        t = s + gaps.index(g)  # first largest gap
        result.add(t + 1)
        refine(s, t)
        refine(t + 1, e)

    for s, e in parts:
        refine(s, e)
    return sorted(result)


def prune_adjacent(sorted_x, starts, max_queues) -> list[int]:
    """Merge the adjacent pair whose merge adds the least within-part squared deviation (Ward)."""
    cur = list(starts)
    n = len(sorted_x)
    while len(cur) > max_queues:
        def ward(p: int) -> float:
            a = sorted_x[cur[p]:cur[p + 1]]
            b = sorted_x[cur[p + 1]:(cur[p + 2] if p + 2 < len(cur) else n)]
            return len(a) * len(b) / (len(a) + len(b)) * (sum(a) / len(a) - sum(b) / len(b)) ** 2
        best = min(range(len(cur) - 1), key=ward)  # first minimum, as the kernel
        del cur[best + 1]
    return cur


def part_stats(sorted_x, starts):
    n = len(sorted_x)
    out = []
    for i, s in enumerate(starts):
        xs = sorted_x[s:(starts[i + 1] if i + 1 < len(starts) else n)]
        mu = sum(xs) / len(xs)
        out.append((xs[0], xs[-1], mu, math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs)), len(xs),
                    len(xs) / max(xs[-1] - xs[0], 1.0)))
    return out


def route(x, lo, hi, band_up, band_down, bubbles, max_bubbles, width, base):
    """Queue id for one size; `bubbles` is a list of centres (None = free slot), updated in place."""
    i = max((j for j in range(len(lo)) if lo[j] <= x), default=-1)
    if i < 0:
        return 0
    if x <= band_up * hi[i]:
        return i
    if i + 1 < len(lo) and x >= band_down * lo[i + 1]:
        return i + 1
    fits = [(abs(math.log(x / c)), j) for j, c in enumerate(bubbles)
            if c is not None and c / (1 + width) <= x <= c * (1 + width)]
    if fits:
        return base + min(fits)[1]
    for j in range(max_bubbles):
        if bubbles[j] is None:
            bubbles[j] = x
            return base + j
    if i + 1 < len(lo) and math.log(lo[i + 1] / x) < math.log(x / hi[i]):
        return i + 1
    return i


def score(now, b, p, arrival, rank, n_active, q_mean, w_base, a_u, b_u, a_f, b_f, c0, c1, c2, min_cost):
    wait = max(0.0, now - arrival)
    qf = (n_active - rank) / (b + 1.0)
    uf = max(n_active / 2.0 - rank, 1.0)
    cs = wait / max(c0 + c1 * p + c2 * p * p, min_cost)
    return qf * (w_base + (a_f * q_mean + b_f) * math.log(b + 1.0)) + uf * (a_u * q_mean + b_u) * cs / (b + 1.0)


def policy_order(now, classes, score_of, progress=0.0, pos=None, bypass=0.0, out_work=0.0, progress_n=0.0,
                 own_slack=0.0, due_admitted=(-math.inf, 0.0), late=0.0):
    """classes: per class (most urgent first) a pair (lane, queues); lane is a list of items in lane order;
    queues maps queue id -> list of items (dicts with 'deadline', 'due_work' and 'arrival') in queue order.
    A head is starved when now > deadline or (now >= its 'not_before', default -inf, and) the progress (prefill
    `progress`, requests `progress_n`) passes its
    due point (prefill 'due_work', requests 'due_n', default 0), each request weighing out_work more; starved
    heads go oldest arrival first.
    Before each starved head not past its time deadline, heads of queues with a smaller pos[qid] (not due
    themselves) bypass it, smallest pos first, while their work (prefill + out_work each) sums to at most
    bypass x its own work, less the work admitted since it became due or since the last admission of a due
    request (`due_admitted`: the progress then, prefill and requests), whichever is less; the work admitted counts
    the order's items before it as admitted, and a due item emitted becomes the last due admission. A due point counts
    own_slack x the item's 'prefill' later (own_size_slack). The budget is at least late x its own work less
    the work admitted past its own due point, for a head whose 'backlogs' (default 0) is at most 2 (the late share).
    score_of(qid, head) scores a queue by its current head. Returns [(item, reason, qid)]."""

    def overdue(item):
        return (progress - item["due_work"] - own_slack * item["prefill"]
                + out_work * (progress_n - item.get("due_n", 0.0)))

    def is_due(item):
        return now > item["deadline"] or (now >= item.get("not_before", -math.inf) and overdue(item) > 0.0)
    out = []
    # The progress as if the order so far were admitted, and the same just after its last due request.
    emitted, emitted_n = 0.0, 0
    mark, mark_n = due_admitted

    def emit(item, reason, q):
        nonlocal emitted, emitted_n, mark, mark_n
        out.append((item, reason, q))
        emitted += item["prefill"]
        emitted_n += 1
        if reason == 1:
            mark, mark_n = progress + emitted, progress_n + emitted_n
    for lane, queues in classes:
        for it in lane:
            emit(it, 0, None)
        queues = {q: list(items) for q, items in queues.items()}
        while True:
            starved = [(items[0]["arrival"], q) for q, items in queues.items() if items and is_due(items[0])]
            if not starved:
                break
            _, q = min(starved)
            head = queues[q][0]
            since_due_point = overdue(head) + emitted + out_work * emitted_n
            since_due_admitted = progress + emitted - mark + out_work * (progress_n + emitted_n - mark_n)
            spent = max(min(since_due_point, since_due_admitted), 0.0)
            budget = bypass * (head["prefill"] + out_work) - spent if now <= head["deadline"] else 0.0
            if now <= head["deadline"] and head.get("backlogs", 0.0) <= 2.0:
                budget = max(budget, late * (head["prefill"] + out_work) - max(since_due_point, 0.0))
            while True:  # heads of shorter queues, shortest first, within the bypass share of the due one's work
                fits = [(pos[o], o) for o, items in queues.items() if items and pos[o] < pos[q]
                        and items[0]["prefill"] + out_work <= budget and not is_due(items[0])]
                if not fits:
                    break
                _, o = min(fits)
                budget -= queues[o][0]["prefill"] + out_work
                emit(queues[o].pop(0), 2, o)
            emit(queues[q].pop(0), 1, q)
        ranked = sorted((q for q in queues if queues[q]), key=lambda q: (-score_of(q, queues[q][0]), q))
        for q in ranked:
            for it in queues[q]:
                emit(it, 2, q)
    return out
