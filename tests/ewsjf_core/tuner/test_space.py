import pytest

from ewsjf_core.config import THETA_FIELDS, EWSJFConfig
from ewsjf_core.tuner import ParamSpace


def test_space_is_theta_plus_optional_fields_named_in_bounds():
    assert ParamSpace.from_config(EWSJFConfig()).names == THETA_FIELDS
    tb = dict(EWSJFConfig().tune_bounds, w_base=(0.5, 2.0), max_queues=(2, 10))
    sp = ParamSpace.from_config(EWSJFConfig(tune_bounds=tb))
    assert sp.names == THETA_FIELDS + ("w_base", "max_queues")
    assert sp.bounds[-1] == (2.0, 10.0)


def test_missing_theta_bounds_raise():
    tb = dict(EWSJFConfig().tune_bounds)
    del tb["alpha"]
    with pytest.raises(ValueError, match="alpha"):
        ParamSpace.from_config(EWSJFConfig(tune_bounds=tb))


def test_clip_and_to_config_round_trip():
    tb = dict(EWSJFConfig().tune_bounds, max_queues=(2, 10))
    base = EWSJFConfig(tune_bounds=tb)
    sp = ParamSpace.from_config(base)
    p = sp.clip([1.0, -1.0, 5e-4, 0.5, 3.0, 2.6])
    assert p == [5e-3, 0.0, 5e-4, 0.5, 3.0, 3]
    cfg = sp.to_config(base, [1e-3, 2.0, 0.0, 0.2, 4.0, 2])
    assert (cfg.a_u, cfg.b_u, cfg.alpha, cfg.max_queues) == (1e-3, 2.0, 4.0, 2)
    assert len(cfg.initial_edges) <= 2          # trimmed so the config stays valid
    assert sp.from_config_values(cfg) == sp.clip([1e-3, 2.0, 0.0, 0.2, 4.0, 2])
    assert sp.same_as(sp.to_dict())
