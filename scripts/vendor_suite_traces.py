"""Regenerate the suite's vendored trace subsamples in bench/data/ from the full public files.

    python scripts/vendor_suite_traces.py /path/to/shared/traces

Deterministic: ShareGPT and BWB keep N_LENGTH_ROWS rows drawn without replacement with a fixed seed (only
the two columns the loader reads); Mooncake keeps its first N_MOONCAKE_ROWS lines unchanged (arrival order
and prefix-block ids intact, so the reuse between those requests is preserved).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys

import numpy as np

N_LENGTH_ROWS = 4000
N_MOONCAKE_ROWS = 1500
SEED = 20231116
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench", "data")


def subsample_lengths(src: str, dst: str) -> None:
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    idx = np.sort(np.random.default_rng(SEED).choice(len(rows), N_LENGTH_ROWS, replace=False))
    with open(dst, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["num_prefill_tokens", "num_decode_tokens"])
        for i in idx.tolist():
            w.writerow([rows[i]["num_prefill_tokens"], rows[i]["num_decode_tokens"]])


def main(traces: str) -> int:
    lengths = os.path.join(DATA, "sharegpt_bwb_lengths")
    mooncake = os.path.join(DATA, "mooncake_synthetic")
    os.makedirs(lengths, exist_ok=True)
    os.makedirs(mooncake, exist_ok=True)
    src = os.path.join(traces, "sharegpt_bwb_lengths")
    subsample_lengths(os.path.join(src, "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"),
                      os.path.join(lengths, "sharegpt_llama2_4k.csv"))
    subsample_lengths(os.path.join(src, "bwb_stats_llama2_tokenizer_filtered_v2.csv"),
                      os.path.join(lengths, "bwb_llama2_4k.csv"))
    shutil.copyfile(os.path.join(src, "LICENSE"), os.path.join(lengths, "LICENSE"))
    msrc = os.path.join(traces, "mooncake_synthetic")
    with open(os.path.join(msrc, "synthetic_trace.jsonl")) as f, \
            open(os.path.join(mooncake, "synthetic_trace_1500.jsonl"), "w") as g:
        for k, line in enumerate(f):
            if k >= N_MOONCAKE_ROWS:
                break
            g.write(line)
    shutil.copyfile(os.path.join(msrc, "LICENSE"), os.path.join(mooncake, "LICENSE"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/traces"))
