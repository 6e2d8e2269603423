"""Terminal tables of a calibration: the fitted device parameters and the residuals per GPU (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .fit_checks import Residuals
from .gpu_spec import GPUSpec


def print_report(key: str, g: GPUSpec, r: Residuals, rows: bool = False, console: Console | None = None) -> None:
    con = console or _stdout_console()
    t = Table(title=f"{key}: {g.calibration}", title_justify="left")
    t.add_column("device parameter")
    t.add_column("value", justify="right")
    for name, value in (("GEMM plateau TFLOP/s", g.gemm_flops / 1e12),
                        ("GEMM operand TB/s", g.gemm_bandwidth / 1e12),
                        ("GEMM fixed us", g.gemm_kernel_s * 1e6), ("GEMM knee p", g.gemm_smooth_p),
                        ("GEMM droop PFLOP", g.gemm_droop_flops / 1e15),
                        ("element-wise TB/s", g.elem_bandwidth / 1e12),
                        ("element-wise fixed us", g.elem_kernel_s * 1e6),
                        ("attention causal TFLOP/s", g.attn_flops / 1e12),
                        ("attention vs cached TFLOP/s", g.attn_chunk_flops / 1e12),
                        ("attention fixed us", g.attn_kernel_s * 1e6),
                        ("attention per row x head_dim ps", g.attn_row_s * 1e12),
                        ("decode attention TB/s", g.decode_bandwidth / 1e12),
                        ("decode fixed us", g.decode_kernel_s * 1e6),
                        ("decode per seq x KV head ns", g.decode_seq_s * 1e9),
                        ("eager CPU us per layer", g.eager_layer_s * 1e6)):
        t.add_row(name, f"{value:.4g}")
    for op, fixed, mult in g.torch_elementwise:
        t.add_row(f"torch {op}: fixed us, x bytes", f"{fixed * 1e6:.3g}, {mult:.3g}")
    con.print(t)
    s = Table(title=f"{key}: residuals (model / measured - 1)", title_justify="left")
    s.add_column("what")
    s.add_column("value", justify="right")
    for k, v in r.summary.items():
        s.add_row(k, f"{v:.1%}" if isinstance(v, float) else str(v))
    con.print(s)
    if rows and r.steps:
        st = Table(title=f"{key}: whole forward steps", title_justify="left")
        for c in ("scenario", "prefill (new, cached)", "decode (seqs x context)", "graph", "measured ms", "model ms",
                  "err"):
            st.add_column(c)
        for s_row, pred, e, cpu in r.steps:
            st.add_row(s_row.scenario, str(list(s_row.prefill)), f"{s_row.decode_seqs} x {s_row.decode_context}",
                       "graph" if s_row.graph else ("eager, CPU bound" if cpu else "eager"),
                       f"{s_row.seconds * 1e3:.2f}", f"{pred * 1e3:.2f}", f"{e:+.1%}")
        con.print(st)


def _stdout_console() -> Console:
    """On a terminal, its width; piped into a file, wide enough that no cell is cut or wrapped (rich's 80 columns
    cut the scenario names and split the prefill lists)."""
    con = Console()
    return con if con.is_terminal else Console(width=100_000)
