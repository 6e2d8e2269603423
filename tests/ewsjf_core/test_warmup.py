"""compile_kernels() compiles every jitted kernel, with the types the hot path uses, and none needs SciPy
(issue 10, defect 6). Checked in a fresh interpreter: kernels compiled by earlier tests in this process
would hide a miss."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(r"""
    import sys
    sys.modules["scipy"] = None          # a kernel needing SciPy's BLAS (cov @ x) now fails
    import importlib, json, pkgutil
    from numba.core.registry import CPUDispatcher
    import ewsjf_core
    from ewsjf_core.warmup import compile_kernels
    names = [m.name for m in pkgutil.walk_packages(ewsjf_core.__path__, "ewsjf_core.")]
    mods = []
    for n in names:
        try:
            mods.append(importlib.import_module(n))
        except ImportError:
            pass                          # optional-dependency modules (none hold kernels)
    kernels = {}
    for m in mods:
        for k, v in vars(m).items():
            if isinstance(v, CPUDispatcher) and v.__module__ == m.__name__:
                kernels[f"{m.__name__}.{k}"] = v
    compile_kernels()
    after_warmup = {k: len(v.signatures) for k, v in kernels.items()}
    # A helper called only by other kernels is compiled into them (and loaded with them from the cache,
    # leaving its own dispatcher empty): it counts as compiled when a compiled kernel calls it.
    import inspect, re
    body = {k: inspect.getsource(v.py_func).split(":", 1)[1] for k, v in kernels.items()}
    compiled = {k for k, n in after_warmup.items() if n}
    grew = True
    while grew:   # transitively: helpers of helpers
        calls = lambda k: any(re.search(r"\b" + k.rsplit(".", 1)[1] + r"\s*\(", body[c]) for c in compiled)
        new = {k for k in kernels if k not in compiled and calls(k)}
        compiled |= new
        grew = bool(new)
    helpers = {k: k in compiled for k, n in after_warmup.items() if n == 0}
    # A short run on the host API: a kernel compiled again here was warmed with other types.
    from ewsjf.bindings.ewsjf_queue import EWSJFQueue
    from ewsjf_core.config import EWSJFConfig
    q = EWSJFQueue(EWSJFConfig(min_partition_samples=8, repartition_every=16, max_bubbles=2,
                               bubble_empty_rounds=2), clock=lambda: 1.0)
    for i in range(64):
        q.add(str(i), [5, 40, 900, 3000, 70000][i % 5], arrival_time=0.01 * i, priority=i % 3)
        if i % 7 == 0:
            q.prepend("p" + str(i), 100, arrival_time=0.0)
        if i % 5 == 0:
            q.begin_step(1.0 + i)
            q.pop(); q.pop()
            q.observe_step(0.02, 500, 30)
        if i % 11 == 0 and str(i) in q:
            q.remove([str(i)])
    q.repartition(); q.stats(); list(q)
    while q:
        q.begin_step(100.0); q.pop()
    after_run = {k: len(v.signatures) for k, v in kernels.items()}
    print(json.dumps({"after_warmup": after_warmup, "after_run": after_run, "helpers": helpers}))
""")


def test_compile_kernels_compiles_every_kernel_without_scipy():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    warm, run = res["after_warmup"], res["after_run"]
    assert len(warm) >= 15, warm   # the enumeration found the kernels
    missed = sorted(k for k, n in warm.items() if n == 0 and not res["helpers"][k])
    assert not missed, f"compile_kernels() does not compile: {missed}"
    recompiled = sorted(k for k in warm if run[k] != warm[k])
    assert not recompiled, f"the hot path compiled these again with other types: {recompiled}"
