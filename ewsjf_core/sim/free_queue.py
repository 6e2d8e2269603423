"""The KV cache's free block queue, as positions: vLLM v1's FreeKVCacheBlockQueue without block objects.

Every block that enters the queue gets the next position at its tail; allocation takes blocks from its
head in position order. A freed block keeps its content until allocation reaches it, so a block at
position p is intact while p >= head. A cache hit takes blocks out of the middle of the queue: their
positions become a hole that allocation skips.

Blocks never used yet sit ahead of every freed block: the queue starts with `total` of them (positions
[0, total)); an unlimited cache starts with more than can ever be allocated, so nothing freed is reused.
Freed blocks that hold nothing cacheable (a sequence's last partial block, blocks allocated but not computed)
go to the queue's front instead, as vLLM's block pool puts blocks without a hash: allocation reuses them
first, and they need no position.
"""

from __future__ import annotations

import heapq


class FreeQueue:
    __slots__ = ("head", "tail", "_holes", "_front")

    def __init__(self, total_blocks: int, unlimited: int) -> None:
        self.head = 0
        """Blocks allocated so far (skipped holes included): positions below it were reused."""
        # An unlimited cache never reuses a freed block: put the queue's tail out of reach.
        self.tail = total_blocks if total_blocks < (unlimited >> 1) else unlimited
        """Position the next freed block gets."""
        self._holes: list[tuple[int, int]] = []
        """Position ranges [start, end) taken out of the queue by hits (a heap by start)."""
        self._front = 0
        """Blocks without content at the queue's front."""

    def take(self, k: int) -> None:
        """Allocate k blocks from the front (the caller checked that k are free)."""
        if self._front:
            if k <= self._front:
                self._front -= k
                return
            k -= self._front
            self._front = 0
        if not self._holes:
            self.head += k
            return
        h = self.head
        holes = self._holes
        while holes and holes[0][0] <= h + k:
            s0, e0 = heapq.heappop(holes)
            if e0 <= h:
                continue
            if s0 > h:
                k -= s0 - h
            h = e0
        self.head = h + k

    def append(self, n: int) -> None:
        """n blocks enter at the tail (the first of them is reused first)."""
        self.tail += n

    def prepend(self, n: int) -> None:
        """n blocks without content enter at the front (allocation takes them first)."""
        self._front += n

    def take_out(self, start: int, n: int) -> None:
        """The intact blocks at positions [start, start + n) leave the queue (a hit reuses them)."""
        heapq.heappush(self._holes, (start, start + n))
