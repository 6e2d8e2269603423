import os

from hypothesis import HealthCheck, settings

# CI runs on 2 shared cores: keep property tests thorough but bounded. The test command draws the same examples on
# every run (a test that fails once fails every time); HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("dev", max_examples=80, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), max_examples=150)
settings.register_profile("explore", settings.get_profile("dev"), derandomize=False)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
