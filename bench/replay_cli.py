"""Replay a workload through an engine under several schedulers and compare them side by side.

Default: the Azure LLM inference trace 2023 (code + conversation on one time axis, vendored), Llama-3-8B on
an A100-80GB (roofline step-time model; no GPU used), the built-in `sim` engine, policies fcfs, sjf,
oracle-sjf, hrrn and ewsjf. Examples:

  ewsjf bench                                   # the default comparison at the trace's own rate
  ewsjf bench --rate-scale 1.3 --out results/hi # 1.3x the trace's rate; JSON, markdown and plots in results/hi
  ewsjf bench --sweep 0.5:1.5:0.1 --out results/sweep
  ewsjf bench --engine sim,vllm --policies fcfs --window 0:600     # fidelity: sim vs vLLM's real scheduler
  ewsjf bench --workload sharegpt.csv --arrival-rate 4 --cv 2       # a length file with Gamma arrivals
  ewsjf bench --workload mooncake.jsonl --model path/to/config.json --gpu h100-80gb
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, rejection_reasons
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE, MIN_KV_BLOCKS
from ewsjf_core.sim.step_time import GPU_PRESETS, MODEL_PRESETS
from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS

from . import arg_types as T
from . import console, engines, fidelity, inputs, multi_instance_cli, report, suite
from .metrics import class_edges as default_edges
from .metrics import summarize
from .trace_input import MAX_REQUESTS
from .workloads import BUILTIN, FORMATS, check_span, load_workload, prepare


# One function per argument group: a new option goes into its group's function (or a new group function).
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    _workload_arguments(p.add_argument_group("workload"))
    _engine_arguments(p.add_argument_group("engine and GPU model"))
    _ewsjf_arguments(p.add_argument_group("EWSJF parameters"))
    _output_arguments(p.add_argument_group("metrics and output"))
    suite.add_arguments(p.add_argument_group("workload suite"))
    multi_instance_cli.add_arguments(p)


def _workload_arguments(g) -> None:
    g.add_argument("--workload", default="azure",
                   help=f"built-in ({', '.join(BUILTIN)}) or a trace file: Azure CSV, BurstGPT CSV, ShareGPT/BWB "
                        f"length CSV, Mooncake JSONL, or CSV arrival_s,prompt_tokens,output_tokens[,priority] "
                        f"(default: azure)")
    g.add_argument("--format", default="auto", choices=FORMATS, help="trace file format (default: detect)")
    g.add_argument("--arrival-rate", type=T.positive_float(), default=None,
                   help="requests/s for length-only traces (ShareGPT/BWB)")
    g.add_argument("--cv", type=T.positive_float(hi=100.0), default=1.0,
                   help="coefficient of variation of inter-arrival gaps for length-only traces: 1 Poisson, >1 "
                        "bursty Gamma (default 1)")
    g.add_argument("--num-requests", type=T.int_in(1, MAX_REQUESTS), default=None,
                   help="requests to draw from a length-only trace")
    g.add_argument("--seed", type=T.int_in(0, 2 ** 63 - 1), default=0)
    g.add_argument("--window", type=T.window, default=None, metavar="START:END",
                   help="only requests arriving in [START, END) seconds of the trace (re-based to 0)")
    g.add_argument("--max-requests", type=T.int_in(1, MAX_REQUESTS), default=None,
                   help="cap on the number of requests (the first N)")
    g.add_argument("--rate-scale", type=T.positive_float(), default=1.0,
                   help="load: multiply the arrival rate by this factor (default 1.0 = the trace's own rate)")
    g.add_argument("--sweep", type=T.loads, default=None, metavar="START:STOP:STEP",
                   help=f"load sweep, e.g. 0.5:1.5:0.1 or 0.8,1.0,1.3 (multiples of the trace's rate, times "
                        f"--rate-scale; at most {T.MAX_LOADS} loads)")


def _engine_arguments(g) -> None:
    g.add_argument("--engine", type=T.names("engine", engines.ENGINES), default="sim",
                   help="sim (built-in, default), vllm (vLLM's real scheduler in virtual time; needs vLLM), "
                        "or sim,vllm (both, with a fidelity comparison)")
    g.add_argument("--policies", type=T.names("policy", engines.POLICY_NAMES),
                   default=",".join(engines.DEFAULT_POLICIES),
                   help=f"comma list of {', '.join(engines.POLICY_NAMES)} (default: %(default)s)")
    g.add_argument("--model", default="llama-3-8b",
                   help=f"model preset ({', '.join(MODEL_PRESETS)}) or an HF config.json path (default llama-3-8b)")
    g.add_argument("--gpu", default="a100-80gb",
                   help=f"GPU preset ({', '.join(GPU_PRESETS)}; default a100-80gb) or a folder of GPU measurements "
                        f"(gpu_calib.py's layout: *_mlp.csv, attention.csv, meta.json), fitted when first used")
    g.add_argument("--token-budget", type=T.int_in(1), default=8192, help="max_num_batched_tokens (default 8192)")
    g.add_argument("--max-running", type=T.int_in(1), default=256, help="max_num_seqs (default 256)")
    g.add_argument("--kv-blocks", type=T.int_in(MIN_KV_BLOCKS), default=None,
                   help="KV-cache blocks (default: from GPU memory, weights and --gpu-memory-utilization)")
    g.add_argument("--block-size", type=T.divisor_of(PREFIX_BLOCK_TOKENS), default=16,
                   help=f"KV block size in tokens, a divisor of {PREFIX_BLOCK_TOKENS} (default %(default)s)")
    g.add_argument("--gpu-memory-utilization", type=T.positive_float(hi=1.0), default=0.9)
    g.add_argument("--watermark", type=T.fraction_below_one, default=0.0,
                   help="vLLM's --watermark, for every policy: an admission beside running requests leaves this "
                        "fraction of the KV blocks free (default %(default)s, as vLLM)")
    g.add_argument("--ewsjf-preemption-guard", action=argparse.BooleanOptionalAction,
                   default=DEFAULT_PREEMPTION_GUARD,
                   help="EWSJF's watermark learned from preemptions (vLLM option preemption_guard): after a step "
                        "preempted, admissions leave free the blocks the running batch grows by between two "
                        "completions, for about a request's lifetime; baselines always run without it (default: on)")
    g.add_argument("--no-chunked-prefill", action="store_true")
    g.add_argument("--no-prefix-caching", action="store_true")
    g.add_argument("--ewsjf-head-share", type=T.fraction, default=DEFAULT_WAITING_HEAD_SHARE,
                   help="EWSJF's share of the chunk budget for the waiting queue's next request while a prefill "
                        "runs (vLLM option waiting_head_share; 0: off; baselines always run without it; "
                        "default %(default)s)")
    g.add_argument("--max-model-len", type=T.int_in(2), default=None,
                   help="context length: longer prompts are rejected as vLLM does (default: the model's "
                        "max_position_embeddings)")
    g.add_argument("--fidelity", action="store_true",
                   help="run the fidelity matrix instead: sim vs vLLM's real scheduler on every workload "
                        "(bench/fidelity.py)")
    g.add_argument("--fidelity-rows", type=fidelity.row_filters, default=None, metavar="WORKLOAD[@LOAD][:POLICY],...",
                   help="with --fidelity: only these rows, e.g. mooncake@0.2:ewsjf (default: all)")


def _ewsjf_arguments(g) -> None:
    g.add_argument("--ewsjf-config", default=None, help="YAML or JSON file of EWSJFConfig overrides")
    g.add_argument("--ewsjf-set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one EWSJFConfig field (repeatable), e.g. --ewsjf-set max_wait=inf")


def _output_arguments(g) -> None:
    g.add_argument("--class-edges", type=T.edges, default=None, metavar="SHORT_MAX,MEDIUM_MAX",
                   help="prompt-token edges of the length classes (default: the workload's terciles)")
    g.add_argument("--slo-ttft", type=T.positive_float(allow_inf=True), default=2.0,
                   help="goodput SLO on TTFT, seconds (default 2; inf: none)")
    g.add_argument("--slo-tpot", type=T.positive_float(allow_inf=True), default=0.1,
                   help="goodput SLO on TPOT, seconds (default 0.1; inf: none)")
    g.add_argument("--out", default=None, help="folder for results.json, report.md and the PNG plots")
    g.add_argument("--json", default=None, help="write the results JSON here")
    g.add_argument("--markdown", default=None, help="write the markdown report here")
    g.add_argument("--plots", default=None, help="write the PNG plots into this folder")
    g.add_argument("--no-plots", action="store_true", help="no PNG plots even with --out")
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bars on stderr (default: when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")


def run(args) -> int:
    made: list[str] = []
    try:
        if args.fidelity_rows is not None and not args.fidelity:
            raise ValueError("--fidelity-rows selects rows of --fidelity: give both")
        _check_mode_outputs(args)
        _check_mode_options(args)
        multi_instance_cli.check_args(args)
        # Every mode's outputs (the suite's --out, the fidelity matrix's --json, ...) fail now, not after its run.
        made = inputs.output_paths(args.out, args.json, args.markdown, args.plots,
                                   reads=[args.workload, args.ewsjf_config, args.model])
        rc = fidelity.main(args) if args.fidelity else _run_suite(args) if args.suite else _run(args)
        made = []   # the run went through: its folders stay
        return rc
    except (ValueError, TypeError, RuntimeError, OSError, OverflowError) as e:   # TraceError is a ValueError
        one_line = "; ".join(x.strip() for x in str(e).splitlines() if x.strip())   # a library's may not be
        print(f"ewsjf bench: error: {one_line}", file=sys.stderr)
    except KeyboardInterrupt:
        print("ewsjf bench: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("ewsjf bench: error: out of memory (a smaller --window, --max-requests or --num-requests?)",
              file=sys.stderr)
    finally:
        inputs.remove_made_folders(made)   # a refused run takes back the empty folders it made
    return 2


_MODE_OUTPUTS = {"suite": ("out",), "fidelity": ("json",), "instances": ("out", "json")}
"""The outputs each mode writes (a plain replay writes them all): an output the mode would not write is refused
rather than silently left unwritten."""


_MODE_OPTIONS = {"--suite": ("suite_workloads", "suite_requests", "suite_cache", "no_pareto", "suite_gpu",
                              "suite_model", "suite_tuner"),
                 "--instances": ("routers", "stats_period")}
"""Options that only their mode reads: given without it, they were silently ignored."""

_SUITE_TRACE_OPTIONS = ("workload", "format", "cv")
"""Replay options the suite reads: `--suite --workload FILE` runs the suite on a user's trace (bench/suite_trace.py)."""
_REPLAY_ONLY_OPTIONS = ("arrival_rate", "num_requests", "window", "max_requests", "rate_scale", "sweep", "engine",
                        "policies", "class_edges", "slo_ttft", "slo_tpot")
