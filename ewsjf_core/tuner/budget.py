"""The replay budget: the tuner's replay work bounded by the traffic it tunes.

A replay trial costs about what the host spends on the same number of requests (the same sim or queue
code, one request's arrival, admission and finish each), so the budget counts requests on both sides: the
requests every replay simulated (trials and the rollback guard's replays) against the requests the host
recorded. The first window is free, and so is all it replayed (its trials and the guard's replay of its
swap): the parameters in force were tuned for no traffic yet. After it, a window opens only if its trials
fit: what was replayed since the first window plus trials_per_window times this window's replay size,
within `per_arrival` times the arrivals recorded. Later windows thus wait for the traffic that pays for
them, and the replay work of a run is at most its first window plus `per_arrival` times the run's
requests, whatever the trace's length or load (a per-step or per-virtual-second cadence would not be: an
overloaded trace has fewer, larger steps, and the windows' trials replay the backlog).

A window refused for its size is not looked at again (no recorder snapshots while waiting) until the
arrivals would cover that size.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReplayBudget:
    per_arrival: float | None = None
    """Requests replayed per request recorded (None: unbounded)."""
    replayed: int = 0
    """Requests simulated by replays so far (trials and guard replays, the first window's included)."""
    refused: int = 0
    """Windows refused so far for lack of budget (visibility)."""
    _free: int | None = None      # replayed before the second window was first looked at: the first's
    _needed: float = 0.0          # counted replay + planned of the last refused window

    def charge(self, requests: float) -> None:
        """Count a finished replay of `requests` requests (a guard replay too: it is never refused)."""
        self.replayed += int(requests)

    @property
    def counted(self) -> int:
        """Requests replayed that count against the budget (all but the first window's)."""
        return self.replayed - (self._free or 0)

    def may_open(self, arrivals: int) -> bool:
        """Cheap pre-check before a window is snapshotted: False while the last refused window still
        does not fit."""
        return self.per_arrival is None or self.per_arrival * arrivals >= self._needed

    def allows(self, arrivals: int, planned: int) -> bool:
        """Whether a window whose trials replay `planned` requests in all may open now (and remember its
        size when not)."""
        if self.per_arrival is None or self.replayed == 0:
            return True                  # unbounded, or the first window
        if self._free is None:
            self._free = self.replayed   # the first window's replays, its guard's included
        need = self.counted + planned
        if need <= self.per_arrival * arrivals:
            return True
        self._needed = need
        self.refused += 1
        return False
