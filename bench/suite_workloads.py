"""The workloads of `ewsjf bench --suite`: real traces (vendored in bench/data) with bounded request counts.

Each entry builds its workload at a base rate; the suite then scales arrivals to the engine's operating
points (see bench/suite_loads.py), so only the shape of the arrival process and the length mix matter here.
Length-only files (ShareGPT, BWB) get drawn arrivals at 1 req/s (so a rate scale is in req/s).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ewsjf_core.sim import Workload

from .traces import arrivals, load_azure, load_lengths, load_mooncake
from .workloads import AZURE_CODE, AZURE_CONV, DATA_DIR

SHAREGPT = os.path.join(DATA_DIR, "sharegpt_bwb_lengths", "sharegpt_llama2_4k.csv")
BWB = os.path.join(DATA_DIR, "sharegpt_bwb_lengths", "bwb_llama2_4k.csv")
MOONCAKE = os.path.join(DATA_DIR, "mooncake_synthetic", "synthetic_trace_1500.jsonl")
BURSTY_CV = 4.0


@dataclass(frozen=True)
class SuiteWorkload:
    name: str
    what: str
    build: Callable[[int, int], Workload]
    """build(n_requests, seed) -> the first n requests at the base rate."""
    model: str = "llama-3-8b"
    gpu: str = "a100-80gb"
    max_requests: int | None = None
    """Cap on --suite-requests (long-prompt traces cost more per request to replay)."""


def _azure(paths: list[str], name: str) -> Callable[[int, int], Workload]:
    def build(n: int, seed: int) -> Workload:
        return load_azure(paths, name=name).head(n)
    return build


def _lengths(path: str, name: str, cv: float = 1.0) -> Callable[[int, int], Workload]:
    def build(n: int, seed: int) -> Workload:
        w = load_lengths(path, rate=1.0, cv=cv, seed=seed, n=n)
        return Workload(w.arrival_s, w.prompt_tokens, w.output_tokens, name=name)
    return build


def _mooncake(n: int, seed: int) -> Workload:
    return load_mooncake(MOONCAKE, name="mooncake").head(n)


def _interactive_batch(n: int, seed: int) -> Workload:
    """Two thirds interactive (ShareGPT) and one third batch (BWB: long outputs), shuffled, Poisson."""
    chat = load_lengths(SHAREGPT, rate=1.0, seed=seed, n=n - n // 3)
    batch = load_lengths(BWB, rate=1.0, seed=seed + 7, n=n // 3)
    p = np.concatenate([chat.prompt_tokens, batch.prompt_tokens])
    o = np.concatenate([chat.output_tokens, batch.output_tokens])
    order = np.random.default_rng(seed + 13).permutation(n)
    return Workload(arrivals(n, 1.0, 1.0, seed), p[order], o[order], name="published")


SUITE: tuple[SuiteWorkload, ...] = (
    SuiteWorkload("azure", "Azure 2023 code + conversation on one time axis (trace arrivals)",
                  _azure([AZURE_CODE, AZURE_CONV], "azure")),
    SuiteWorkload("azure-code", "Azure 2023 code completion: long prompts, short outputs, very bursty",
                  _azure([AZURE_CODE], "azure-code")),
    SuiteWorkload("azure-conv", "Azure 2023 conversation service (trace arrivals)", _azure([AZURE_CONV], "azure-conv")),
    SuiteWorkload("sharegpt", "ShareGPT lengths, Poisson arrivals", _lengths(SHAREGPT, "sharegpt")),
    SuiteWorkload("sharegpt-bursty", f"ShareGPT lengths, Gamma arrivals (CV {BURSTY_CV:g})",
                  _lengths(SHAREGPT, "sharegpt-bursty", BURSTY_CV)),
    SuiteWorkload("bwb", "BWB translation: long outputs (~1.6k tokens), Poisson arrivals", _lengths(BWB, "bwb")),
    SuiteWorkload("mooncake", "Mooncake synthetic: long prompts (mean ~15k), prefix reuse, trace arrivals",
                  _mooncake, max_requests=1500),
    SuiteWorkload("published", "the published setting: Llama-2-13B on A100-80GB, Poisson, 2/3 ShareGPT "
                  "(interactive) + 1/3 BWB (batch)", _interactive_batch, model="llama-2-13b",
                  max_requests=2400),
)
BY_NAME = {w.name: w for w in SUITE}