_REPLAY_OPTIONS = (*_SUITE_TRACE_OPTIONS, *_REPLAY_ONLY_OPTIONS)
_NOT_READ_BY = {"--suite": (*_REPLAY_ONLY_OPTIONS, "model", "gpu", "max_model_len"),
                "--fidelity": (*_REPLAY_OPTIONS, "seed", "no_prefix_caching", "ewsjf_config", "ewsjf_set",
                               "ewsjf_head_share", "ewsjf_preemption_guard")}
"""Options a mode does not read (the suite's workloads bring their traces, loads and models, the fidelity
matrix's cases theirs, prefix caching included): given to it, they were silently ignored."""


def _set_by_user(args) -> set[str]:
    """The options given on the command line (`args.given_options`, set by `ewsjf`'s main), a default value typed
    out included; args parsed elsewhere carry no such set, and there an option counts as given when its value
    differs from its default."""
    given = getattr(args, "given_options", None)
    if given is not None:
        return set(given)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    return {n for n, default in defaults.items() if getattr(args, n) != default}


def _run_suite(args) -> int:
    """The suite; with --workload FILE, on that trace (alone, unless --suite-workloads names others too)."""
    given = _set_by_user(args)
    if "workload" not in given:
        for name in ("format", "cv"):
            if name in given:
                raise ValueError(f"--{name}: with --suite it describes a trace given by --workload FILE; give both")
        return suite.run_suite(args)
    return suite.run_suite(args, trace=args.workload, names=args.suite_workloads if "suite_workloads" in given else "")


