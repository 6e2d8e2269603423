"""TunerSettings.engine: the replay's engine is checked when the settings are built, not at the first trial."""

import pytest

from ewsjf_core.tuner import TunerSettings


@pytest.mark.parametrize("engine, message", [
    ({"token_budgte": 4096}, "no field\\(s\\) token_budgte"),
    ({"max_running": 0}, "max_running must be an integer >= 1"),
    ({"token_budget": 64, "max_running": 128}, "token_budget \\(64\\) must be >= max_running"),
    (["token_budget"], "must be a mapping"),
])
def test_an_engine_the_replay_could_not_build_is_refused_naming_it(engine, message):
    with pytest.raises(ValueError, match=message):
        TunerSettings(engine=engine)
    with pytest.raises(ValueError, match=message):
        TunerSettings().replace(engine=engine)


def test_a_valid_engine_is_kept_as_given():
    engine = {"token_budget": 4096, "max_running": 64, "kv_blocks": 900, "waiting_head_share": 0.25}
    assert TunerSettings(engine=engine).engine == engine
    assert TunerSettings.from_mapping({"engine": engine}).engine == engine
