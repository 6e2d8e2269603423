"""scripts/joint_search.py's bookkeeping: the space holds the default, a LOG row's score, and resuming from LOG."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ewsjf.bench import suite_policies
from ewsjf_core.config import EWSJFConfig

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(_SCRIPTS))   # joint_search imports suite_cells as a script run by path does
_spec = importlib.util.spec_from_file_location("joint_search", _SCRIPTS / "joint_search.py")
joint_search = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(joint_search)


_RUN = {"cells": "all", "seed": "0"}


def _default() -> dict[str, float]:
    return {d.name: getattr(EWSJFConfig(), d.name) for d in joint_search.SPACE}


def test_the_space_names_config_fields_and_holds_the_default():
    # The search starts from the default: a bound that excluded it would refuse the first point.
    fields = {f.name for f in dataclasses.fields(EWSJFConfig)}
    for dim, value in zip(joint_search.SPACE, joint_search._point(_default())):
        assert dim.name in fields
        assert dim.low <= value <= dim.high, dim.name


def test_a_point_travels_to_suite_cells_as_the_config_it_names():
    config = {**_default(), "fcfs_wait_factor": 1.3333333, "a_u": 2.5e-4}
    base, settings = suite_policies.parse("ewsjf:" + joint_search._set_arg(config))
    assert base == "ewsjf" and settings.keys() == config.keys()
    assert settings == pytest.approx(config, rel=1e-5)
    EWSJFConfig(**settings)   # a point of the space is a valid config


def _cells() -> dict[str, dict]:
    return {"0/a:1": {"pass": {"hrrn": 1.0, "fair": 1.0, "near": None, "tput": 1.0}},
            "0/a:3": {"pass": {"hrrn": 0.0, "fair": 0.0, "near": 0.5, "tput": 1.0}}}


def test_a_row_scores_checks_passing_less_a_penalty_per_fairness_miss():
    row = joint_search.log_row(_default(), _RUN, _cells(), seconds=2.0)
    assert row["checks"] == 7 and row["pass"] == 4.5
    assert row["fails"] == {"hrrn": 1.0, "fair": 1.0, "near": 0.5, "tput": 0.0}
    assert row["score"] == 4.5 - joint_search.FAIR_PENALTY
    assert row["cells"]["0/a:3"]["near"] == 0.5


def test_a_log_is_read_back_row_by_row_and_a_missing_one_is_empty(tmp_path):
    log = tmp_path / "joint.jsonl"
    assert joint_search._read_log(str(log)) == []
    rows = [joint_search.log_row(_default(), _RUN, _cells(), 1.0), joint_search.log_row(_default(), _RUN, {}, 1.0)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert joint_search._read_log(str(log)) == rows


def test_a_search_starts_from_the_default_then_an_earlier_logs_best_points_inside_the_space(tmp_path):
    inside = {**_default(), "fcfs_wait_factor": 1.3}
    outside = {**_default(), "fcfs_wait_factor": 9.0}
    rows = [{**joint_search.log_row(c, _RUN, _cells(), 1.0), "score": s}
            for c, s in ((inside, 5.0), (outside, 9.0), (_default(), 4.0), ({"a_u": 1e-3}, 8.0))]
    log = tmp_path / "earlier.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = joint_search._first_points(str(log), k=3)
    # The default once, the point outside the space and the row missing dimensions left out.
    assert points == [joint_search._point(_default()), joint_search._point(inside)]
    assert joint_search._first_points(None, k=3) == [joint_search._point(_default())]


def test_a_search_resumes_only_its_own_cells_and_points_inside_the_space():
    row = joint_search.log_row(_default(), _RUN, _cells(), 1.0)
    joint_search._check_resumable("j.jsonl", [row, row], _RUN)
    with pytest.raises(SystemExit, match=r"row 2 scored .*'seed': '1'"):
        joint_search._check_resumable("j.jsonl", [row, {**row, "run": {"cells": "all", "seed": "1"}}], _RUN)
    with pytest.raises(SystemExit, match="row 1's config lies outside SPACE .*fcfs_wait_factor=9"):
        joint_search._check_resumable("j.jsonl", [{**row, "config": {**_default(), "fcfs_wait_factor": 9.0}}], _RUN)