def _check_mode_options(args) -> None:
    """Refuse an option that the run would ignore: one of a mode not asked for, or one the mode asked for does not
    read (see _set_by_user for what counts as given)."""
    set_by_user = _set_by_user(args)

    def given(names) -> list[str]:
        return ["--" + n.replace("_", "-") for n in names if n in set_by_user]

    modes = {"--suite": args.suite, "--instances": multi_instance_cli.wanted(args), "--fidelity": args.fidelity}
    for mode, names in _MODE_OPTIONS.items():
        unread = given(names) if not modes[mode] else []
        if unread:
            raise ValueError(f"{', '.join(unread)}: only {mode} reads {'it' if len(unread) == 1 else 'them'}; "
                             f"give {mode} too, or leave {'it' if len(unread) == 1 else 'them'} out")
    for mode, names in _NOT_READ_BY.items():
        unread = given(names) if modes[mode] else []
        if unread:
            raise ValueError(f"{', '.join(unread)}: {mode} does not read {'it' if len(unread) == 1 else 'them'}; "
                             f"leave {'it' if len(unread) == 1 else 'them'} out")


def _check_mode_outputs(args) -> None:
    """Outputs asked for that the run would not write: refused (see _MODE_OUTPUTS)."""
    if args.plots and args.no_plots:
        raise ValueError(f"--plots and --no-plots: plots asked for ({args.plots}) and refused; give one of them")
    mode = ("suite" if args.suite else "fidelity" if args.fidelity
            else "instances" if multi_instance_cli.wanted(args) else None)
    if mode is None:
        return
    for name in ("out", "json", "markdown", "plots"):
        if getattr(args, name) and name not in _MODE_OUTPUTS[mode]:
            wanted = " or ".join(f"--{n}" for n in _MODE_OUTPUTS[mode])
            raise ValueError(f"--{mode} writes no --{name}: give {wanted}")


