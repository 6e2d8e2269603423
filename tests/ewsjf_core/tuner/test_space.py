import pytest

from ewsjf_core.config import THETA_FIELDS, EWSJFConfig
from ewsjf_core.tuner import FunctionObjective, ParamSpace, ThreadExecutor, Tuner, TunerSettings

from .helpers import SPACE, FakeQueue, quadratic


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


def test_widest_tune_bounds_only_yield_configs_that_run():
    """Issue 10, defect 3: the tuner applied max_queues = 8e11 (MemoryError in the engine thread). Bounds
    outside a field's own bounds are refused; every corner of the widest legal ones runs."""
    import itertools

    from ewsjf.bindings import EWSJFQueue
    from ewsjf_core.config import field_bounds

    with pytest.raises(ValueError, match="max_queues"):
        EWSJFConfig(tune_bounds=dict(EWSJFConfig().tune_bounds, max_queues=(2, 8e11)))
    names = ("a_u", "b_u", "a_f", "b_f", "alpha", "w_base", "max_queues")
    widest = {n: field_bounds(n) for n in names}
    sp = ParamSpace.from_config(EWSJFConfig(tune_bounds=widest))
    for corner in itertools.product(*sp.bounds):
        q = EWSJFQueue(sp.to_config(EWSJFConfig(), list(corner)), clock=lambda: 5.0)
        for i in range(40):
            q.add(i, 10 + 97 * i, arrival_time=0.1 * i)
        q.begin_step()
        q.repartition()
        assert sorted(q.pop() for _ in range(40)) == list(range(40))


def test_tune_bounds_a_host_sets_later_bound_the_next_window():
    """The space was built once, when the tuner started: a host set_config that narrowed alpha and added
    w_base was silently ignored, and the next windows proposed alpha up to 10 and never moved w_base."""
    queue = FakeQueue()
    settings = TunerSettings(trials_per_window=3, executor="thread", retune_every_s=0.0)
    tuner = Tuner(queue, FunctionObjective(quadratic, SPACE.names), settings, executor=ThreadExecutor())
    for _ in range(3):
        tuner.run_trial()                     # one whole window in the starting space
    bounds = dict(queue.config.tune_bounds, alpha=(3.0, 3.5), w_base=(1.0, 2.0))
    queue.set_config(queue.config.replace(tune_bounds=bounds))
    points = [tuner.run_trial().point for _ in range(6)]
    assert tuner.space == ParamSpace.from_config(queue.config)
    assert tuner.state.space == tuner.space.to_dict()
    names = THETA_FIELDS + ("w_base",)
    for point in points:
        values = dict(zip(names, point, strict=True))
        assert 3.0 <= values["alpha"] <= 3.5 and 1.0 <= values["w_base"] <= 2.0
    assert 3.0 <= queue.config.alpha <= 3.5 and 1.0 <= queue.config.w_base <= 2.0
