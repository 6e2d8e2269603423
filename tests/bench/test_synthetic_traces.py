"""The synthetic stand-ins for issue 9's unvendored trace shapes (bench/synthetic_traces.py)."""

import numpy as np
import pytest

from ewsjf.bench import synthetic_traces as st
from ewsjf.bench.workloads import load_workload


@pytest.mark.parametrize("name", list(st.SHAPES))
def test_a_shape_has_its_stated_quantiles(name):
    shape = st.SHAPES[name]
    w = st.draw(shape, 20000, seed=1)
    p50, p99 = np.percentile(w.prompt_tokens, [50, 99])
    assert abs(p50 / shape.prompt_p50 - 1) < 0.05 and abs(p99 / shape.prompt_p99 - 1) < 0.15
    assert abs(w.output_tokens.mean() / shape.output_mean - 1) < 0.05
    assert w.output_tokens.max() <= shape.output_max and w.prompt_tokens.min() >= 1
    gaps = np.diff(w.arrival_s)
    assert abs(gaps.mean() - 1.0) < 0.05 and abs(gaps.std() / gaps.mean() - shape.cv) < 0.2 * shape.cv


def test_draws_are_seeded():
    a, b, c = (st.draw(st.SHAPES["reasoning"], 100, s) for s in (0, 0, 1))
    assert (a.output_tokens == b.output_tokens).all() and not (a.output_tokens == c.output_tokens).all()


def test_main_writes_traces_the_bench_reads(tmp_path, capsys):
    assert st.main(["--out", str(tmp_path), "--requests", "50"]) == 0
    for name in st.SHAPES:
        w = load_workload(str(tmp_path / f"{name}.csv"))
        assert len(w) == 50
    for bad, message in ((["--shapes", "chat"], "unknown chat"), (["--shapes", ","], "--shapes: none named"),
                         (["--requests", "0"], "--requests"), (["--seed", "-1"], "--seed")):
        with pytest.raises(SystemExit):
            st.main(["--out", str(tmp_path), *bad])
        assert message in capsys.readouterr().err
