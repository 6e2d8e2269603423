"""The simulated engine's settings (`EngineConfig`, vLLM's engine arguments) and its clock (`VirtualClock`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ewsjf_core.field_checks import is_real

from .workload import PREFIX_BLOCK_TOKENS

DEFAULT_WAITING_HEAD_SHARE = 0.25
"""The waiting_head_share EWSJF's vLLM scheduler uses by default (VLLMOptions.waiting_head_share) and the bench
gives EWSJF's replays (--ewsjf-head-share): a request needing at most a quarter of the token budget counts as
short next to a running prefill, which then keeps at least three quarters of it. (Half let medium prompts of
2-4k tokens in beside long prefills and cost the short class elsewhere: bench/SUITE_PASSES.md, fourth pass.)
Baselines run on the engine as vLLM ships it (0)."""

DEFAULT_PREEMPTION_GUARD = True
"""Whether EWSJF's vLLM scheduler keeps its watermark learned from preemptions by default
(VLLMOptions.preemption_guard, EngineConfig.preemption_guard; ewsjf_core.preemption_guard) and the bench gives it
EWSJF's replays (--ewsjf-preemption-guard): on the suite, seeds 0-2, 257 checks of 347 against 231 without
(bench/SUITE_PASSES.md, fourteenth pass). Baselines run on the engine as vLLM ships it (off)."""


MIN_KV_BLOCKS = 2
"""The fewest KV blocks an engine can serve with: block 0 is vLLM's null block (the simulator's too), so with one
block no request can ever be allocated and every one is rejected; with two, any request that fits one block runs
(a longer one is rejected as too long for the cache: ewsjf_core.sim.engine.rejection_reasons)."""


class VirtualClock:
    """The simulation's clock: call it (or read `.now`) for the current virtual time in seconds.

    Pass the instance as the queue's clock (`FCFSQueue(clock=clock)`) and to `simulate(..., clock=clock)`.
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now!r})"