def _run(args) -> int:
    t_start = time.perf_counter()
    policies, engine_names = args.policies, args.engine
    if all(e == "vllm" and p == "ewsjf-tuned" for e in engine_names for p in policies):
        raise ValueError("--policies ewsjf-tuned does not run on --engine vllm: nothing to run")
    ecfg = inputs.ewsjf_config(args.ewsjf_config, args.ewsjf_set)
    if "ewsjf-tuned" in policies:   # its $EWSJF_TUNER overrides fail now, not after the other replays
        from ewsjf.bindings.tuned_queue import bench_tuner_settings
        bench_tuner_settings()
    base = load_workload(args.workload, args.format, rate=args.arrival_rate, cv=args.cv, seed=args.seed,
                         num_requests=args.num_requests)
    base = prepare(base, window=args.window, max_requests=args.max_requests)
    step_model = inputs.step_model(args.model, args.gpu)
    engine = inputs.engine_config(args)
    kv_blocks = inputs.sized_engine(engine, step_model).kv_blocks
    reasons = rejection_reasons(base, engine, kv_blocks)
    inputs.check_servable(reasons, engine, kv_blocks, args.max_model_len is None)
    if "vllm" in engine_names:
        _check_vllm_engine(base, engine, kv_blocks)
    edges = args.class_edges or default_edges(base.prompt_tokens)
    # Loads keep the digits they were given (12 significant digits drop float noise such as 1.1 * 3).
    loads = [float(f"{args.rate_scale * x:.12g}") for x in (args.sweep or [1.0])]
    if not all(0 < x < math.inf for x in loads):
        raise ValueError(f"--rate-scale {args.rate_scale:g} x --sweep gives loads beyond float range")
    check_span(base, min(loads), "--sweep" if args.sweep else "--rate-scale")
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    command = "ewsjf bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 and \
        sys.argv[1] == "bench" else "ewsjf bench (API call)"

    desc = base.describe()
    print(f"workload {desc['name']}: {desc['requests']} requests over {desc['duration_s']} s "
          f"({desc.get('rate_rps') or '-'} req/s), prompt mean {desc['prompt_mean']} p99 {desc['prompt_p99']}, "
          f"output mean {desc['output_mean']}")
    d = step_model.describe()
    print(f"model {d['model']} on {d['gpu']}: roofline step-time model ({d['calibration']}; "
          f"no GPU used); KV cache {kv_blocks} blocks x {engine.block_size} tokens; token budget "
          f"{engine.token_budget}, max running {engine.max_running}")
    print(f"length classes by prompt tokens: short <= {edges[0]} < medium <= {edges[1]} < long; "
          f"loads {', '.join(report.load_label(x) for x in loads)} x trace rate; engines {', '.join(engine_names)}")
    if multi_instance_cli.wanted(args):
        return multi_instance_cli.main(args, base, step_model, engine, ecfg, edges, loads, policies, show_progress,
                                       reasons)

    runs, ttfts = _replay_all(args, base, loads, engine_names, policies, step_model, engine, ecfg, edges,
                              show_progress, reasons)
    cl, fd = _print_tables(runs, loads, policies, engine_names)
    doc = {
        "settings": {
            "command": command, "workload": desc, "loads": loads, "policies": policies, "engines": engine_names,
            "step_model": step_model.describe(),
            "engine": {"token_budget": engine.token_budget, "max_running": engine.max_running,
                       "kv_blocks": kv_blocks, "block_size": engine.block_size,
                       "chunked_prefill": engine.chunked_prefill, "prefix_caching": engine.prefix_caching,
                       "kv_watermark": engine.kv_watermark, "ewsjf_head_share": args.ewsjf_head_share,
                       "ewsjf_preemption_guard": args.ewsjf_preemption_guard},
            "ewsjf_config": (ecfg or EWSJFConfig()).to_dict(), "class_edges": list(edges),
            "slo": {"ttft_s": args.slo_ttft, "tpot_s": args.slo_tpot},
            "window": list(args.window) if args.window else None, "max_requests": args.max_requests,
        },
        "runs": runs, "claims": cl, "fidelity": fd,
        "wall_s": time.perf_counter() - t_start,
    }
    _write_outputs(args, doc, ttfts, edges)
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0


