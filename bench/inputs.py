"""The files `ewsjf bench` reads besides the trace (EWSJF config, HF model config) and the paths it writes,
checked before any replay: each failure is a ValueError whose message names the option and the input."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from typing import Any

from ewsjf_core.config import EWSJFConfig, read_mapping_file
from ewsjf_core.sim import EngineConfig, ModelSpec, RooflineStepTime
from ewsjf_core.sim.context_length import context_length
from ewsjf_core.sim.model_spec import hf_config_path
from ewsjf_core.sim.step_time import MODEL_PRESETS

from .trace_input import TraceError, check_regular_file

MAX_CONFIG_BYTES = 1 << 20
"""Largest config file read (1 MiB; an EWSJF or HF config is a few KB): /dev/zero or a trace passed by
mistake is refused instead of read into memory."""


def _small_file(option: str, path: str, what: str) -> None:
    try:
        check_regular_file(path, what)
    except TraceError as e:
        raise ValueError(f"{option}: {e}") from None
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{option}: {path}: {size} bytes, larger than any {what} ({MAX_CONFIG_BYTES} at most)")


def ewsjf_config(path: str | None, overrides: list[str]) -> EWSJFConfig | None:
    """--ewsjf-config FILE then each --ewsjf-set NAME=VALUE (a YAML value) on top; None when neither is given."""
    values: dict[str, Any] = {}
    if path:
        _small_file("--ewsjf-config", path, "EWSJF config file")
        try:
            values.update(read_mapping_file(path))
        except ValueError as e:
            raise ValueError(f"--ewsjf-config {_yaml_where(path, e.__context__) or path}: "
                             f"{_first_line(e)}") from None
    for item in overrides:
        name, value = _override(item)
        values[name] = value
    if not values:
        return None
    try:
        return EWSJFConfig.from_mapping(values)
    except (TypeError, ValueError, OverflowError, MemoryError) as e:
        where = f"--ewsjf-config {path}" if path else "--ewsjf-set"
        raise ValueError(f"{where}: {e}") from None


def _yaml_where(path: str, err: BaseException | None) -> str | None:
    """path:line of a YAML parse error (its message spans several lines)."""
    mark = getattr(err, "problem_mark", None)
    return f"{path}:{mark.line + 1}" if mark is not None else None


def _first_line(e: BaseException) -> str:
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    problem = getattr(e.__context__, "problem", None)
    return lines[0] + (f" ({problem})" if problem and problem not in lines[0] else "") if lines else type(e).__name__


def _override(item: str) -> tuple[str, Any]:
    import yaml

    if "=" not in item:
        raise ValueError(f"--ewsjf-set expects NAME=VALUE, got {item!r}")
    name, text = (x.strip() for x in item.split("=", 1))
    if not name:
        raise ValueError(f"--ewsjf-set expects NAME=VALUE, got {item!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ValueError(f"--ewsjf-set {name}: cannot parse the value {text!r} ({problem})") from None
    if isinstance(value, str) and value.lower() in ("inf", "+inf", "infinity"):
        value = float("inf")
    return name, value


def step_model(model: str, gpu: str) -> RooflineStepTime:
    """A model preset, or an HF config.json (the file or its folder) read with a bounded read."""
    if model.lower() in MODEL_PRESETS or not os.path.exists(model):
        return RooflineStepTime(model, gpu)
    path = hf_config_path(model)
    _small_file("--model", path, "model config file")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"--model {path}: not a JSON model config ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--model {path}: expected a JSON object (an HF config.json), got {type(cfg).__name__}")
    try:
        spec = ModelSpec.from_hf_config(cfg, name=os.path.basename(os.path.dirname(os.path.abspath(path))))
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"--model {path}: {e}") from None
    return RooflineStepTime(spec, gpu)


ENGINE_OPTIONS = {"token_budget": "--token-budget", "max_running": "--max-running", "kv_blocks": "--kv-blocks",
                  "block_size": "--block-size", "gpu_memory_utilization": "--gpu-memory-utilization",
                  "kv_watermark": "--watermark", "max_model_len": "--max-model-len",
                  "waiting_head_share": "--ewsjf-head-share"}
"""The bench option that sets each EngineConfig field: an engine refused for its settings is refused by the
options the user gave, not by the fields they became."""


def engine_error(e: ValueError) -> ValueError:
    """e's message behind the options of the EngineConfig fields it names, in the order it names them."""
    text = str(e)
    found = sorted((m.start(), option) for field, option in ENGINE_OPTIONS.items()
                   for m in [re.search(rf"\b{field}\b", text)] if m)
    return ValueError(f"{', '.join(option for _, option in found)}: {text}" if found else text)


