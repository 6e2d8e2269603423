"""Ray tests. The policy, tracker and parsing tests need no Ray. `ray_serve` tests start Ray Serve with real
vLLM CPU engines (minutes on a 2-core machine): they are deselected unless asked for with `-m ray_serve`:

    .venv/bin/python -m pytest -p no:cacheprovider -m ray_serve tests/integrations/ray
"""

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "ray_serve: Ray Serve + real vLLM replicas (minutes); run with -m ray_serve")


def pytest_collection_modifyitems(config, items):
    if "ray_serve" in (config.getoption("-m") or ""):
        return
    keep = [it for it in items if it.get_closest_marker("ray_serve") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if it.get_closest_marker("ray_serve")])
        items[:] = keep


def have(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True
