"""scripts/suite_cells.py's bookkeeping: jittered replays, pass shares over them, and --save / --against."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ewsjf_core.sim import Workload

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "suite_cells.py"
_spec = importlib.util.spec_from_file_location("suite_cells", _PATH)
suite_cells = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite_cells)


def _workload() -> Workload:
    # Ties and gaps far below the jitter: the order must survive them.
    arrivals = np.array([0.0, 0.0, 1e-7, 1e-7, 0.5, 2.0])
    return Workload(arrivals, np.arange(1, 7) * 100, np.full(6, 10), name="w")


def test_replay_zero_is_the_trace_itself():
    wl = _workload()
    assert suite_cells._jittered(wl, seed=3, j=0) is wl


def test_jittered_replays_move_arrivals_later_by_at_most_the_jitter_and_keep_their_order():
    wl = _workload()
    for j in (1, 2, 5):
        moved = suite_cells._jittered(wl, seed=3, j=j).arrival_s
        assert np.all(np.diff(moved) >= 0)
        assert np.all(moved >= wl.arrival_s)
        # np.maximum.accumulate may carry one arrival's jitter to a tied later one, never beyond JITTER_S.
        assert np.all(moved - wl.arrival_s <= suite_cells.JITTER_S)
        np.testing.assert_array_equal(suite_cells._jittered(wl, 3, j).prompt_tokens, wl.prompt_tokens)


def test_jittered_replays_are_reproducible_and_differ_by_seed_and_replay():
    wl = _workload()
    a = suite_cells._jittered(wl, 3, 1).arrival_s
    np.testing.assert_array_equal(a, suite_cells._jittered(wl, 3, 1).arrival_s)
    assert not np.array_equal(a, suite_cells._jittered(wl, 3, 2).arrival_s)
    assert not np.array_equal(a, suite_cells._jittered(wl, 4, 1).arrival_s)


def test_pass_share_counts_replays_and_keeps_goals_that_do_not_apply():
    assert suite_cells._pass_share([True, False, True, True]) == 0.75
    assert suite_cells._pass_share([None, None]) is None
    assert suite_cells._count(3.0) == "3"
    assert suite_cells._count(2.0 / 3.0) == "0.67"
    assert suite_cells._mark(True, 1.0, 1) == "pass"
    assert suite_cells._mark(False, 1 / 3, 3) == "FAIL (1/3)"


def _cell(hrrn: float | None, fair: float, short: float, p99: float) -> dict:
    return {"pass": {"hrrn": hrrn, "fair": fair}, "short_mean_s": short, "long_p99_s": p99}


def test_against_prints_changed_checks_totals_and_figure_ratios(capsys):
    saved = {"0/azure:1": _cell(0.0, 1.0, 1.0, 10.0), "0/bwb:3": _cell(None, 1.0, 2.0, 5.0)}
    run = {"0/azure:1": _cell(1.0, 2 / 3, 0.5, 10.0), "0/mooncake:1": _cell(1.0, 1.0, 1.0, 1.0)}
    suite_cells._compare(saved, run)
    out = capsys.readouterr().out.splitlines()
    assert "GAIN 0/azure:1 hrrn: 0 -> 1" in out
    assert "LOST 0/azure:1 fair: 1 -> 0.67" in out
    # Only the cell run in both counts: bwb and mooncake are each in one run.
    assert "saved: 1/2 checks pass on the 1 cells run in both" in out
    assert "this run: 1.67/2 checks pass on the 1 cells run in both" in out
    assert "short_mean_s against the saved run: geometric mean x0.5000" in out
    assert "long_p99_s against the saved run: geometric mean x1.0000" in out


def test_against_with_no_common_cell_says_so(capsys):
    suite_cells._compare({"0/azure:1": _cell(1.0, 1.0, 1.0, 1.0)}, {"1/azure:1": _cell(1.0, 1.0, 1.0, 1.0)})
    assert capsys.readouterr().out.strip() == "against: no cell of this run is in the saved one"


def test_against_refuses_a_file_save_did_not_write(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"cells": []}))
    with pytest.raises(SystemExit, match="other.json.*no 'cells'"):
        suite_cells._read_run(str(bad))
    good = tmp_path / "run.json"
    good.write_text(json.dumps({"command": "x", "cells": {"0/azure:1": _cell(1.0, 1.0, 1.0, 1.0)}}))
    assert suite_cells._read_run(str(good)) == {"0/azure:1": _cell(1.0, 1.0, 1.0, 1.0)}


def test_an_unreadable_cache_is_an_empty_one(tmp_path, capsys):
    assert suite_cells._read_cache(str(tmp_path / "missing.json")) == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert suite_cells._read_cache(str(broken)) == {}
    assert "unreadable" in capsys.readouterr().out


def test_held_out_draw_is_the_file_synthetic_traces_writes(tmp_path):
    from ewsjf.bench import synthetic_traces
    mine = suite_cells.held_out_files(3, str(tmp_path / "cells"))
    synthetic_traces.main(["--out", str(tmp_path / "cli"), "--seed", "3",
                           "--shapes", ",".join(synthetic_traces.HELD_OUT)])
    assert [Path(p).name for p in mine] == [f"{name}.csv" for name in synthetic_traces.HELD_OUT]
    for p in mine:
        assert Path(p).parent.name == "s3"
        assert Path(p).read_bytes() == (tmp_path / "cli" / Path(p).name).read_bytes()
    assert not list((tmp_path / "cells" / "s3").glob("*.tmp"))


def test_cell_tokens_expand_to_suite_cells_held_out_draws_and_plain_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("EWSJF_HELD_OUT_DIR", str(tmp_path))
    cells = suite_cells.expand_cells("azure:1, held-out-0,all")
    held = [c for c in cells if c.startswith(str(tmp_path))]
    assert cells[0] == "azure:1"
    assert len(held) == 4 * len(suite_cells.HELD_OUT)   # every shape at every load
    assert {c.rsplit(":", 1)[1] for c in held} == set(suite_cells.CELL_LOADS)
    assert all(Path(c.rsplit(":", 1)[0]).exists() for c in held)
    assert cells[1 + len(held):] == suite_cells.ALL_CELLS


@pytest.mark.parametrize("token", ["held-out-", "held-out-x", "held-out--1"])
def test_a_held_out_token_without_a_seed_is_refused_by_name(token):
    with pytest.raises(SystemExit, match=token):
        suite_cells.expand_cells(f"azure:1,{token}")