def engine_config(args, *, with_context_length: bool = True, prefix_caching: bool | None = None) -> EngineConfig:
    """The engine of the bench's engine options (--token-budget, --watermark, ...), for every mode, so that a new
    option reaches them all. The modes differ on purpose: the suite's workloads set their own models, so it takes
    no context length (with_context_length=False); the fidelity matrix sets prefix caching per case
    (prefix_caching: that value instead of --no-prefix-caching's)."""
    try:
        return EngineConfig(
            token_budget=args.token_budget, max_running=args.max_running, kv_blocks=args.kv_blocks,
            block_size=args.block_size, chunked_prefill=not args.no_chunked_prefill,
            prefix_caching=not args.no_prefix_caching if prefix_caching is None else prefix_caching,
            gpu_memory_utilization=args.gpu_memory_utilization, kv_watermark=args.watermark,
            max_model_len=(args.max_model_len or context_length(args.model)) if with_context_length else None)
    except ValueError as e:   # options that parse one by one but not together (--token-budget < --max-running)
        raise engine_error(e) from None


def sized_engine(engine: EngineConfig, step_model) -> EngineConfig:
    """engine.with_kv_blocks(step_model), refused by option: a model that leaves no KV memory beside its weights
    names --gpu-memory-utilization where a higher one leaves some, else --model and --gpu (none does)."""
    try:
        return engine.with_kv_blocks(step_model)
    except ValueError as e:
        if _sizes_at_full_memory(engine, step_model):
            raise engine_error(e) from None
        raise ValueError(f"--model, --gpu: {e}") from None


def _sizes_at_full_memory(engine: EngineConfig, step_model) -> bool:
    try:
        dataclasses.replace(engine, gpu_memory_utilization=1.0).with_kv_blocks(step_model)
    except ValueError:
        return False
    return True


def check_servable(why: list[str], engine: EngineConfig, kv_blocks: int, model_context: bool,
                   what: str = "the workload") -> None:
    """An engine that would reject every request of the workload (`why`, its rejection_reasons: the context
    length, the KV cache, the token budget without chunked prefill) is refused before any replay, by the options
    to change. model_context: max_model_len is the model's (no --max-model-len); what: the workload, named."""
    reasons = Counter(why)
    if reasons[""]:
        return
    said = {"context": ("--max-model-len", f"{reasons['context']} reach the context length of "
                        f"{engine.max_model_len} tokens" + (" (the model's)" if model_context else "")),
            "kv": ("--kv-blocks", f"{reasons['kv']} need more than the KV cache's {kv_blocks} blocks of "
                   f"{engine.block_size} tokens, one kept aside (vLLM's null block)"),
            "budget": ("--token-budget", f"{reasons['budget']} exceed the token budget ({engine.token_budget}) "
                       f"without chunked prefill")}
    options, why = zip(*(said[r] for r in said if reasons[r]))
    raise ValueError(f"{', '.join(options)}: the engine would reject every request of {what}: "
                     f"{'; '.join(why)}")


def output_paths(out: str | None, json_path: str | None, md_path: str | None, plots: str | None,
                 reads: list[str | None] = ()) -> list[str]:
    """Create the output folders now, so that a bad path fails before the replay rather than after it.
    `reads`: the input files, which no output may overwrite. Returns the folders made (the top of each new
    chain), for remove_made_folders when the run is refused after all."""
    for option, path in (("--out", out), ("--plots", plots), ("--json", json_path), ("--markdown", md_path)):
        if path and "\x00" in path:
            raise ValueError(f"{option}: the path {path!r} holds a NUL byte")
    files = {"--json": json_path or (os.path.join(out, "results.json") if out else None),
             "--markdown": md_path or (os.path.join(out, "report.md") if out else None)}
    seen = {os.path.realpath(p): "an input file" for p in reads if p and os.path.isfile(p)}
    for option, path in files.items():
        if path and not path.startswith("/dev/"):
            real = os.path.realpath(path)
            if real in seen:
                raise ValueError(f"{option} {path}: would overwrite {seen[real]}")
            seen[real] = option
    folders = [(option, folder) for option, folder in (("--out", out), ("--plots", plots)) if folder]
    for option, path in (("--json", json_path), ("--markdown", md_path)):
        if path and os.path.isdir(path):
            raise ValueError(f"{option} {path}: is a folder (give a file name)")
        if path:
            folders.append((option, os.path.dirname(os.path.abspath(path))))
    made: list[str] = []
    try:
        for option, folder in folders:
            top = _make_dir(option, folder)
            if top:
                made.append(top)
    except ValueError:
        remove_made_folders(made)
        raise
    return made


def _make_dir(option: str, folder: str) -> str | None:
    """Make `folder` and any missing parents; returns the highest one made (None: it existed)."""
    top, probe = None, os.path.abspath(folder)
    while probe and not os.path.exists(probe):
        top, probe = probe, os.path.dirname(probe)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option} {folder}: cannot create the folder ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {folder}: folder is not writable")
    return top


def remove_made_folders(made: list[str]) -> None:
    """Remove the folders output_paths made, where they are still empty (a refused run leaves nothing behind;
    one that wrote something keeps it)."""
    for top in made:
        for folder, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(folder)
            except OSError:
                pass   # not empty (or gone): kept
