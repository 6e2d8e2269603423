"""A GPU given as a folder of measurements: fitted as `ewsjf calibrate` fits the presets; refused with the folder
named."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ewsjf.bench.suite import on_hardware
from ewsjf.bench.suite_workloads import BY_NAME
from ewsjf_core.sim import RooflineStepTime
from ewsjf_core.sim.gpu_spec import get_gpu
from ewsjf_core.sim.measured_gpu import gpu_identity, is_measurement_folder

PROFILES = os.path.join(os.path.dirname(__file__), "data", "gpu_profiles")


@pytest.fixture
def h200_copy(tmp_path):
    """The vendored H200 measurements under a name no preset has."""
    folder = tmp_path / "mygpu"
    shutil.copytree(os.path.join(PROFILES, "h200"), folder)
    return folder


def test_a_preset_folder_fits_to_the_preset():
    """The presets were fitted to these very files (gpu_presets.py's docstring): the same fit comes back."""
    measured, preset = get_gpu(os.path.join(PROFILES, "h200")), get_gpu("h200")
    assert measured.name.startswith("H200 (measured: ")
    for field in ("gemm_flops", "gemm_bandwidth", "elem_bandwidth", "attn_flops", "decode_bandwidth"):
        assert getattr(measured, field) == pytest.approx(getattr(preset, field), rel=1e-3), field
    assert measured.memory_bytes == preset.memory_bytes


def test_an_unknown_gpu_takes_its_datasheet_from_meta_json(h200_copy):
    meta = json.loads((h200_copy / "meta.json").read_text())
    g = get_gpu(str(h200_copy))
    assert g.memory_bytes == meta["device"]["total_memory"]
    assert g.peak_flops == meta["matmul_bf16"]["tflops_best"] * 1e12
    assert g.name.startswith(meta["device"]["name"])
    assert RooflineStepTime("llama-3-8b", str(h200_copy)).gpu is g   # what a replay uses; fitted once


def test_refused_folders_are_named(tmp_path, h200_copy):
    meta = json.loads((h200_copy / "meta.json").read_text())
    (h200_copy / "meta.json").write_text(json.dumps({**meta, "bandwidth": {"copy_gb_s": float("inf")}}))
    with pytest.raises(ValueError, match=r"meta.json has no bandwidth.copy_gb_s \(finite, > 0\)"):
        get_gpu(str(h200_copy))
    (h200_copy / "meta.json").unlink()
    with pytest.raises(ValueError, match=r"--gpu .*mygpu: no GPU preset .* meta.json has no device.total_memory"):
        get_gpu(str(h200_copy))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"--gpu .*empty: no per-layer measurements"):
        get_gpu(str(tmp_path / "empty"))


def test_a_preset_name_is_the_preset_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "h200").mkdir()
    monkeypatch.chdir(tmp_path)
    assert get_gpu("h200") is get_gpu("H200") and not is_measurement_folder("h200")
    assert is_measurement_folder("./h200")


def test_a_folder_measured_again_is_fitted_again(h200_copy):
    before, spec = gpu_identity(str(h200_copy)), get_gpu(str(h200_copy))
    rows = (h200_copy / "h200_Meta-Llama-3-8B_mlp.csv").read_text().splitlines()
    (h200_copy / "h200_Meta-Llama-3-8B_mlp.csv").write_text("\n".join(rows[:len(rows) // 2]) + "\n")
    assert gpu_identity(str(h200_copy)) != before
    assert get_gpu(str(h200_copy)) is not spec
    assert gpu_identity("h200") == "h200"   # a preset's cache keys stay what they were


def test_the_suite_replays_on_a_folder(h200_copy):
    sw = on_hardware(BY_NAME["sharegpt"], str(h200_copy))
    assert sw.gpu == os.path.realpath(h200_copy)
    assert RooflineStepTime(sw.model, sw.gpu).gpu.memory_bytes == get_gpu(str(h200_copy)).memory_bytes
