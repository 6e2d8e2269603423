"""Every EWSJF parameter in one place, with its default and its validation.

`EWSJFConfig` is frozen: a running queue swaps a whole new config in (one attribute store, atomic under
the GIL) rather than mutating fields, so the hot path never sees a half-updated parameter set.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

# The tuned vector theta, in the order the tuner and the scoring kernel use.
THETA_FIELDS = ("a_u", "b_u", "a_f", "b_f", "alpha")


@dataclass(frozen=True)
class EWSJFConfig:
    # --- Refine-and-Prune (section 1) ---
    window: int = 10_000
    """Effective lengths of this many recent arrivals feed the partitioner."""
    k0: int = 3
    """Coarse clusters of the exact 1-D k-means (short, medium, long)."""
    alpha: float = 5.0
    """Refine: split a cluster at its largest gap when that gap exceeds alpha * mean(gap)."""
    min_size: int = 32
    """Refine: a part is split further only if it has at least this many members..."""
    min_rel_range: float = 0.1
    """...and its range is at least min_rel_range * its mean (on the log-cost scale of ewsjf_core.partition:
    0.1 admits parts spanning about a 2x length ratio)."""
    max_queues: int = 8
    """Prune: adjacent parts merge until at most this many queues remain."""
    min_partition_samples: int = 64
    """Fewer recorded arrivals than this: keep the current partition."""
    repartition_every: int = 2_000
    """Re-partition automatically at the first step after this many arrivals (0: only on request)."""
    initial_edges: tuple[float, ...] = (1.0, 256.0, 2048.0)
    """Queue lower edges before the first data-driven partition (one queue per edge)."""

    # --- Routing (section 2) ---
    band_up: float = 1.10
    """A length up to band_up * (queue i's upper edge) still joins queue i."""
    band_down: float = 0.90
    """A length down to band_down * (queue i+1's lower edge) joins queue i+1."""
    max_bubbles: int = 4
    """At most this many bubble queues (for lengths in no queue's band) exist at once."""
    bubble_width: float = 0.25
    """A bubble centred on length c accepts lengths in [c / (1 + w), c * (1 + w)]."""
    bubble_empty_rounds: int = 64
    """A bubble queue is removed after this many consecutive steps with no waiting request."""

    # --- Scoring (section 3) ---
    w_base: float = 1.0
    a_u: float = 1.0e-3
    """w_urg(x) = a_u * x + b_u, x the queue's mean length in tokens."""
    b_u: float = 1.0
    a_f: float = 0.0
    """w_fair(x) = a_f * x + b_f."""
    b_f: float = 0.1
    max_wait: float = math.inf
    """Plain starvation bound in seconds: a request older than this is served first, oldest first (math.inf,
    the default, disables it; under a sustained overload a finite one serves everything oldest first)."""
    fcfs_wait_factor: float = 1.15
    """Starvation bound in admission progress (ewsjf_core.progress_bound): a request is served first once
    the work admitted since it arrived exceeds fcfs_wait_factor times the work FCFS would have admitted
    before it (the backlog ahead of it, floored at the recent mean backlog). Holds whatever limits the
    engine (prefill compute, KV memory, decode slots). 0 disables it."""
    output_weight: float = 1.0
    """Job size = effective prompt length + output_weight * predicted output tokens (when given)."""
    order_chunk: int = 256
    """Policy order is materialised this many requests at a time (pops beyond it recompute)."""

    # --- Prefill cost model C_prefill(b) = c0 + c1 b + c2 b^2, seconds ---
    prior_c0: float = 5.0e-3
    prior_c1: float = 1.0e-4
    prior_c2: float = 1.0e-9
    prior_decode: float = 2.0e-5
    """Prior seconds per decode token in a step (the model's fourth term)."""
    cost_forgetting: float = 0.995
    """Recursive least squares forgetting factor: about 1 / (1 - f) recent steps dominate."""
    cost_prior_strength: float = 10.0
    """How many steps' worth of evidence the prior counts for."""
    min_prefill_cost: float = 1.0e-4
    """Floor on C_prefill in seconds, so urgency stays finite."""

    # --- Tuner (section 4; bounds of theta) ---
    tune_bounds: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "a_u": (0.0, 5.0e-3),
            "b_u": (0.0, 4.0),
            "a_f": (0.0, 1.0e-3),
            "b_f": (0.0, 1.0),
            "alpha": (2.0, 10.0),
        }
    )

    def __post_init__(self) -> None:
        _check_int(self, "window", 16)
        _check_int(self, "k0", 1)
        _check_int(self, "min_size", 2)
        _check_int(self, "max_queues", 1)
        _check_int(self, "min_partition_samples", 2)
        _check_int(self, "repartition_every", 0)
        _check_int(self, "max_bubbles", 0)
        _check_int(self, "bubble_empty_rounds", 1)
        _check_int(self, "order_chunk", 1)
        _check_float(self, "alpha", low=1.0)
        _check_float(self, "min_rel_range", low=0.0)
        _check_float(self, "band_up", low=1.0)
        _check_float(self, "band_down", low=0.0, high=1.0, high_inclusive=True, low_inclusive=False)
        _check_float(self, "bubble_width", low=0.0, low_inclusive=False)
        for name in ("w_base", "a_u", "b_u", "a_f", "b_f", "output_weight",
                     "prior_c0", "prior_c1", "prior_c2", "prior_decode", "cost_prior_strength"):
            _check_float(self, name, low=0.0)
        _check_float(self, "max_wait", low=0.0, low_inclusive=False, allow_inf=True)
        _check_float(self, "fcfs_wait_factor", low=0.0)
        _check_float(self, "cost_forgetting", low=0.0, high=1.0, low_inclusive=False, high_inclusive=True)
        _check_float(self, "min_prefill_cost", low=0.0, low_inclusive=False)
        edges = tuple(self.initial_edges)
        if (not edges or any(not _is_real(e) or not math.isfinite(e) or e < 1 for e in edges)
                or any(b <= a for a, b in zip(edges, edges[1:]))):
            raise ValueError(f"EWSJFConfig.initial_edges must be increasing finite lengths >= 1, got {edges!r}")
        if len(edges) > self.max_queues:
            raise ValueError(
                f"EWSJFConfig.initial_edges has {len(edges)} queues, more than max_queues={self.max_queues}")
        object.__setattr__(self, "initial_edges", tuple(float(e) for e in edges))
        bounds_out = {}
        for name, bounds in dict(self.tune_bounds).items():
            if name not in THETA_FIELDS + ("w_base", "max_queues"):
                raise ValueError(f"EWSJFConfig.tune_bounds names unknown parameter {name!r}")
            lo, hi = tuple(bounds) if len(bounds) == 2 else (None, None)
            if not (_is_real(lo) and _is_real(hi) and math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"EWSJFConfig.tune_bounds[{name!r}] must be finite (low, high), low < high, "
                                 f"got {bounds!r}")
            bounds_out[name] = (float(lo), float(hi))
        object.__setattr__(self, "tune_bounds", bounds_out)

    def replace(self, **changes: Any) -> "EWSJFConfig":
        """A copy with `changes` applied and validated (unknown names raise TypeError naming them)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"EWSJFConfig has no parameter(s) {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "EWSJFConfig":
        """Build from a plain mapping (a parsed YAML/JSON file); unknown keys raise, naming them."""
        return cls().replace(**{k: (tuple(v) if k == "initial_edges" else v) for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tune_bounds"] = {k: list(v) for k, v in self.tune_bounds.items()}
        d["initial_edges"] = list(self.initial_edges)
        return d


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_int(cfg: EWSJFConfig, name: str, low: int) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"EWSJFConfig.{name} must be an integer >= {low}, got {v!r}")


def _check_float(cfg: EWSJFConfig, name: str, low: float, high: float = math.inf, *,
                 low_inclusive: bool = True, high_inclusive: bool = False, allow_inf: bool = False) -> None:
    v = getattr(cfg, name)
    ok = _is_real(v) and not math.isnan(v) and (allow_inf or math.isfinite(v))
    ok = ok and (v >= low if low_inclusive else v > low)
    ok = ok and (v <= high if high_inclusive else v < high or (allow_inf and v == math.inf))
    if not ok:
        lo_s = f"{'>=' if low_inclusive else '>'} {low}"
        hi_s = "" if high == math.inf else f" and {'<=' if high_inclusive else '<'} {high}"
        raise ValueError(f"EWSJFConfig.{name} must be a number {lo_s}{hi_s}, got {v!r}")
    object.__setattr__(cfg, name, float(v))


def read_mapping_file(path: str) -> dict[str, Any]:
    """Parse a YAML or JSON (.json) file of parameter values into a mapping; ValueError names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"cannot read the EWSJF config file {path!r}: {e}") from None
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # yaml.YAMLError, json.JSONDecodeError
        raise ValueError(f"cannot parse the EWSJF config file {path!r}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"the EWSJF config file {path!r} must hold a mapping of parameter names to values, "
                         f"got {type(data).__name__}")
    return dict(data)
