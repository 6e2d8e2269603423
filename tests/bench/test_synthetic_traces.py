"""The synthetic stand-ins for issue 9's unvendored trace shapes (bench/synthetic_traces.py)."""

import numpy as np
import pytest

from ewsjf.bench import synthetic_traces as st
from ewsjf.bench.workloads import load_workload


def _assert_lengths(shape, prompt, output):
    p50, p99 = np.percentile(prompt, [50, 99])
    assert abs(p50 / shape.prompt_p50 - 1) < 0.05 and abs(p99 / shape.prompt_p99 - 1) < 0.15
    assert abs(output.mean() / shape.output_mean - 1) < 0.05
    assert output.max() <= shape.output_max and prompt.min() >= 1


@pytest.mark.parametrize("name", list(st.ALL_SHAPES))
def test_a_shape_has_its_stated_quantiles(name):
    shape = st.ALL_SHAPES[name]
    w = st.draw(shape, 40000, seed=1)
    if shape.heavy is None:
        _assert_lengths(shape, w.prompt_tokens, w.output_tokens)
    else:   # the heavy part's prompts are all above the light part's p99 x 4: split the two there
        heavy = w.prompt_tokens > 4 * shape.prompt_p99
        assert abs(heavy.mean() - shape.heavy_share) < 0.01
        _assert_lengths(shape.heavy, w.prompt_tokens[heavy], w.output_tokens[heavy])
        _assert_lengths(shape, w.prompt_tokens[~heavy], w.output_tokens[~heavy])
    gaps = np.diff(w.arrival_s)
    assert abs(gaps.mean() - 1.0) < 0.05 and abs(gaps.std() / gaps.mean() - shape.cv) < 0.2 * shape.cv


def test_draws_are_seeded():
    a, b, c = (st.draw(st.SHAPES["reasoning"], 100, s) for s in (0, 0, 1))
    assert (a.output_tokens == b.output_tokens).all() and not (a.output_tokens == c.output_tokens).all()


def test_main_writes_traces_the_bench_reads(tmp_path, capsys):
    assert st.main(["--out", str(tmp_path), "--requests", "50"]) == 0
    for name in st.ALL_SHAPES:
        w = load_workload(str(tmp_path / f"{name}.csv"))
        assert len(w) == 50
    for bad, message in ((["--shapes", "chat"], "unknown chat"), (["--shapes", ","], "--shapes: none named"),
                         (["--requests", "0"], "--requests"), (["--seed", "-1"], "--seed")):
        with pytest.raises(SystemExit):
            st.main(["--out", str(tmp_path), *bad])
        assert message in capsys.readouterr().err
