import inspect
from array import array

import numpy as np

from ewsjf.bench.entry_floor import EntryFloor, _kernel_like_arguments
from ewsjf_core.step_kernel import begin_step_kernel


def test_one_argument_per_kernel_parameter_of_its_kind():
    params = list(inspect.signature(begin_step_kernel.py_func).parameters.values())
    args = _kernel_like_arguments()
    assert len(args) == len(params)
    for p, a in zip(params, args):
        expected = {"int": int, "float": float, "np.ndarray": np.ndarray}.get(p.annotation, array)
        assert type(a) is expected, p.name


def test_measure_times_both_calls_and_summarizes_medians():
    floor = EntryFloor()
    for i in range(3):
        floor.measure(first_one=i % 2 == 0)
    assert len(floor.one_array) == len(floor.kernel_args) == 3
    assert len(floor.one_array_warm) == len(floor.kernel_args_warm) == 3
    s = floor.summary()
    assert s["kernel_args"] == len(_kernel_like_arguments())
    for name in ("one_array", "kernel_args", "one_array_warm", "kernel_args_warm"):
        assert s[f"{name}_us"] > 0, name

