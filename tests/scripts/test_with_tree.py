"""scripts/with_tree.py: a script run with the packages of another checkout, named by that checkout's pyproject."""

import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "with_tree.py"


def _tree(root: Path) -> Path:
    """A checkout whose pyproject maps ewsjf_core and ewsjf.bindings to folders marked with their tree."""
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "ewsjf_core" = "core", '
                                         '"ewsjf.bindings" = "bind" }\n')
    for folder in ("core", "bind"):
        (root / folder).mkdir()
        (root / folder / "__init__.py").write_text(f"TREE = {str(root)!r}\n")
        (root / folder / "part.py").write_text("from . import TREE as FROM\n")
    return root


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(_SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_the_script_and_its_imports_see_the_trees_packages(tmp_path):
    tree = _tree(tmp_path / "candidate")
    script = tmp_path / "show.py"
    script.write_text("import sys, ewsjf_core.part, ewsjf.bindings.part\n"
                      "print(ewsjf_core.part.FROM, ewsjf.bindings.part.FROM, sys.argv[1:])\n")
    out = _run(str(tree), str(script), "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tree), str(tree), "['--seed',", "'3']"]


def test_a_folder_that_is_no_checkout_is_refused_by_name(tmp_path):
    out = _run(str(tmp_path), str(tmp_path / "any.py"))
    assert out.returncode == 1 and f"{tmp_path} holds no pyproject.toml" in out.stderr
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    out = _run(str(tmp_path), str(tmp_path / "any.py"))
    assert out.returncode == 1 and "has no [tool.setuptools] package-dir" in out.stderr
