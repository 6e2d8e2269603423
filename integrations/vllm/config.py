"""Configuration of the vLLM integration: EWSJF parameters plus a few integration options.

Sources, later ones overriding earlier ones key by key:
  1. defaults (EWSJFConfig(), VLLMOptions());
  2. a YAML or JSON file named by the environment variable EWSJF_CONFIG;
  3. vLLM's `--additional-config '{"ewsjf": {...}}'` (VllmConfig.additional_config["ewsjf"]);
  4. keyword arguments given to the scheduler's constructor (programmatic use, the virtual harness).
Every source has the same shape: EWSJFConfig field names at the top level, and an optional `vllm` mapping
of VLLMOptions fields, e.g.

    max_wait: 30.0
    max_queues: 6
    vllm:
      log_interval_s: 120
    tuner:                 # optional: the Bayesian tuner (ewsjf_core.tuner.TunerSettings fields), or `true`
      mode: replay
      state_path: /var/lib/ewsjf/tuner.json

Anything wrong (missing or unparsable file, unknown key, invalid value) raises EWSJFConfigError at scheduler
construction, i.e. at engine start, naming the source and the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ewsjf_core.config import EWSJFConfig, read_mapping_file
from ewsjf_core.field_checks import FloatBounds, check_choice, check_float
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE
from ewsjf_core.tuner.settings import TunerSettings

CONFIG_ENV = "EWSJF_CONFIG"
ADDITIONAL_CONFIG_KEY = "ewsjf"


class EWSJFConfigError(ValueError):
    """The EWSJF configuration given to the vLLM integration is invalid."""


@dataclass(frozen=True)
class VLLMOptions:
    """Options of the vLLM adapter itself (not of the EWSJF policy)."""

    prefix_cache_lookup: bool = True
    """At arrival, look the prompt up in vLLM's prefix cache (a read-only hash lookup per block) and size
    the job by its uncached part only."""
    output_prediction: str = "none"
    """Output-length prediction fed to the queue: "none", or "max_tokens" (the request's max_tokens cap)."""
    lazy_begin_step: bool = True
    """Run EWSJFQueue.begin_step only in steps where vLLM consults the waiting queue (at its first peek/pop;
    same `now`); false: at the start of every schedule()."""
    log_interval_s: float = 60.0
    """Seconds between one-line summaries in the log (0 disables)."""
    metrics_interval_s: float = 1.0
    """Seconds between exports of the queue's state to vLLM's /metrics (0 disables)."""
    waiting_head_share: float = DEFAULT_WAITING_HEAD_SHARE
    """While a running request is in chunked prefill, the next waiting request, if it needs at most this
    fraction of the token budget, gets room in the same step (a per-step long_prefill_token_threshold:
    ewsjf.integrations.vllm.head_share). 0: vLLM's own behaviour."""
    preemption_guard: bool = DEFAULT_PREEMPTION_GUARD
    """After a step preempted, admissions beside running requests leave free the KV blocks the running batch
    grows by between two completions, decaying over a request's measured lifetime (vLLM's watermark, learned:
    ewsjf.integrations.vllm.preemption_guard). For engines whose outputs outgrow KV memory (long outputs, few
    sequences in memory); where nothing is preempted it is 0. False: vLLM's own."""

    def __post_init__(self) -> None:
        for name in ("prefix_cache_lookup", "lazy_begin_step", "preemption_guard"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"vllm.{name} must be true or false, got {getattr(self, name)!r}")
        check_choice(self, "output_prediction", ("none", "max_tokens"))
        check_float(self, "waiting_head_share", FloatBounds(0.0, 1.0))
        for name in ("log_interval_s", "metrics_interval_s"):   # seconds: a year at most (0 disables)
            check_float(self, name, FloatBounds(0.0, 3.2e7))


@dataclass(frozen=True)
class Settings:
    config: EWSJFConfig
    options: VLLMOptions
    sources: tuple[str, ...]
    """Where overrides came from, for the startup log line."""
    tuner: TunerSettings | None = None
    """The tuner's settings when the `tuner` key enables it (a mapping, or true); None: no tuner."""


def _split(source: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(EWSJFConfig fields, vllm options, tuner) of one source; tuner: None, a bool or a mapping."""
    if not isinstance(values, Mapping):
        raise EWSJFConfigError(f"EWSJF config from {source} must be a mapping, got {type(values).__name__}")
    core = {str(k): v for k, v in values.items() if k not in ("vllm", "tuner")}
    opts = values.get("vllm", {}) or {}
    if not isinstance(opts, Mapping):
        raise EWSJFConfigError(f"EWSJF config from {source}: 'vllm' must be a mapping, got {type(opts).__name__}")
    tuner = values.get("tuner")
    if tuner is not None and not isinstance(tuner, (bool, Mapping)):
        raise EWSJFConfigError(f"EWSJF config from {source}: 'tuner' must be true, false or a mapping of "
                               f"tuner settings, got {type(tuner).__name__}")
    return core, {str(k): v for k, v in opts.items()}, tuner


def load_settings(additional_config: Any = None, overrides: EWSJFConfig | Mapping[str, Any] | None = None,
                  options: VLLMOptions | Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the configuration sources (see the module docstring); raise EWSJFConfigError if invalid."""
    env = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = []
    path = env.get(CONFIG_ENV, "")
    if path:
        try:
            values = read_mapping_file(path)
        except ValueError as e:
            raise EWSJFConfigError(f"{e} (from ${CONFIG_ENV})") from None
        layers.append((f"file {path!r} (${CONFIG_ENV})", *_split(f"file {path!r}", values)))
    if isinstance(additional_config, Mapping) and additional_config.get(ADDITIONAL_CONFIG_KEY) is not None:
        src = f"--additional-config {ADDITIONAL_CONFIG_KEY!r}"
        layers.append((src, *_split(src, additional_config[ADDITIONAL_CONFIG_KEY])))

    base = EWSJFConfig()
    if isinstance(overrides, EWSJFConfig):
        base, overrides = overrides, None  # a whole config given in code replaces the defaults
    if overrides is not None:
        layers.append(("keyword arguments", *_split("keyword arguments", overrides)))
    if isinstance(options, VLLMOptions):
        opt_base, options = options, None
    else:
        opt_base = VLLMOptions()
    if options is not None:
        layers.append(("keyword arguments (options)", {}, dict(options), None))

    core_fields = {f.name for f in dataclasses.fields(EWSJFConfig)}
    opt_fields = {f.name for f in dataclasses.fields(VLLMOptions)}
    merged_core: dict[str, Any] = {}
    merged_opt: dict[str, Any] = {}
    tuner_on, tuner_values = False, {}
    for source, core, opt, tuner in layers:
        unknown = sorted(set(core) - core_fields)
        if unknown:
            raise EWSJFConfigError(f"EWSJF config from {source}: unknown parameter(s) {', '.join(unknown)} "
                                   f"(EWSJFConfig fields: {', '.join(sorted(core_fields))}; integration options go "
                                   f"under 'vllm': {', '.join(sorted(opt_fields))})")
        unknown = sorted(set(opt) - opt_fields)
        if unknown:
            raise EWSJFConfigError(f"EWSJF config from {source}: unknown vllm option(s) {', '.join(unknown)} "
                                   f"(known: {', '.join(sorted(opt_fields))})")
        merged_core.update(core)
        merged_opt.update(opt)
        if tuner is not None:  # true/false switch the tuner; a mapping switches it on and sets values
            tuner_on = bool(tuner) if isinstance(tuner, bool) else True
            if isinstance(tuner, Mapping):
                tuner_values.update(tuner)
    # Validated once, merged: a combination may be valid even where one layer alone would not be.
    where = ", ".join(s for s, _, _, _ in layers) or "defaults"
    try:
        config = base.replace(**{k: (tuple(v) if k == "initial_edges" and isinstance(v, (list, tuple)) else v)
                                 for k, v in merged_core.items()}) if merged_core else base
        opts = dataclasses.replace(opt_base, **merged_opt) if merged_opt else opt_base
        tuner_settings = TunerSettings.from_mapping(tuner_values) if tuner_on else None
    except (ValueError, TypeError) as e:
        raise EWSJFConfigError(f"invalid EWSJF config (from {where}): {e}") from None
    return Settings(config, opts, tuple(s for s, _, _, _ in layers), tuner_settings)
