import math

import pytest

from ewsjf_core.config import EWSJFConfig


@pytest.mark.parametrize("field,value", [
    ("alpha", float("nan")), ("alpha", 0.5), ("max_queues", 0), ("max_queues", 2.5), ("window", True),
    ("band_up", 0.9), ("band_down", 1.5), ("max_wait", -1.0), ("max_wait", float("nan")),
    ("cost_forgetting", 0.0), ("a_u", -1.0), ("b_f", math.inf), ("min_prefill_cost", 0.0),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EWSJFConfig(**{field: value})


def test_replace_and_mapping_validate():
    cfg = EWSJFConfig()
    assert cfg.replace(alpha=7).alpha == 7.0
    with pytest.raises(TypeError, match="bogus"):
        cfg.replace(bogus=1)
    with pytest.raises(ValueError, match="initial_edges"):
        EWSJFConfig.from_mapping({"initial_edges": [1, 1]})
    with pytest.raises(ValueError, match="initial_edges has 3 queues"):
        EWSJFConfig(max_queues=2)
    assert EWSJFConfig.from_mapping(cfg.to_dict()) == cfg
    assert EWSJFConfig(max_wait=math.inf).max_wait == math.inf


def test_tune_bounds_validated():
    with pytest.raises(ValueError, match="tune_bounds"):
        EWSJFConfig(tune_bounds={"a_u": (1.0, 0.0)})
    with pytest.raises(ValueError, match="nope"):
        EWSJFConfig(tune_bounds={"nope": (0.0, 1.0)})
