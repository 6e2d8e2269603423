"""Fixtures shared by the bench tests."""

import pytest


@pytest.fixture
def cluster_runs(monkeypatch) -> list:
    """(ClusterConfig, EngineConfig) of every multi-instance simulation the test's commands run, in order (the
    real simulation runs too)."""
    from ewsjf.bench import multi_instance

    seen = []
    real = multi_instance.simulate_cluster

    def recording(workload, step_model, engine, cfg, *args, **kwargs):
        seen.append((cfg, engine))
        return real(workload, step_model, engine, cfg, *args, **kwargs)

    monkeypatch.setattr(multi_instance, "simulate_cluster", recording)
    return seen
