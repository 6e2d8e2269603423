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
import os
import shlex
import sys
import time
from typing import Any


from ewsjf_core.config import EWSJFConfig, read_mapping_file
from ewsjf_core.sim import EngineConfig, RooflineStepTime, summarize
from ewsjf_core.sim.context_length import context_length
from ewsjf_core.sim.metrics import class_edges as default_edges
from ewsjf_core.sim.step_time import GPU_PRESETS, MODEL_PRESETS
from ewsjf_core.sim.traces import TraceError

from . import engines, fidelity, multi_instance_cli, report
from .workloads import BUILTIN, FORMATS, load_workload, prepare


def _range(text: str) -> list[float]:
    try:
        parts = [float(x) for x in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP or a comma list, got {text!r}") from None
    if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0] or parts[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP with 0 < START <= STOP and STEP > 0, got {text!r}")
    n = int(round((parts[1] - parts[0]) / parts[2]))
    return [round(parts[0] + i * parts[2], 6) for i in range(n + 1)]


def _loads(text: str) -> list[float]:
    if ":" in text:
        return _range(text)
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP or a comma list, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"loads must be > 0, got {text!r}")
    return vals


def _window(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END seconds, got {text!r}") from None
    if b <= a:
        raise argparse.ArgumentTypeError(f"window end must exceed start, got {text!r}")
    return a, b


def _edges(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SHORT_MAX,MEDIUM_MAX tokens, got {text!r}") from None
    if not 0 < a < b:
        raise argparse.ArgumentTypeError(f"class edges must be increasing and > 0, got {text!r}")
    return a, b


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    g = p.add_argument_group("workload")
    g.add_argument("--workload", default="azure",
                   help=f"built-in ({', '.join(BUILTIN)}) or a trace file: Azure CSV, ShareGPT/BWB length CSV, "
                        f"Mooncake JSONL, or CSV arrival_s,prompt_tokens,output_tokens[,priority] (default: azure)")
    g.add_argument("--format", default="auto", choices=FORMATS, help="trace file format (default: detect)")
    g.add_argument("--arrival-rate", type=float, default=None,
                   help="requests/s for length-only traces (ShareGPT/BWB)")
    g.add_argument("--cv", type=float, default=1.0,
                   help="coefficient of variation of inter-arrival gaps for length-only traces: 1 Poisson, >1 "
                        "bursty Gamma (default 1)")
    g.add_argument("--num-requests", type=int, default=None, help="requests to draw from a length-only trace")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--window", type=_window, default=None, metavar="START:END",
                   help="only requests arriving in [START, END) seconds of the trace (re-based to 0)")
    g.add_argument("--max-requests", type=int, default=None, help="cap on the number of requests (the first N)")
    g.add_argument("--rate-scale", type=float, default=1.0,
                   help="load: multiply the arrival rate by this factor (default 1.0 = the trace's own rate)")
    g.add_argument("--sweep", type=_loads, default=None, metavar="START:STOP:STEP",
                   help="load sweep, e.g. 0.5:1.5:0.1 or 0.8,1.0,1.3 (multiples of the trace's rate, times "
                        "--rate-scale)")
    g = p.add_argument_group("engine and GPU model")
    g.add_argument("--engine", default="sim",
                   help="sim (built-in, default), vllm (vLLM's real scheduler in virtual time; needs vLLM), "
                        "or sim,vllm (both, with a fidelity comparison)")
    g.add_argument("--policies", default=",".join(engines.DEFAULT_POLICIES),
                   help=f"comma list of {', '.join(engines.POLICY_NAMES)} (default: %(default)s)")
    g.add_argument("--model", default="llama-3-8b",
                   help=f"model preset ({', '.join(MODEL_PRESETS)}) or an HF config.json path (default llama-3-8b)")
    g.add_argument("--gpu", default="a100-80gb", help=f"GPU preset ({', '.join(GPU_PRESETS)}; default a100-80gb)")
    g.add_argument("--token-budget", type=int, default=8192, help="max_num_batched_tokens (default 8192)")
    g.add_argument("--max-running", type=int, default=256, help="max_num_seqs (default 256)")
    g.add_argument("--kv-blocks", type=int, default=None,
                   help="KV-cache blocks (default: from GPU memory, weights and --gpu-memory-utilization)")
    g.add_argument("--block-size", type=int, default=16)
    g.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    g.add_argument("--no-chunked-prefill", action="store_true")
    g.add_argument("--no-prefix-caching", action="store_true")
    g.add_argument("--max-model-len", type=int, default=None,
                   help="context length: longer prompts are rejected as vLLM does (default: the model's "
                        "max_position_embeddings)")
    g.add_argument("--fidelity", action="store_true",
                   help="run the fidelity matrix instead: sim vs vLLM's real scheduler on every workload (bench/fidelity.py)")
    g = p.add_argument_group("EWSJF parameters")
    g.add_argument("--ewsjf-config", default=None, help="YAML or JSON file of EWSJFConfig overrides")
    g.add_argument("--ewsjf-set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one EWSJFConfig field (repeatable), e.g. --ewsjf-set max_wait=inf")
    g = p.add_argument_group("metrics and output")
    g.add_argument("--class-edges", type=_edges, default=None, metavar="SHORT_MAX,MEDIUM_MAX",
                   help="prompt-token edges of the length classes (default: the workload's terciles)")
    g.add_argument("--slo-ttft", type=float, default=2.0, help="goodput SLO on TTFT, seconds (default 2)")
    g.add_argument("--slo-tpot", type=float, default=0.1, help="goodput SLO on TPOT, seconds (default 0.1)")
    g.add_argument("--out", default=None, help="folder for results.json, report.md and the PNG plots")
    g.add_argument("--json", default=None, help="write the results JSON here")
    g.add_argument("--markdown", default=None, help="write the markdown report here")
    g.add_argument("--plots", default=None, help="write the PNG plots into this folder")
    g.add_argument("--no-plots", action="store_true", help="no PNG plots even with --out")
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    multi_instance_cli.add_arguments(p)


def _ewsjf_config(args) -> EWSJFConfig | None:
    values: dict[str, Any] = {}
    if args.ewsjf_config:
        values.update(read_mapping_file(args.ewsjf_config))
    for item in args.ewsjf_set:
        if "=" not in item:
            raise ValueError(f"--ewsjf-set expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        import yaml
        parsed = yaml.safe_load(v)
        if isinstance(parsed, str) and parsed.lower() in ("inf", "+inf", "infinity"):
            parsed = float("inf")
        values[k.strip()] = parsed
    return EWSJFConfig.from_mapping(values) if values else None


def run(args) -> int:
    try:
        return fidelity.main(args) if args.fidelity else _run(args)
    except (TraceError, ValueError, TypeError, RuntimeError, OSError) as e:
        print(f"ewsjf bench: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    t_start = time.perf_counter()
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    for pol in policies:
        if pol not in engines.POLICY_NAMES:
            raise ValueError(f"unknown policy {pol!r}: use {', '.join(engines.POLICY_NAMES)}")
    engine_names = [x.strip() for x in args.engine.split(",") if x.strip()]
    for e in engine_names:
        if e not in engines.ENGINES:
            raise ValueError(f"unknown engine {e!r}: use {', '.join(engines.ENGINES)}")
    ecfg = _ewsjf_config(args)
    base = load_workload(args.workload, args.format, rate=args.arrival_rate, cv=args.cv, seed=args.seed,
                         num_requests=args.num_requests)
    base = prepare(base, window=args.window, max_requests=args.max_requests)
    step_model = RooflineStepTime(args.model, args.gpu)
    engine = EngineConfig(token_budget=args.token_budget, max_running=args.max_running, kv_blocks=args.kv_blocks,
                          block_size=args.block_size, chunked_prefill=not args.no_chunked_prefill,
                          prefix_caching=not args.no_prefix_caching,
                          gpu_memory_utilization=args.gpu_memory_utilization,
                          max_model_len=args.max_model_len or context_length(args.model))
    kv_blocks = engine.kv_blocks or step_model.kv_blocks(engine.block_size, engine.gpu_memory_utilization)
    edges = args.class_edges or default_edges(base.prompt_tokens)
    loads = [round(args.rate_scale * x, 6) for x in args.sweep] if args.sweep else [args.rate_scale]
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    command = "ewsjf bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 and \
        sys.argv[1] == "bench" else "ewsjf bench (API call)"

    desc = base.describe()
    print(f"workload {desc['name']}: {desc['requests']} requests over {desc['duration_s']} s "
          f"({desc.get('rate_rps')} req/s), prompt mean {desc['prompt_mean']} p99 {desc['prompt_p99']}, "
          f"output mean {desc['output_mean']}")
    d = step_model.describe()
    print(f"model {d['model']} on {d['gpu']}: roofline step-time model "
          f"({'efficiencies fitted to A100 measurements' if d['calibrated'] else 'efficiencies NOT calibrated for this GPU'}; "
          f"no GPU used); KV cache {kv_blocks} blocks x {engine.block_size} tokens; token budget "
          f"{engine.token_budget}, max running {engine.max_running}")
    print(f"length classes by prompt tokens: short <= {edges[0]} < medium <= {edges[1]} < long; "
          f"loads {', '.join(f'{x:g}' for x in loads)} x trace rate; engines {', '.join(engine_names)}")
    if multi_instance_cli.wanted(args):
        return multi_instance_cli.main(args, base, step_model, engine, ecfg, edges, loads, policies, show_progress)

    runs: list[dict] = []
    ttfts: dict = {}
    P = base.prompt_tokens
    cls_masks = {"short": P <= edges[0], "medium": (P > edges[0]) & (P <= edges[1]), "long": P > edges[1]}
    for load in loads:
        w = base.scale_rate(load) if load != 1.0 else base
        for eng in engine_names:
            for pol in policies:
                if eng == "vllm" and pol == "ewsjf-tuned":
                    print(f"  skip {pol} on vllm (not supported)", file=sys.stderr)
                    continue
                bar = report.ProgressBar(f"{eng}/{pol} @ {load:g}") if show_progress else None
                res = engines.run(eng, w, pol, step_model, engine, ecfg, bar)
                m = summarize(res, edges, args.slo_ttft, args.slo_tpot)
                runs.append({"engine": eng, "policy": pol, "load": load, "metrics": m,
                             "queue_stats": res.info.get("queue_stats")})
                ttft = res.first_token_s - w.arrival_s
                ttfts.setdefault((eng, load), {})[pol] = {k: ttft[v] for k, v in cls_masks.items()}
                if not show_progress:
                    print(f"  {eng}/{pol} @ {load:g}: replay {res.wall_s:.2f} s, {res.steps} steps, "
                          f"mean TTFT {report._f(m['ttft_s']['mean'])} s", file=sys.stderr)

    for load in loads:
        sel = [r for r in runs if r["load"] == load]
        print(f"\n== load {load:g} x trace rate (times in seconds) ==")
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
        print(f"\n== fidelity: sim vs vLLM's real scheduler (target: within 10%) -> {'OK' if ok else 'NOT within 10%'} ==")
        print(report.table(report.fidelity_rows(fd), report.FIDELITY_HEADER))

    doc = {
        "settings": {
            "command": command, "workload": desc, "loads": loads, "policies": policies, "engines": engine_names,
            "step_model": step_model.describe(),
            "engine": {"token_budget": engine.token_budget, "max_running": engine.max_running,
                       "kv_blocks": kv_blocks, "block_size": engine.block_size,
                       "chunked_prefill": engine.chunked_prefill, "prefix_caching": engine.prefix_caching},
            "ewsjf_config": (ecfg or EWSJFConfig()).to_dict(), "class_edges": list(edges),
            "slo": {"ttft_s": args.slo_ttft, "tpot_s": args.slo_tpot},
            "window": list(args.window) if args.window else None, "max_requests": args.max_requests,
        },
        "runs": runs, "claims": cl, "fidelity": fd,
        "wall_s": time.perf_counter() - t_start,
    }
    json_path = args.json or (os.path.join(args.out, "results.json") if args.out else None)
    md_path = args.markdown or (os.path.join(args.out, "report.md") if args.out else None)
    plot_dir = args.plots or (args.out if args.out and not args.no_plots else None)
    written = []
    pngs: list[str] = []
    if plot_dir and not args.no_plots:
        pngs = report.plots(plot_dir, runs, ttfts, edges)
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
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0
