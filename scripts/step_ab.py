"""`ewsjf micro`'s step, a git revision against the working tree, alternating in one process (issue 11).

    .venv/bin/python scripts/step_ab.py [--base 1b68084] [--sizes 1000,10000,100000] [--repeats 40] [--policy ewsjf]

Runs minutes apart on a shared machine move every figure by up to 2x, so a change to the hot path is compared
here in one process: the revision's ewsjf_core, bindings and bench are exported (git archive) under other package
names (ab_ewsjf_core, ab_ewsjf.*), both queues are filled alike, and their steps (begin_step + 256 pops, timed as
`ewsjf micro` times them) alternate repeat by repeat. Median microseconds per step for each. The exported tree's
numba cache lives under --cache, per revision, so only the first run for a revision compiles its kernels.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

from ewsjf.bench import micro

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ab_"
_IMPORTS = re.compile(r"\bewsjf_core\b|\bewsjf\.(bindings|bench|integrations)\b")


def export(rev: str, cache: Path) -> Path:
    """The revision's packages under PREFIX names, in cache/<commit> (made once per commit)."""
    sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    dest = cache / sha
    if (dest / f"{PREFIX}ewsjf" / "__init__.py").exists():
        return dest
    tar = subprocess.run(["git", "archive", sha, "ewsjf_core", "bindings", "bench"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    where = {"ewsjf_core": f"{PREFIX}ewsjf_core", "bindings": f"{PREFIX}ewsjf/bindings",
             "bench": f"{PREFIX}ewsjf/bench"}
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for member in tf.getmembers():
            top, _, rest = member.name.partition("/")
            if not member.isfile() or top not in where:
                continue
            data = tf.extractfile(member).read()
            if member.name.endswith(".py"):
                data = _IMPORTS.sub(lambda m: PREFIX + m.group(0), data.decode()).encode()
            path = dest / where[top] / rest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (dest / f"{PREFIX}ewsjf" / "__init__.py").write_text("")
    return dest


def compare(micro_modules: dict, n: int, repeats: int, policy: str = "ewsjf-handle") -> dict[str, float]:
    """Median microseconds per step for each side at n waiting, the sides' repeats alternating."""
    sides = {}
    for name, m in micro_modules.items():
        # The request stream and the filling are this checkout's for both sides (only the queues differ), so
        # any revision compares, whatever it named them.
        w = micro.RequestStream(0)
        q = m.POLICIES[policy](lambda w=w: w.t)
        micro.fill(q, w, n)
        q.begin_step(w.t)
        q.settle()
        sides[name] = (m, q, w, [])
    for r in range(repeats + 3):
        for m, q, w, steps in sides.values():
            q.begin_step(w.t)
            q.settle()
            times: list[float] = []
            popped = m.run_steps(q, w.t, min(m.POPS_PER_STEP, len(q) // m.STEPS_PER_RUN), times)
            if r >= 3:   # the first repeats warm both sides up
                steps += times
            for batch in popped:
                q.forget(batch)
            micro.fill(q, w, n - len(q))
    return {name: statistics.median(side[3]) * 1e6 for name, side in sides.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="the git revision to compare the working tree with")
    ap.add_argument("--sizes", default="1000,10000,100000", help="waiting-set sizes, comma-separated")
    ap.add_argument("--repeats", type=int, default=40, help="timed repeats per side (4 steps each)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ewsjf-step-ab",
                    help="where exported revisions (and their numba caches) are kept")
    ap.add_argument("--policy", default="ewsjf-handle", choices=("ewsjf-handle", "ewsjf"),
                    help="EWSJF driven by handles (pop_many) or by ids (one pop() per admission)")
    args = ap.parse_args()
    sys.path.insert(0, str(export(args.base, args.cache)))
    modules = {args.base: importlib.import_module(f"{PREFIX}ewsjf.bench.micro"),
               "working tree": importlib.import_module("ewsjf.bench.micro")}
    from ewsjf.bench import console

    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        res = compare(modules, n, args.repeats, args.policy)
        base, new = res[args.base], res["working tree"]
        rows.append([f"{n:,}", f"{base:.1f}", f"{new:.1f}", f"{new / base:.3f}"])
    title = f"micro's step (begin_step + 256 pops, {args.policy}), median us, alternating in one process"
    print(console.table(rows, ["waiting", args.base, "working tree", "ratio"], title=title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
