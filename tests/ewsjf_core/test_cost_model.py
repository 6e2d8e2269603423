import numpy as np
import pytest

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel, prefill_cost, prefill_cost_kernel
from ewsjf_core.scoring import pack_params
from ewsjf_core.scoring import prefill_cost as scoring_prefill_cost


def test_prefill_cost_one_formula_floored_for_scalars_arrays_and_kernels():
    b = np.array([0.0, 10.0, 1000.0, 5e4])
    want = np.maximum(1e-3 + 2e-4 * b + 3e-8 * b * b, 0.05)
    assert prefill_cost(b, 1e-3, 2e-4, 3e-8, 0.05).tolist() == want.tolist()
    assert prefill_cost(np.array([0.0, 1000.0]), 0.0, 0.0, 0.0, 1e-3).tolist() == [1e-3, 1e-3]
    assert prefill_cost(1000.0, 1.0, 1e-3, 1e-6) == pytest.approx(3.0)
    assert prefill_cost(float("nan"), 1.0, 1.0, 1.0, 0.5) == 0.5   # NaN cost: the floor, as a comparison gives
    params = pack_params(EWSJFConfig(min_prefill_cost=0.05), 1e-3, 2e-4, 3e-8)
    for x, w in zip(b.tolist(), want.tolist()):
        assert prefill_cost_kernel(x, 1e-3, 2e-4, 3e-8, 0.05) == w
        assert scoring_prefill_cost(x, params) == w


def test_prior_before_feedback():
    cfg = EWSJFConfig(prior_c0=0.004, prior_c1=2e-4, prior_c2=0.0)
    m = PrefillCostModel(cfg)
    assert m.cost(1000) == pytest.approx(0.004 + 0.2)


def test_fits_the_engine_from_noisy_steps():
    rng = np.random.default_rng(1)
    m = PrefillCostModel(EWSJFConfig())
    true = (0.008, 6e-5, 4e-9, 3e-5)
    for _ in range(3000):
        p = int(rng.integers(0, 8192))
        d = int(rng.integers(0, 256))
        y = true[0] + true[1] * p + true[2] * p * p + true[3] * d
        m.observe(y * (1 + rng.normal(0, 0.02)), p, d)
    for tokens in (128, 1024, 4096, 8000):
        assert m.cost(tokens) == pytest.approx(true[0] + true[1] * tokens + true[2] * tokens ** 2, rel=0.08)


def test_follows_a_change_of_hardware():
    m = PrefillCostModel(EWSJFConfig(cost_forgetting=0.98))
    for slope in (1e-4, 3e-5):
        for p in range(0, 8000, 40):
            m.observe(0.005 + slope * p, p, 64)
    assert m.cost(4000) == pytest.approx(0.005 + 3e-5 * 4000, rel=0.05)


def test_coefficients_never_negative():
    m = PrefillCostModel(EWSJFConfig())
    for p in range(0, 4000, 100):
        m.observe(1e-3, p, 0)  # flat cost: the fit may dip below zero, the reading must not
    assert all(c >= 0 for c in m.coefficients)
