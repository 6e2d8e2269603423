"""tuner_convergence's arguments, and its overhead part on a minute of the trace (the convergence part is a
benchmark of minutes: figures only)."""

import os

import pytest

from ewsjf.bench import tuner_convergence


@pytest.mark.parametrize("argv", [["--window", "5:1"], ["--rate-scale", "0"], ["--reps", "0"], ["--cv", "nan"]])
def test_bad_arguments_are_refused_before_running(argv):
    with pytest.raises(SystemExit) as exit_info:
        tuner_convergence.main(argv)
    assert exit_info.value.code == 2


def test_the_overhead_part_runs_on_a_short_window(tmp_path, capsys):
    out = tmp_path / "tc.json"
    assert tuner_convergence.main(["--skip-convergence", "--reps", "1", "--overhead-window", "0:30",
                                   "--json", str(out)]) == 0
    assert "running/off" in capsys.readouterr().out and out.stat().st_size > 0


def test_a_refused_run_leaves_no_json_folder_behind(tmp_path, capsys):
    """The --json folder is made before the runs (a bad path fails at once); a run refused afterwards (a model
    no preset names) takes it back, and says which option is wrong."""
    with pytest.raises(SystemExit) as exit_info:
        tuner_convergence.main(["--model", "no-such-model", "--json", str(tmp_path / "new" / "tc.json")])
    assert exit_info.value.code == 2
    assert "--model" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv,option", [(["--window", "0:0.5"], "--window"),
                                         (["--skip-convergence", "--overhead-window", "0:0.5"], "--overhead-window")])
def test_a_window_of_fewer_than_two_requests_is_refused_by_name(argv, option, capsys):
    """Half a second of the trace holds one request: no arrival rate, refused before any replay (it raised
    ZeroDivisionError)."""
    with pytest.raises(SystemExit) as exit_info:
        tuner_convergence.main(argv)
    assert exit_info.value.code == 2
    assert f"{option} 0:0.5 holds 1 request" in capsys.readouterr().err
