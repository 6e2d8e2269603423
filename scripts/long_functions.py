"""List functions longer than a limit (default 80 lines, decorators and docstrings included).

    python scripts/long_functions.py [--limit 80] [folders...]
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

FOLDERS = ("ewsjf_core", "bindings", "integrations", "bench", "scripts")


def long_functions(root: str, folders, limit: int) -> list[tuple[int, str]]:
    found = []
    for folder in folders:
        for base, _dirs, files in os.walk(os.path.join(root, folder)):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(base, name)
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read(), path)
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                        n = node.end_lineno - first + 1
                        if n > limit:
                            found.append((n, f"{os.path.relpath(path, root)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("folders", nargs="*", default=FOLDERS)
    args = ap.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = long_functions(root, args.folders, args.limit)
    for n, where in found:
        print(f"{n:5d}  {where}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
