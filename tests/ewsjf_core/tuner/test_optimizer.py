"""The GP + EI proposals: convergence on a known objective, determinism under a seed."""

import numpy as np
import pytest

from ewsjf_core.tuner import FunctionObjective, OptimizerSettings, ThreadExecutor, Tuner, TunerSettings, propose
from ewsjf_core.tuner.optimizer import ACQ_FUNCS

from .helpers import OPTIMUM, SPACE, FakeQueue, poor_config, quadratic


def run(seed: int, n: int) -> tuple[list, list]:
    xs, ys = [], []
    for _ in range(n):
        x = propose(SPACE, seed, xs, ys)
        xs.append(x)
        ys.append(quadratic(SPACE.as_mapping(x)))
    return xs, ys


def _random_design_best(seed: int, n: int) -> float:
    rng = np.random.default_rng(seed)
    lo = np.array([b[0] for b in SPACE.bounds])
    hi = np.array([b[1] for b in SPACE.bounds])
    return max(quadratic(SPACE.as_mapping(lo + rng.random(5) * (hi - lo))) for _ in range(n))


def test_converges_on_known_quadratic():
    # 5 dimensions, 25 evaluations, five seeds. One seed's run is not a stable figure: the GP's fits go through BLAS,
    # whose kernels differ between CPUs, and a proposal that moves by a rounding moves every later one (seed 0
    # reached above -0.06 on one machine and -0.10 on another, same packages). The median over seeds is what the
    # surrogate earns. At 20 evaluations the runs were still converging and the median sat at the threshold (above
    # it on earlier machines, -0.104 on a 2026-12-02 one); at 25 it is -0.005 there (seeds 0-8: eight of nine within
    # 0.08 of the optimum).
    # A random design of this size reaches about -0.2 (median over seeds); the GP must get within 0.1 of the optimum's
    # value 0 (every coordinate within about 14% of its range on average) and beat the random design's median.
    runs = [run(seed=seed, n=25) for seed in range(5)]
    bests = [max(ys) for _, ys in runs]
    assert np.median(bests) > -0.1, bests
    # ...and the best point found really is near the known optimum.
    xs, ys = runs[int(np.argmax(bests))]
    best_x = xs[int(np.argmax(ys))]
    for n, v, (lo, hi) in zip(SPACE.names, best_x, SPACE.bounds):
        assert abs(v - OPTIMUM[n]) / (hi - lo) < 0.25, (n, v)
    # A space-filling design of the same size does worse: the surrogate is doing the work.
    assert np.median(bests) > np.median([_random_design_best(seed, 25) for seed in range(5)])


def test_same_seed_same_proposals_and_seed_points_first():
    seeds = [SPACE.clip([1e-3, 1.0, 0.0, 0.1, 5.0])]
    a, b = [], []
    for out in (a, b):
        xs, ys = [], []
        for _ in range(6):
            x = propose(SPACE, 7, xs, ys, seed_points=seeds, settings=OptimizerSettings(n_initial_points=3))
            xs.append(x)
            ys.append(quadratic(SPACE.as_mapping(x)))
        out.extend(xs)
    assert a == b
    assert a[0] == seeds[0]
    other = propose(SPACE, 8, [], [], settings=OptimizerSettings(n_initial_points=3))
    assert other != propose(SPACE, 7, [], [], settings=OptimizerSettings(n_initial_points=3))


def test_tuner_determinism_under_seed():
    def history(seed):
        q = FakeQueue(poor_config())
        t = Tuner(q, FunctionObjective(quadratic, SPACE.names),
                  TunerSettings(seed=seed, trials_per_window=6, executor="thread"), executor=ThreadExecutor())
        for _ in range(6):
            t.run_trial()
        return [(r.point, r.reward) for r in t.state.history], q.config

    h1, c1 = history(3)
    h2, c2 = history(3)
    assert h1 == h2 and c1 == c2
    assert history(4)[0] != h1


def test_memoised_latin_hypercube_proposes_what_skopts_own_does(monkeypatch):
    """Before the GP phase each proposal of a window reuses one Latin hypercube design: the points must be
    exactly those skopt's "lhs" generator gives (same seed, same history), drawn or reused."""
    from ewsjf_core.tuner import optimizer

    rng = np.random.default_rng(1)
    xs = [SPACE.clip(rng.uniform(*np.array(SPACE.bounds).T)) for _ in range(3)]
    ys = [float(v) for v in rng.normal(size=3)]
    optimizer._LHS_DESIGNS.clear()
    memo = [propose(SPACE, 5, xs[:n], ys[:n]) for n in range(3)]
    assert len(optimizer._LHS_DESIGNS) == 1   # one design served all three proposals
    again = [propose(SPACE, 5, xs[:n], ys[:n]) for n in range(3)]
    monkeypatch.setattr(optimizer, "_lhs_generator", lambda: "lhs")
    plain = [propose(SPACE, 5, xs[:n], ys[:n]) for n in range(3)]
    assert memo == again == plain


def test_every_acquisition_function_the_settings_accept_proposes_inside_the_space():
    for acq in ACQ_FUNCS:
        settings = OptimizerSettings(n_initial_points=2, acq_func=acq, n_points=50, n_restarts_optimizer=1)
        xs, ys = [], []
        for _ in range(4):   # past the initial points: the GP and its acquisition run
            x = propose(SPACE, 0, xs, ys, settings=settings)
            assert all(lo <= v <= hi for v, (lo, hi) in zip(x, SPACE.bounds)), acq
            xs.append(x)
            ys.append(quadratic(SPACE.as_mapping(x)))


@pytest.mark.parametrize("field, value", [
    ("n_restarts_optimizer", 0),     # accepted; skopt then failed every GP proposal (argmin of an empty sequence)
    ("n_initial_points", 1_001),     # 10,000 accepted; its design took ~220 s to draw, past every trial timeout
])
def test_settings_no_proposal_could_use_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"OptimizerSettings.{field}"):
        OptimizerSettings(**{field: value})


def test_the_ends_of_every_optimizer_domain_propose_inside_the_space():
    low = OptimizerSettings(n_initial_points=1, xi=0.0, n_points=1, n_restarts_optimizer=1)
    xs, ys = [], []
    for _ in range(3):   # past the one initial point: the GP and its acquisition run
        x = propose(SPACE, 0, xs, ys, settings=low)
        assert all(lo <= v <= hi for v, (lo, hi) in zip(x, SPACE.bounds))
        xs.append(x)
        ys.append(quadratic(SPACE.as_mapping(x)))
    x = propose(SPACE, 0, [], [], settings=OptimizerSettings(n_initial_points=1_000))   # its design is drawn
    assert all(lo <= v <= hi for v, (lo, hi) in zip(x, SPACE.bounds))
