"""Imports point one way: ewsjf_core <- bindings <- integrations <- bench.

Every `import` statement of every source file is read (with ast, so imports inside functions count too) and
checked against the layers it may reach. Importing a module must not change the process environment either.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# folder -> package prefixes its code must never import (the layers above it)
FORBIDDEN = {
    "ewsjf_core": ("ewsjf", "bindings", "integrations", "bench"),
    "bindings": ("ewsjf.integrations", "ewsjf.bench", "integrations", "bench"),
    "integrations": ("ewsjf.bench", "bench"),
}


def imported_modules(path: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; relative imports stay inside their package."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return sorted(out)


def forbidden(folder: str, module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in FORBIDDEN[folder])


def violations(folder: str) -> list[str]:
    bad = []
    for base, _dirs, files in os.walk(os.path.join(ROOT, folder)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            for line, module in imported_modules(path):
                if forbidden(folder, module):
                    bad.append(f"{os.path.relpath(path, ROOT)}:{line}: imports {module}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_one_way(folder):
    assert violations(folder) == []


def test_the_checker_sees_a_violation(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from ewsjf.bench import traces\nimport ewsjf_core.sim\nfrom . import x\n")
    assert imported_modules(str(p)) == [(2, "ewsjf.bench"), (3, "ewsjf_core.sim")]
    assert forbidden("ewsjf_core", "ewsjf.bench") and forbidden("ewsjf_core", "ewsjf.bindings.base")
    assert forbidden("bindings", "ewsjf.integrations.vllm") and forbidden("integrations", "ewsjf.bench.traces")
    assert not forbidden("ewsjf_core", "ewsjf_core.sim") and not forbidden("integrations", "ewsjf.bindings")


def test_importing_the_bench_vllm_engine_changes_no_environment():
    code = ("import os, sys; before = dict(os.environ); import ewsjf.bench.virtual_vllm, ewsjf.bench.engines; "
            "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items()); "
            "assert 'vllm' not in sys.modules")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "DO_NOT_TRACK", "VLLM_NO_USAGE_STATS")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)
