"""Bayesian meta-optimizer of EWSJF's parameters (EWSJF.md section 4), off the hot path.

    space.py      which EWSJFConfig fields are tuned, within which bounds
    reward.py     the reward, term by term
    optimizer.py  GP + expected improvement proposals (scikit-optimize ask/tell), pure and seeded
    state.py      history, best point, last good parameters; JSON save/restore
    recorder.py   the recent traffic, fed by the host
    objective.py  what a trial measures (protocol; a synthetic function objective)
    replay.py     replay mode: candidates replay the recorded window through ewsjf_core.sim
    live.py       live mode: each candidate serves real traffic for a while
    executor.py   where a trial runs (thread or worker process), with a time limit
    context.py    TrialContext: all an objective sees of the serving side
    budget.py     the replay budget: replay work bounded by the traffic recorded
    guard.py      the rollback guard: watch live latency after a swap, undo one that hurt
    runner.py     the Tuner: trials, windows, applying winners, background thread
"""

from ewsjf_core.tuner.context import TrialContext, queue_cost_coefficients
from ewsjf_core.tuner.executor import ProcessExecutor, ThreadExecutor, TrialError, TrialTimeout
from ewsjf_core.tuner.objective import FunctionObjective, Objective
from ewsjf_core.tuner.optimizer import OptimizerSettings, propose
from ewsjf_core.tuner.recorder import WindowRecorder, WindowSnapshot
from ewsjf_core.tuner.reward import RewardTerms, RewardWeights
from ewsjf_core.tuner.guard import RollbackGuard, live_slowdown
from ewsjf_core.tuner.runner import Tuner
from ewsjf_core.tuner.settings import TunerSettings
from ewsjf_core.tuner.space import ParamSpace
from ewsjf_core.tuner.state import TrialRecord, TunerState

__all__ = ["FunctionObjective", "Objective", "OptimizerSettings", "ParamSpace", "ProcessExecutor",
           "RewardTerms", "RewardWeights", "RollbackGuard", "ThreadExecutor", "TrialContext", "TrialError", "TrialRecord", "TrialTimeout",
           "Tuner", "TunerSettings", "TunerState", "WindowRecorder", "WindowSnapshot", "live_slowdown",
           "propose", "queue_cost_coefficients"]
