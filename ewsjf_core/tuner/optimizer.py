"""Bayesian proposal of the next candidate: scikit-optimize `Optimizer` (Gaussian process surrogate,
expected improvement), driven ask/tell.

`propose` is a pure function of (space, seed, the points already scored with their rewards, the fixed
seed points): it builds a fresh Optimizer seeded from (seed, number of points told), tells it the history
and asks once. Hence the tuner is deterministic under a seed, a restart from the saved JSON history
proposes exactly what the uninterrupted run would have, and the whole step can run in a worker process
(only plain lists cross the boundary).

Order of proposals: first the fixed `seed_points` (the parameters in force, then the best points of
earlier windows), then a space-filling design (Latin hypercube) until `n_initial_points` points are
scored, then GP + EI. skopt minimises, so it is told -reward.

Cost: a proposal fits a GP to a handful of points. Its matrices are tiny, so BLAS threads only contend
(measured 2.4x slower with 2 OpenBLAS threads than with one on a 2-core machine) and would take cores
from the engine: proposals run with one BLAS thread. In the GP phase the optimizer's Latin hypercube is
never used, so a fresh optimizer there skips drawing it (it cost as much as the GP fit). Before it, every
proposal of a window asks for the same design (it depends on the seed alone): each design is drawn once per
process (`_lhs_generator`) and reused, the same points at a fraction of the cost.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ewsjf_core.field_checks import FloatBounds, check_choice, check_float, check_int
from ewsjf_core.tuner.space import ParamSpace


ACQ_FUNCS = ("EI", "PI", "LCB", "gp_hedge")
"""skopt's acquisition functions for a GP over one objective (the *ps variants need a time objective)."""


@dataclass(frozen=True)
class OptimizerSettings:
    n_initial_points: int = 4
    """Points scored before the GP takes over (seed points count towards it). At most 1,000: their Latin
    hypercube design is drawn in one proposal, ~3 s for 1,000 points and ~220 s for 10,000 (past the trial
    timeout, so no proposal was ever made)."""
    acq_func: str = "EI"
    xi: float = 0.01
    """Expected-improvement exploration margin (in reward units)."""
    n_points: int = 500
    """Random points the acquisition is evaluated on before L-BFGS polishing (CPU bound: keep modest)."""
    n_restarts_optimizer: int = 3
    """L-BFGS starts polishing the acquisition; at least one (with none skopt fails every GP proposal)."""

    def __post_init__(self) -> None:
        """Every field's type and bounds (ValueError naming it), so that no trial fails inside skopt."""
        check_int(self, "n_initial_points", 1, 1_000)
        check_choice(self, "acq_func", ACQ_FUNCS)
        check_float(self, "xi", FloatBounds(0.0, 1e9))
        check_int(self, "n_points", 1, 1_000_000)
        check_int(self, "n_restarts_optimizer", 1, 1_000)


def _seed_for(seed: int, n_told: int) -> int:
    # Distinct, reproducible stream per step; fits numpy's 32-bit seed range.
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(n_told)]).generate_state(1)[0])


def propose(space: ParamSpace, seed: int, xs: Sequence[Sequence[float]], rewards: Sequence[float],
            seed_points: Sequence[Sequence[float]] = (), settings: OptimizerSettings = OptimizerSettings()
            ) -> list[float]:
    """The next point to score, given the points `xs` already scored with `rewards` (same order)."""
    if len(xs) != len(rewards):
        raise ValueError(f"propose: {len(xs)} points but {len(rewards)} rewards")
    told = [space.clip(x) for x in xs]
    # Fixed seed points first, skipping any already scored.
    for p in seed_points:
        p = space.clip(p)
        if not any(np.allclose(p, t, rtol=1e-9, atol=0.0) for t in told):
            return p
    from threadpoolctl import threadpool_limits  # with scikit-learn (skopt's dependency)

    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _ask(space, seed, told, [-float(r) for r in rewards], settings)


def _ask(space: ParamSpace, seed: int, told: list, ys: list[float], settings: OptimizerSettings) -> list[float]:
    from skopt import Optimizer  # heavy import, only where a proposal is made

    gp_phase = len(told) >= settings.n_initial_points
    # The Latin hypercube design is drawn from `seed` alone, so its points do not depend on the history.
    # In the GP phase it is never asked for: a random initial generator (not drawn) stands in.
    opt = Optimizer(space.dimensions(), base_estimator="GP", acq_func=settings.acq_func,
                    n_initial_points=settings.n_initial_points,
                    initial_point_generator="random" if gp_phase else _lhs_generator(),
                    acq_optimizer="lbfgs", random_state=int(seed) & 0xFFFFFFFF,
                    acq_func_kwargs={"xi": settings.xi},
                    acq_optimizer_kwargs={"n_points": settings.n_points,
                                          "n_restarts_optimizer": settings.n_restarts_optimizer,
                                          "n_jobs": 1})
    if gp_phase:
        # Reseed per step so consecutive asks do not replay the same random stream.
        opt.rng = np.random.RandomState(_seed_for(seed, len(told)))
        opt.base_estimator_.random_state = opt.rng.randint(0, np.iinfo(np.int32).max)
    if told:
        opt.tell([list(t) for t in told], ys)
    return space.clip(opt.ask())


_LHS_DESIGNS: dict[tuple, list] = {}
"""Latin hypercube designs drawn in this process: (dimensions, samples, random state) -> points."""
_LHS_DESIGNS_MAX = 256


def _lhs_generator():
    """skopt's "lhs" generator (classic, maximin over 1000 candidate designs) with its designs memoised: a
    design is a pure function of the dimensions, the sample count and the integer random state the
    Optimizer draws from its seed, and drawing one costs more than a GP fit."""
    from skopt.sampler import Lhs

    class MemoLhs(Lhs):
        def generate(self, dimensions, n_samples, random_state=None):
            if not isinstance(random_state, (int, np.integer)):
                return super().generate(dimensions, n_samples, random_state)
            key = (tuple(repr(d) for d in dimensions), tuple(getattr(d, "name", None) for d in dimensions),
                   int(n_samples), int(random_state), self.lhs_type, self.criterion, self.iterations)
            design = _LHS_DESIGNS.get(key)
            if design is None:
                design = super().generate(dimensions, n_samples, random_state)
                if len(_LHS_DESIGNS) >= _LHS_DESIGNS_MAX:
                    _LHS_DESIGNS.clear()
                _LHS_DESIGNS[key] = design
            return [list(p) for p in design]

    return MemoLhs()
