"""What entering numba costs at a given point of an engine's step, measured in the same run as what it bounds.

Inside an engine every call into a jitted function finds caches the engine's own step has cooled, and pays
for that however little it computes. EntryFloor times two jitted functions that compute nothing: one given
a single array, and one given as many arguments, of the same kinds, as the step kernel EWSJF's admission
round makes (ewsjf_core.step_kernel.begin_step_kernel: arrays, flat buffers, scalars, read from its
signature, so the figure follows the kernel). No design with one kernel call per round costs less than the
second; none with any jitted call, less than the first. Each is called again at once, warm: the gap between the
two is what the engine's step left cold (caches, branch predictors), not numba's own work. Figures only.
"""

from __future__ import annotations

import inspect
import statistics
import time
from array import array

import numpy as np
from numba import njit

from ewsjf_core.step_kernel import begin_step_kernel


def _kernel_like_arguments() -> list:
    """One argument per parameter of the step kernel, of the kind its annotation names (unannotated: a flat
    array('d') buffer, as the round hands over)."""
    args: list = []
    for i, p in enumerate(inspect.signature(begin_step_kernel.py_func).parameters.values()):
        kind = p.annotation
        if kind == "int":
            args.append(1)
        elif kind == "float":
            args.append(1.0)
        elif kind == "np.ndarray":
            args.append(np.zeros(8, np.int32 if i % 2 else np.float64))
        else:
            args.append(array("d", (0.0, 0.0, 0.0)))
    return args


def _empty_function(n_args: int):
    """A jitted function of n_args parameters that returns 0 (generated: numba types each parameter)."""
    names = ", ".join(f"a{i}" for i in range(n_args))
    scope: dict = {}
    exec(f"def empty({names}):\n    return 0\n", scope)   # noqa: S102 - source built from a count only
    return njit(cache=False)(scope["empty"])


class EntryFloor:
    """Times both empty calls whenever measure() is called (compiled at construction, not timed)."""

    def __init__(self) -> None:
        self._one = (_empty_function(1), [np.zeros(8)])
        kernel_args = _kernel_like_arguments()
        self._kernel = (_empty_function(len(kernel_args)), kernel_args)
        self.n_kernel_args = len(kernel_args)
        self.one_array: list[float] = []
        self.kernel_args: list[float] = []
        self.one_array_warm: list[float] = []
        self.kernel_args_warm: list[float] = []
        for fn, args in (self._one, self._kernel):
            fn(*args)

    def measure(self, first_one: bool = True) -> None:
        """Time one call of each, then the same call again at once (first_one: the one-array call first;
        alternate it, the first is the colder)."""
        perf = time.perf_counter
        calls = [(self._one, self.one_array, self.one_array_warm),
                 (self._kernel, self.kernel_args, self.kernel_args_warm)]
        for (fn, args), cold, warm in (calls if first_one else calls[::-1]):
            t0 = perf()
            fn(*args)
            t1 = perf()
            fn(*args)
            warm.append(perf() - t1)
            cold.append(t1 - t0)

    def summary(self) -> dict[str, float]:
        """Median microseconds of each call, first and repeated (`_warm_us`)."""
        out: dict[str, float] = {"kernel_args": self.n_kernel_args}
        for name in ("one_array", "kernel_args", "one_array_warm", "kernel_args_warm"):
            out[f"{name}_us"] = statistics.median(getattr(self, name)) * 1e6
        return out
