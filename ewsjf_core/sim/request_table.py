"""The requests of one replay as plain lists (fast per-item access in the step loop): their inputs from
the workload and what the engine records about each."""

from __future__ import annotations

import math

import numpy as np

from .workload import Workload


class RequestTable:
    __slots__ = ("arrival", "prompt", "output", "priority", "prefix_ids", "first_token", "finish",
                 "first_scheduled", "preemptions", "cached_at_admit", "rejected")

    def __init__(self, workload: Workload, use_prefix_ids: bool, max_model_len: int | None = None) -> None:
        n = len(workload)
        self.arrival: list[float] = workload.arrival_s.tolist()
        self.prompt: list[int] = workload.prompt_tokens.tolist()
        out = workload.output_tokens
        if max_model_len is not None:
            # vLLM stops a request when prompt + output reaches the context length (length-capped).
            # A context beyond int64 (accepted: no practical limit) is clipped so that the subtraction fits.
            limit = min(max_model_len, int(np.iinfo(np.int64).max))
            out = np.maximum(np.minimum(out, limit - workload.prompt_tokens), 1)
        self.output: list[int] = out.tolist()
        """Output tokens the engine generates (the workload's, capped at the context length)."""
        self.priority: list[int] = workload.priority.tolist()
        self.prefix_ids: list[list[int]] | None = (
            [h.tolist() for h in workload.prefix_blocks] if use_prefix_ids else None)
        nan = math.nan
        self.first_token = [nan] * n
        self.finish = [nan] * n
        self.first_scheduled = [nan] * n
        """Virtual time of the first admission (queue wait = this - arrival)."""
        self.preemptions = [0] * n
        self.cached_at_admit = [0] * n
        """Prefix-cache hit (tokens) at the first admission."""
        self.rejected = [False] * n

    def __len__(self) -> int:
        return len(self.arrival)
