"""A GPU named by a folder of its measurements (gpu_calib.py's layout), fitted when first used.

`--gpu DIR` (ewsjf bench, bench --suite-gpu, scripts/suite_cells.py --gpu) replays on timings a user measured,
without rewriting the presets (`ewsjf calibrate DIR --write` does that for the project's own). The folder's name
picks the datasheet figures the fit starts from (a100, h100, h200: the presets'); a GPU without a preset takes them
from the folder's meta.json, where gpu_calib.py records the device's memory, its best bf16 matmul rate and its copy
bandwidth. A folder without attention measurements borrows them from a preset whose attention was measured, scaled
by the two GPUs' fitted FLOP/s and bandwidth as `ewsjf calibrate` does. A fit is kept per folder content (a digest
of its files): a folder measured again is fitted again, and the suite's cached operating points follow it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os

from .gpu_spec import GPUSpec, gpu_key

META_FIELDS = (("device", "total_memory"), ("matmul_bf16", "tflops_best"), ("bandwidth", "copy_gb_s"))
"""Where meta.json holds a GPU's memory (bytes), bf16 matmul rate (TFLOP/s) and copy bandwidth (GB/s)."""


def is_measurement_folder(name) -> bool:
    """A folder, not a preset's name or alias (`./h200` names a folder called h200)."""
    from .gpu_presets import GPU_PRESETS

    return isinstance(name, (str, os.PathLike)) and gpu_key(name) not in GPU_PRESETS and os.path.isdir(name)


def folder_digest(folder) -> str:
    """A digest of the folder's files (names and bytes; subfolders are not read, as read_profile reads none)."""
    h = hashlib.sha256()
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if os.path.isfile(path):
            h.update(entry.encode() + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def gpu_identity(name) -> str:
    """What a cache key records for a GPU: a preset's name, or a folder's path and content digest."""
    if is_measurement_folder(name):
        return f"{os.path.realpath(name)}@{folder_digest(name)}"
    return str(name)


def measured_gpu(folder) -> GPUSpec:
    """The GPUSpec fitted to the measurements in `folder` (ValueError naming the folder if they cannot be fitted)."""
    return _fit(os.path.realpath(folder), folder_digest(folder))


@functools.lru_cache(maxsize=16)
def _fit(folder: str, digest: str) -> GPUSpec:
    from .calibrate import fit_profile
    from .gpu_presets import GPU_PRESETS
    from .gpu_profiles import read_profile

    profile = read_profile(folder)
    if not profile.layers:
        raise ValueError(f"--gpu {folder}: no per-layer measurements (*_mlp.csv) to fit a GPU to")
    key = gpu_key(profile.gpu)
    base = GPU_PRESETS[key].datasheet() if key in GPU_PRESETS else _datasheet_from_meta(folder, profile.meta)
    reference = next((g for g in GPU_PRESETS.values() if "attention" in g.calibration and "NOT" not in g.calibration),
                     None)
    spec = fit_profile(profile, base, attention_from=reference)
    # a distinct name: reports say which timings a run used, not the preset's
    return dataclasses.replace(spec, name=f"{base.name} (measured: {folder})")


def _datasheet_from_meta(folder: str, meta: dict) -> GPUSpec:
    """Name, peak FLOP/s, bandwidth and memory from gpu_calib.py's meta.json, for a GPU without a preset."""
    values = []
    for section, field in META_FIELDS:
        v = meta.get(section, {}).get(field) if isinstance(meta.get(section), dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise ValueError(f"--gpu {folder}: no GPU preset is named {os.path.basename(folder)!r} (a100, h100, "
                             f"h200, ...) and meta.json has no {section}.{field} (finite, > 0) to take its datasheet "
                             f"figures from; measure the GPU with gpu_calib.py or name the folder after a preset")
        values.append(float(v))
    memory, tflops, copy_gb_s = values
    name = str(meta.get("device", {}).get("name") or os.path.basename(folder))
    return GPUSpec(name, tflops * 1e12, copy_gb_s * 1e9, memory)