VLLM_MAX_KV_BLOCKS = 2 ** 24
"""Most KV blocks for the vllm engine: vLLM's block pool makes a Python object per block (~140 bytes: 2.3 GB
here); a real GPU's cache is well under a million blocks."""


def _check_vllm_engine(w, engine: EngineConfig, kv_blocks: int) -> None:
    """What vLLM refuses at start-up, refused by option: a KV cache that cannot hold its longest request (its
    scheduler would wait for the blocks forever), and without chunked prefill a token budget below the context
    length."""
    if not engine.chunked_prefill and engine.max_model_len is not None and engine.token_budget < engine.max_model_len:
        raise ValueError(f"--token-budget {engine.token_budget}: engine vllm without chunked prefill needs a token "
                         f"budget of at least the context length ({engine.max_model_len}: --max-model-len), as vLLM "
                         f"checks at start-up")
    block_size = engine.block_size
    need = (w.prompt_tokens + w.output_tokens + block_size - 1) // block_size
    if kv_blocks > VLLM_MAX_KV_BLOCKS:
        raise ValueError(f"--kv-blocks {kv_blocks}: engine vllm holds one Python object per block (~140 bytes); "
                         f"at most {VLLM_MAX_KV_BLOCKS} blocks")
    if int(need.max()) > kv_blocks:
        i = int(need.argmax())
        raise ValueError(f"--kv-blocks: engine vllm needs the KV cache to hold the longest request, as vLLM "
                         f"checks at start-up (request {i}: {int(need[i])} blocks for {int(w.prompt_tokens[i])} "
                         f"prompt + {int(w.output_tokens[i])} output tokens; the cache has {kv_blocks})")


