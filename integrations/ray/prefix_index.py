"""The router's guess of each replica's prefix cache: the prompt blocks it recently sent there.

A replica's real prefix cache cannot be asked per request without a round trip, so the router remembers,
per replica, the block hashes of the prompts it routed there, evicting least recently used blocks beyond a
capacity (the replica's KV cache in blocks, or a guess of it). The expected hit of a new request on a
replica is the longest run of its leading blocks found there, as in vLLM's prefix cache.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence


class PrefixIndex:
    """Per-replica LRU sets of prompt block hashes."""

    def __init__(self, capacity_blocks: int = 65536) -> None:
        if isinstance(capacity_blocks, bool) or not isinstance(capacity_blocks, int) or capacity_blocks < 1:
            raise ValueError(f"prefix_capacity_blocks must be an integer >= 1, got {capacity_blocks!r}")
        self.capacity_blocks = int(capacity_blocks)
        self._blocks: dict[str, OrderedDict[int, None]] = {}

    def hit_blocks(self, replica_id: str, blocks: Sequence[int]) -> int:
        """Leading blocks of `blocks` the replica is expected to hold."""
        held = self._blocks.get(replica_id)
        if not held:
            return 0
        n = 0
        for b in blocks:
            if b not in held:
                break
            n += 1
        return n

    def record(self, replica_id: str, blocks: Sequence[int]) -> None:
        """The replica now holds these blocks (most recently used)."""
        if not blocks:
            return
        held = self._blocks.setdefault(replica_id, OrderedDict())
        for b in blocks:
            held[b] = None
            held.move_to_end(b)
        while len(held) > self.capacity_blocks:
            held.popitem(last=False)

    def forget(self, replica_id: str) -> None:
        self._blocks.pop(replica_id, None)
