"""Run a script with the ewsjf packages imported from another checkout (a worktree holding a candidate).

    .venv/bin/python scripts/with_tree.py ../candidate scripts/suite_cells.py all --seed 0 --against /tmp/default.json

A design pass compares a candidate branch against the default on the same machine, with the one environment this
checkout set up (`scripts/setup.sh`: vLLM, numba, the suite's caches). The installed project is editable and points
at this checkout; here each package of the tree's own pyproject.toml (`[tool.setuptools] package-dir`) is imported
from the tree instead, before the script runs, so the script (its path as given) and everything it imports see the
candidate's code. Numba's on-disk cache is per source file, so the two trees never share compiled kernels.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
import tomllib
import types
from pathlib import Path


def package_dirs(tree: Path) -> dict[str, Path]:
    """{package name: its folder} from the tree's pyproject.toml (ValueError naming what is missing)."""
    pyproject = tree / "pyproject.toml"
    if not pyproject.is_file():
        raise ValueError(f"{tree} holds no pyproject.toml: not an ewsjf checkout")
    with pyproject.open("rb") as f:
        mapping = tomllib.load(f).get("tool", {}).get("setuptools", {}).get("package-dir")
    if not mapping:
        raise ValueError(f"{pyproject} has no [tool.setuptools] package-dir")
    return {name: tree / folder for name, folder in mapping.items()}


def import_from(tree: Path) -> None:
    """Import every top package of the tree's package-dir from the tree (its parents as empty namespaces)."""
    for name, folder in package_dirs(tree).items():
        for k in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[k]   # nothing imported from the installed checkout survives
        parent, _, leaf = name.rpartition(".")
        if parent and parent not in sys.modules:
            namespace = types.ModuleType(parent)
            namespace.__path__ = []
            sys.modules[parent] = namespace
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if parent:
            setattr(sys.modules[parent], leaf, module)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    tree, script = Path(sys.argv[1]).resolve(), sys.argv[2]
    try:
        import_from(tree)
    except ValueError as e:
        sys.exit(f"with_tree: {e}")
    sys.argv = sys.argv[2:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
