"""The `ewsjf` console command: `ewsjf micro` (microbenchmarks) and `ewsjf bench` (trace replay)."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, help). Each module exposes add_arguments(parser) and run(args) -> int.
_SUBCOMMANDS = {
    "micro": ("ewsjf.bench.micro", "time EWSJF's hot path against deque FCFS and heapq in one run"),
    "bench": ("ewsjf.bench.replay_cli", "replay a workload through an engine under several schedulers"),
    "calibrate": ("ewsjf_core.sim.calibrate", "fit the step-time model's GPU parameters to measured timings"),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (the full usage is one --help away), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (2 for a usage error, 0 after --help)."""
    parser = _Parser(prog="ewsjf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules = {}
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        # The module's docstring as written: its example commands keep their own lines.
        module.add_arguments(sub.add_parser(name, help=help_text, description=module.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:   # --help, or a usage error already printed in one line
        return e.code if isinstance(e.code, int) else 2
    module = modules[args.command]
    args.given_options = _given_options(module, [d for d in vars(args) if d != "command"], argv[1:])
    return int(module.run(args) or 0)


def _given_options(module, dests: list[str], argv: list[str]) -> frozenset[str]:
    """The dests the subcommand's own arguments set, a default value typed out included: a mode refuses an option
    it would ignore by whether it was given, not by its value (`--suite --model llama-3-8b` asked for a model the
    suite then did not use). Parsed again with every default None: no option's value parses to None."""
    probe = _Parser()
    module.add_arguments(probe)
    probe.set_defaults(**dict.fromkeys(dests))
    return frozenset(d for d, v in vars(probe.parse_args(argv)).items() if v is not None)


if __name__ == "__main__":
    sys.exit(main())
