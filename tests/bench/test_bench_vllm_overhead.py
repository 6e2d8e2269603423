"""bench_vllm_overhead's arguments (the run itself is a benchmark: figures only, bench/bench_vllm_overhead.py)."""

import pytest

from ewsjf.bench import bench_vllm_overhead


def test_bad_arguments_are_refused_before_running(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv in (["--steps", "0"], ["--waiting", "-5"], ["--json", str(blocker / "out.json")]):
        with pytest.raises(SystemExit) as exit_info:
            bench_vllm_overhead.main(argv)
        assert exit_info.value.code == 2
