"""`ewsjf bench` option types: ranges, bounded sweeps, loads that keep their digits."""

from __future__ import annotations

import argparse

import pytest

from ewsjf.bench import arg_types as T


def test_sweep_points_keep_the_digits_they_were_given():
    assert T.loads("0.045:0.055:0.005") == [0.045, 0.05, 0.055]
    assert T.loads("0.1:0.3:0.1") == [0.1, 0.2, 0.3]          # floats would give 0.30000000000000004
    assert T.loads("0.5:1.5:0.1")[-1] == 1.5 and len(T.loads("0.5:1.5:0.1")) == 11
    assert T.loads("0.045,0.055") == [0.045, 0.055]
    assert T.loads("2:2:1") == [2.0]


@pytest.mark.parametrize("text", [
    "1:1000000000:0.000001",     # used to hang building 1e15 loads
    "1:inf:1", "nan:1:1", "1:2:0", "1:2:-1", "2:1:0.1", "0:1:0.5", "1,inf", "1,nan", "1,-1", "1,0", "",
    ",", "1:2", "a:b:c", "1e-400,1", "1e400", "1,1",
    ",".join(str(1 + i) for i in range(T.MAX_LOADS + 1)),
])
def test_bad_sweeps_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        T.loads(text)


def test_numbers_and_ints():
    f = T.positive_float()
    assert f("1e-3") == 1e-3
    for bad in ("0", "-1", "nan", "inf", "-inf", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            f(bad)
    assert T.positive_float(allow_inf=True)("inf") == float("inf")
    with pytest.raises(argparse.ArgumentTypeError):
        T.positive_float(allow_inf=True)("-inf")
    with pytest.raises(argparse.ArgumentTypeError):
        T.positive_float(hi=1.0)("1.5")
    assert T.positive_float(lo=0.01)("0.01") == 0.01
    with pytest.raises(argparse.ArgumentTypeError, match=">= 0.01"):
        T.positive_float(lo=0.01)("0.001")
    i = T.int_in(1, 10)
    assert i("10") == 10
    for bad in ("0", "11", str(2 ** 70), "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            i(bad)


def test_windows_edges_names():
    assert T.window("0:inf") == (0.0, float("inf"))
    for bad in ("nan:5", "-10:5", "5:5", "5:1", "0:nan", "inf:inf", "1", "a:b"):
        with pytest.raises(argparse.ArgumentTypeError):
            T.window(bad)
    assert T.edges("10,20") == (10, 20)
    for bad in ("0,5", "5,5", f"1,{2 ** 70}", "1", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            T.edges(bad)
    p = T.names("policy", ("fcfs", "sjf"))
    assert p(" fcfs, sjf ") == ["fcfs", "sjf"]
    for bad in ("", ",,", "lifo", "fcfs,fcfs"):
        with pytest.raises(argparse.ArgumentTypeError):
            p(bad)


def test_int_lists_are_distinct_integers_in_range():
    parse = T.int_list("instance counts", 1, 8)
    assert parse("2,4") == [2, 4]
    for bad in ("2,2", "0", "9", "a", "", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)