@dataclass(frozen=True)
class EngineConfig:
    token_budget: int = 8192
    """max_num_batched_tokens: tokens computed per step at most."""
    max_running: int = 256
    """max_num_seqs: running requests at most."""
    kv_blocks: int | None = None
    """KV-cache blocks, at least MIN_KV_BLOCKS; None: derived from GPU memory by the step-time model (its
    kv_blocks()), or unlimited if the model has none."""
    block_size: int = 16
    chunked_prefill: bool = True
    prefix_caching: bool = True
    gpu_memory_utilization: float = 0.9
    """Used when kv_blocks is None, as vLLM's --gpu-memory-utilization."""
    max_model_len: int | None = None
    """Context length (vLLM's --max-model-len): prompts of this length or longer are rejected on arrival,
    outputs stop when prompt + output reaches it. None: no limit."""
    reserve_full_sequence: bool = True
    """Admit a waiting request only if the KV cache can hold its whole sequence (prompt plus tokens
    generated so far, less its prefix-cache hit), not just its first chunk: vLLM's
    scheduler_reserve_full_isl (on by default in vLLM 0.32)."""

    long_prefill_token_threshold: int = 0
    """vLLM's --long-prefill-token-threshold: with chunked prefill, a request gets at most this many prompt
    tokens per step (running or newly admitted) while it is not the only request running or waiting, so a
    long prefill leaves the rest of the budget to others. 0 (vLLM's default): no cap."""

    waiting_head_share: float = 0.0
    """A share of the chunk budget for the waiting queue's next request while a prefill runs: when > 0, some
    running request is still in prefill and the request at the head of the queue's order needs at most this
    fraction of token_budget (uncached prompt tokens) and fits the KV cache, this step's running prefills leave
    it room (their chunk cap: the budget after decodes less its tokens), so it is admitted now instead of
    after the long prefill. The vLLM integration does the same through vLLM's long_prefill_token_threshold,
    set per step (ewsjf.integrations.vllm.scheduler). 0: off (vLLM's behaviour)."""

    kv_watermark: float = 0.0
    """vLLM's scheduler_config.watermark (--watermark): a waiting or preempted request is admitted only if
    int(kv_watermark x kv_blocks) blocks stay free after its allocation, while another request runs. The
    running batch's outputs grow into that headroom instead of forcing preemptions. 0: off (vLLM's default)."""

    preemption_guard: bool = False
    """A watermark learned from preemptions (ewsjf_core.preemption_guard): after a step preempted, admissions
    beside running requests leave free the blocks the running batch grows by between two completions (the
    measured mean output length over block_size), decaying over a request's lifetime. The vLLM integration's
    VLLMOptions.preemption_guard (on by default there, DEFAULT_PREEMPTION_GUARD). False: off (vLLM's behaviour,
    and this engine's default: the baselines run without it)."""

    def with_kv_blocks(self, step_time) -> "EngineConfig":
        """This config with kv_blocks as the simulator sizes the KV cache: given, else the step-time model's
        kv_blocks(block_size, gpu_memory_utilization) when it has one, else None (unlimited)."""
        if self.kv_blocks is not None or not hasattr(step_time, "kv_blocks"):
            return self
        return dataclasses.replace(self, kv_blocks=int(step_time.kv_blocks(self.block_size,
                                                                           self.gpu_memory_utilization)))

    def __post_init__(self) -> None:
        for name in ("chunked_prefill", "prefix_caching", "reserve_full_sequence", "preemption_guard"):
            v = getattr(self, name)
            if not isinstance(v, bool):   # a truthy "false" would silently turn the feature on
                raise ValueError(f"EngineConfig.{name} must be True or False, got {v!r}")
        if not 0.0 <= self._number("waiting_head_share") <= 1.0:
            raise ValueError(f"EngineConfig.waiting_head_share must be in [0, 1], got {self.waiting_head_share!r}")
        if not 0.0 <= self._number("kv_watermark") < 1.0:
            raise ValueError(f"EngineConfig.kv_watermark must be in [0, 1), got {self.kv_watermark!r}")
        t = self.long_prefill_token_threshold
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"EngineConfig.long_prefill_token_threshold must be an integer >= 0, got {t!r}")
        for name in ("token_budget", "max_running", "block_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"EngineConfig.{name} must be an integer >= 1, got {v!r}")
        if self.kv_blocks is not None and (isinstance(self.kv_blocks, bool) or not isinstance(self.kv_blocks, int)
                                           or self.kv_blocks < MIN_KV_BLOCKS):
            raise ValueError(f"EngineConfig.kv_blocks must be an integer >= {MIN_KV_BLOCKS} (one is vLLM's null "
                             f"block, which holds no request) or None, got {self.kv_blocks!r}")
        if self.token_budget < self.max_running:
            raise ValueError(f"EngineConfig.token_budget ({self.token_budget}) must be >= max_running "
                             f"({self.max_running}): every running request decodes each step")
        if PREFIX_BLOCK_TOKENS % self.block_size:
            raise ValueError(f"EngineConfig.block_size ({self.block_size}) must divide {PREFIX_BLOCK_TOKENS}")
        if self.max_model_len is not None and (isinstance(self.max_model_len, bool)
                                               or not isinstance(self.max_model_len, int) or self.max_model_len < 2):
            raise ValueError(f"EngineConfig.max_model_len must be an integer >= 2 or None, got {self.max_model_len!r}")
        if not 0 < self._number("gpu_memory_utilization") <= 1:
            raise ValueError(f"EngineConfig.gpu_memory_utilization must be in (0, 1], got "
                             f"{self.gpu_memory_utilization!r}")

    def _number(self, name: str) -> float:
        """The field's value if it is a real number (not a bool, a string or None: those compared raise
        TypeError, or pass as 0 and 1)."""
        v = getattr(self, name)
        if not is_real(v):
            raise ValueError(f"EngineConfig.{name} must be a number, got {v!r}")
        return v
