"""The CPU launcher (serve.py): local bind by default, plain vLLM for A/B, EWSJF config checked before start."""

import subprocess
import sys

import pytest

from ewsjf.integrations.vllm import serve


def test_binds_loopback_unless_host_given():
    args, ewsjf = serve.vllm_arguments(["m"])
    assert args[args.index("--host") + 1] == "127.0.0.1" and ewsjf
    for given in (["--host", "0.0.0.0"], ["--host=::"]):
        args, _ = serve.vllm_arguments(["m", *given])
        assert [a for a in args if a.startswith("--host")] == given[:1] and "127.0.0.1" not in args


def test_scheduler_flag_added_kept_or_left_out():
    args, ewsjf = serve.vllm_arguments(["m", "--port", "8001"])
    assert serve._flag_value(args, "--scheduler-cls") == serve.SCHEDULER_CLS and ewsjf
    args, ewsjf = serve.vllm_arguments(["m", "--no-ewsjf"])  # plain vLLM: its default scheduler
    assert "--scheduler-cls" not in args and "--no-ewsjf" not in args and not ewsjf
    args, ewsjf = serve.vllm_arguments(["m", "--scheduler-cls=ewsjf.integrations.vllm.AsyncEWSJFScheduler"])
    assert args.count("--scheduler-cls") == 0 and ewsjf
    args, ewsjf = serve.vllm_arguments(["m", "--scheduler-cls", "my.Sched"])
    assert args.count("--scheduler-cls") == 1 and not ewsjf


def test_config_checked_before_vllm_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    assert serve.config_error(["m", "--additional-config", '{"ewsjf": {"max_wait": 3}}']) is None
    assert "max_queues" in serve.config_error(["m", '--additional-config={"ewsjf": {"max_queues": 0}}'])
    assert "not valid JSON" in serve.config_error(["m", "--additional-config", "{nope"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("alpha: 0.5\n")
    monkeypatch.setenv("EWSJF_CONFIG", str(bad))
    assert "alpha" in serve.config_error(["m"])


def test_invalid_config_fails_in_one_line_without_loading_a_model(tmp_path):
    """The launcher exits 2 with one line on stderr, long before any model could load (no vLLM start)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_queues: 0\n")
    proc = subprocess.run([sys.executable, "-m", "ewsjf.integrations.vllm.serve", "no/such-model"],
                          env={"EWSJF_CONFIG": str(bad), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ewsjf: invalid EWSJF config") and "max_queues" in lines[0]
    assert str(bad) in lines[0]


def test_plain_vllm_is_not_validated(tmp_path, monkeypatch):
    """--no-ewsjf starts vLLM's own scheduler: a broken EWSJF config must not stop the A/B baseline."""
    seen = {}
    monkeypatch.setattr(serve, "config_error", lambda args: pytest.fail("validated a plain-vLLM start"))
    monkeypatch.setattr(serve, "map_cpu_distribution", lambda: None)
    import vllm.entrypoints.cli.main as cli

    monkeypatch.setattr(cli, "main", lambda: seen.setdefault("argv", list(sys.argv)))
    serve.main(["m", "--no-ewsjf"])
    assert seen["argv"] == ["vllm", "serve", "m", "--host", "127.0.0.1"]
