"""bench_vllm_overhead's arguments (the run itself is a benchmark: figures only, bench/bench_vllm_overhead.py)."""

import os

import pytest

from ewsjf.bench import bench_vllm_overhead


def test_bad_arguments_are_refused_before_running(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv in (["--steps", "0"], ["--waiting", "-5"], ["--json", str(blocker / "out.json")]):
        with pytest.raises(SystemExit) as exit_info:
            bench_vllm_overhead.main(argv)
        assert exit_info.value.code == 2


def test_the_per_call_breakdown_lists_the_calls_made_costliest_per_step_first():
    calls = {"pop_request": {"per_step": 0.7, "us_per_call": 3.0, "us_per_step": 2.1},
             "prepend_request": {"per_step": 0.0, "us_per_call": 0.0, "us_per_step": 0.0},
             "peek_request": {"per_step": 0.7, "us_per_call": 90.0, "us_per_step": 63.0},
             "add_request": {"per_step": 0.7, "us_per_call": 25.0, "us_per_step": 17.5}}
    assert bench_vllm_overhead._format_calls(calls) == \
        "peek_request 90.0 us x0.70, add_request 25.0 us x0.70, pop_request 3.0 us x0.70"


def test_an_interrupted_run_leaves_no_json_folder_behind(tmp_path, monkeypatch):
    """The --json folder is made before the runs (a bad path fails at once); an interrupted run takes it back."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_vllm_overhead, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench_vllm_overhead.main(["--waiting", "10", "--json", str(tmp_path / "new" / "out.json")])
    assert os.listdir(tmp_path) == []
