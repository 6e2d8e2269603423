import math

import pytest

from ewsjf_core.config import EWSJFConfig


@pytest.mark.parametrize("field,value", [
    ("alpha", float("nan")), ("alpha", 0.5), ("max_queues", 0), ("max_queues", 2.5), ("window", True),
    ("band_up", 0.9), ("band_down", 1.5), ("max_wait", -1.0), ("max_wait", float("nan")),
    ("cost_forgetting", 0.0), ("a_u", -1.0), ("b_f", math.inf), ("min_prefill_cost", 0.0),
    ("late_bypass_share", -0.5), ("late_bypass_share", float("nan")),
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


# ----- issue 10, defect 3: configs accepted that cannot run -----
@pytest.mark.parametrize("field,value", [
    ("min_size", 2 ** 64), ("bubble_empty_rounds", 2 ** 64), ("k0", 2 ** 63), ("max_queues", 10 ** 12),
    ("window", 10 ** 12), ("max_bubbles", 10 ** 12), ("order_chunk", 10 ** 9), ("repartition_every", 2 ** 63),
    ("min_partition_samples", 2 ** 70), ("a_u", 1e300), ("alpha", 10 ** 400), ("max_wait", 1e300),
    ("min_prefill_cost", 1e-300), ("prior_c1", 1e200), ("band_up", 1e300), ("bubble_width", math.inf),
])
def test_upper_bounds_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"EWSJFConfig.{field} "):
        EWSJFConfig(**{field: value})


def test_cross_field_and_edges_bounded():
    with pytest.raises(ValueError, match="min_partition_samples"):
        EWSJFConfig(window=100, min_partition_samples=200)
    with pytest.raises(ValueError, match="initial_edges"):
        EWSJFConfig(initial_edges=(1.0, 2.0 ** 60))


@pytest.mark.parametrize("name,bounds", [
    ("max_queues", (2, 8e11)), ("alpha", (0.5, 3.0)), ("a_u", (0.0, 1e300)), ("w_base", (-1.0, 1.0)),
    ("b_u", (0.0, 10 ** 400)),
])
def test_tune_bounds_within_the_field_bounds(name, bounds):
    with pytest.raises(ValueError, match=f"tune_bounds\\[{name!r}\\]"):
        EWSJFConfig(tune_bounds=dict(EWSJFConfig().tune_bounds, **{name: bounds}))


def test_validate_catches_a_config_altered_after_construction():
    cfg = EWSJFConfig()
    object.__setattr__(cfg, "max_queues", 10 ** 12)
    with pytest.raises(ValueError, match="max_queues"):
        cfg.validate()
