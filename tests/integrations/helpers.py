"""Helpers shared by the integration tests (vLLM, Ray)."""

import os
import signal
import subprocess

import pytest


def run_group(cmd: list[str], timeout: float, **kw) -> tuple[int, str]:
    """Run cmd in its own process group, bounded in time: (return code, stdout+stderr). On timeout the test
    fails with the output's tail; either way anything the command left running in its group is killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"timed out after {timeout}s:\n{out[-4000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out
