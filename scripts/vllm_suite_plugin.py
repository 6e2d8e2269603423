"""pytest plugin for scripts/run_vllm_scheduler_tests.sh: vLLM's own scheduler tests with EWSJF swapped in.

Loaded with `-p vllm_suite_plugin` while pytest runs vLLM's tests/v1/core/test_scheduler.py from a scratch
folder outside the project. With EWSJF_SUITE_SCHEDULER=ewsjf (default) it replaces vLLM's `Scheduler` and
`AsyncScheduler` (the names the tests and their `create_scheduler` helper import) by EWSJF subclasses in an
FCFS-equivalent configuration: one queue over all lengths, constant score (no urgency or fairness term), no
starvation bound, no bubbles, no re-partitioning. With EWSJF_SUITE_SCHEDULER=vllm nothing is swapped
(the baseline: vLLM's own scheduler on the same machine).

Adaptations to a CPU-only, offline machine, never to an assertion: a test that fails because a model's
files are not on this machine (vLLM's ModelConfig cannot resolve it offline) is reported as skipped, with
the reason; the script provides the one model config the suite's default helper needs.
"""

from __future__ import annotations

import os
import re

import pytest

MODE = os.environ.get("EWSJF_SUITE_SCHEDULER", "ewsjf")
# Messages of vLLM / huggingface_hub when a model's files are neither cached nor downloadable.
_DOWNLOAD_ERRORS = ("Invalid repository ID or local directory", "offline mode is enabled",
                    "LocalEntryNotFoundError", "We couldn't connect to", "Cannot find the requested files")


def fcfs_equivalent_config():
    from ewsjf.bindings import EWSJFConfig

    return EWSJFConfig(max_queues=1, initial_edges=(1.0,), a_u=0.0, b_u=0.0, a_f=0.0, b_f=0.0,
                       max_wait=float("inf"), max_bubbles=0, repartition_every=0)


def _swap_schedulers() -> None:
    from vllm.v1.core.sched import async_scheduler, scheduler

    from ewsjf.integrations.vllm.scheduler import AsyncEWSJFScheduler, EWSJFScheduler

    options = {"log_interval_s": 0.0, "metrics_interval_s": 0.0}

    def fcfs_equivalent(base: type) -> type:
        def init(self, *args, **kwargs):
            kwargs.setdefault("ewsjf_config", fcfs_equivalent_config())
            kwargs.setdefault("ewsjf_options", options)
            base.__init__(self, *args, **kwargs)

        # Named like vLLM's classes (some tests compare names); vLLM subclasses (DiffusionScheduler) build on it.
        name = "AsyncScheduler" if issubclass(base, AsyncEWSJFScheduler) else "Scheduler"
        return type(name, (base,), {"__init__": init, "auto_async": False})

    sync_cls, async_cls = fcfs_equivalent(EWSJFScheduler), fcfs_equivalent(AsyncEWSJFScheduler)
    scheduler.Scheduler = sync_cls
    async_scheduler.AsyncScheduler = async_cls


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("cpu_test", "skip_global_cleanup", "core_model", "slow_test"):
        config.addinivalue_line("markers", f"{marker}: vLLM test marker")
    os.environ.pop("EWSJF_CONFIG", None)  # the FCFS-equivalent configuration, whatever the shell has
    if MODE == "ewsjf":
        _swap_schedulers()
    elif MODE != "vllm":
        raise pytest.UsageError(f"EWSJF_SUITE_SCHEDULER must be 'ewsjf' or 'vllm', got {MODE!r}")


def pytest_report_header(config: pytest.Config) -> str:
    return f"scheduler under test: {'EWSJF (FCFS-equivalent config)' if MODE == 'ewsjf' else 'vLLM'}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        text = f"{call.excinfo.typename}: {call.excinfo.value}"
        if any(marker in text for marker in _DOWNLOAD_ERRORS):
            report.outcome = "skipped"
            model = re.search(r"'([\w.-]+/[\w.-]+)'", text)
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: needs a model download ({model.group(1) if model else 'offline'})")


@pytest.fixture()
def caplog_vllm(caplog):
    """vLLM's log records through pytest's caplog (vLLM's top-level conftest, skipped here, provides this
    fixture): the "vllm" logger does not propagate to the root logger by default."""
    import logging

    vllm_logger = logging.getLogger("vllm")
    propagate = vllm_logger.propagate
    vllm_logger.propagate = True
    try:
        with caplog.at_level(logging.INFO):
            yield caplog
    finally:
        vllm_logger.propagate = propagate
