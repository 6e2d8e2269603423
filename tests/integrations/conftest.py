"""Integration tests run against a real vLLM (CPU build, installed by scripts/setup.sh).

Without vLLM they are skipped, except on CI (CI=true), where a missing vLLM is an install bug and fails.
Marks: `slow` (end-to-end: vllm.LLM, vllm serve) and `vllm` (needs vLLM). Both run by default; select with
`-m slow` / `-m "not slow"`.
"""

import os

import pytest

os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests (seconds to a minute each); run by default")
    config.addinivalue_line("markers", "vllm: needs vLLM installed (scripts/setup.sh installs the CPU build)")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(os.path.join(here, "vllm")):
            item.add_marker(pytest.mark.vllm)


def have_vllm() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:
        return False
    return True