def _replay_all(args, base, loads, engine_names, policies, step_model, engine, ecfg, edges, show_progress,
                reasons: list[str]):
    """Every (load, engine, policy) replay: the runs (metrics per replay) and the TTFTs per length class."""
    runs: list[dict] = []
    ttfts: dict = {}
    rejections_said: set[tuple[int, ...]] = set()
    P = base.prompt_tokens
    cls_masks = {"short": P <= edges[0], "medium": (P > edges[0]) & (P <= edges[1]), "long": P > edges[1]}
    with console.progress(show_progress) as bars:
        for load in loads:
            w = base.scale_rate(load) if load != 1.0 else base
            label = report.load_label(load)
            for eng in engine_names:
                for pol in policies:
                    if eng == "vllm" and pol == "ewsjf-tuned":
                        print(f"  skip {pol} on vllm (not supported)", file=sys.stderr)
                        continue
                    res = engines.run(eng, w, pol, step_model,
                                      engines.policy_engine(pol, engine, args.ewsjf_head_share,
                                                            args.ewsjf_preemption_guard), ecfg,
                                      bars.task(f"{eng}/{pol} @ {label}"))
                    m = summarize(res, edges, args.slo_ttft, args.slo_tpot)
                    report.check_rejections(m, res.rejected, f"{eng}/{pol} @ {label}", rejections_said,
                                            "every policy", reasons)
                    runs.append({"engine": eng, "policy": pol, "load": load, "metrics": m,
                                 "queue_stats": res.info.get("queue_stats"), "warmup_s": res.info.get("warmup_s")})
                    ttft = res.first_token_s - w.arrival_s
                    ttfts.setdefault((eng, load), {})[pol] = {k: ttft[v] for k, v in cls_masks.items()}
                    if not show_progress:
                        print(f"  {eng}/{pol} @ {label}: replay {res.wall_s:.2f} s, {res.steps} steps, "
                              f"mean TTFT {report.fmt(m['ttft_s']['mean'])} s"
                              + (f" (kernels warmed first: {res.info['warmup_s']:.1f} s one-off)"
                                 if res.info.get("warmup_s") else ""), file=sys.stderr)
    return runs, ttfts


def _print_tables(runs: list[dict], loads: list[float], policies: list[str], engine_names: list[str]):
    """The terminal tables; returns the claims and fidelity rows (for the JSON and markdown)."""
    for load in loads:
        sel = [r for r in runs if r["load"] == load]
        print(f"\n== load {report.load_label(load)} x trace rate (times in seconds) ==")
        print(report.table(report.main_rows(sel), report.MAIN_HEADER))
    if len(loads) > 1:
        print("\n== load sweep ==")
        print(report.table(report.sweep_rows(runs), report.SWEEP_HEADER))
    cl = []
    for cand in ("ewsjf", "ewsjf-tuned"):
        if cand in policies and "fcfs" in policies:
            cl += report.claims(runs, cand)
    if cl:
        print("\n== claims check vs FCFS (published: >= 4x lower short mean TTFT, >= +30% output throughput "
              "under overload, long p99 TTFT <= 1.25x) ==")
        print(report.table(report.claims_rows(cl), report.CLAIMS_HEADER))
    fd = report.fidelity(runs) if len(engine_names) > 1 else []
    if fd:
        ok = all(x["ok"] for x in fd)
        print(f"\n== fidelity: sim vs vLLM's real scheduler (target: within 10%) -> "
              f"{'OK' if ok else 'NOT within 10%'} ==")
        print(report.table(report.fidelity_rows(fd), report.FIDELITY_HEADER))
    return cl, fd


def _write_outputs(args, doc: dict, ttfts: dict, edges: tuple[int, int]) -> None:
    """results.json, report.md and the PNG plots where asked for (folders were created before the replay)."""
    json_path = args.json or (os.path.join(args.out, "results.json") if args.out else None)
    md_path = args.markdown or (os.path.join(args.out, "report.md") if args.out else None)
    plot_dir = args.plots or (args.out if args.out and not args.no_plots else None)
    written = []
    pngs: list[str] = []
    if plot_dir and not args.no_plots:
        pngs = report.plots(plot_dir, doc["runs"], ttfts, edges)
        written += pngs
    if json_path:
        report.write_json(json_path, doc)
        written.append(json_path)
    if md_path:
        os.makedirs(os.path.dirname(os.path.abspath(md_path)) or ".", exist_ok=True)
        rel = [os.path.relpath(p, os.path.dirname(os.path.abspath(md_path))) for p in pngs]
        with open(md_path, "w") as f:
            f.write(report.markdown(doc, rel))
        written.append(md_path)
    if written:
        print("\nwrote " + ", ".join(written))
