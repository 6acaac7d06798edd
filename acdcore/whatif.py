"""Staffing what-if: replay one logged day of a queue with N agents.

The calls are the day's own: every arrival time, every handle time (talk +
wrap-up) of an answered call, every abandoning caller's patience.  They go
through the simulator's loop (``sim_loop``) and the same scheduler the
engine runs, with ``agents`` agents logged in all day, and come out as a
predicted outcome and wait per call.

What the log does not say is drawn, with a seeded generator so one input
gives one answer:

* the patience of a caller who did not abandon (answered, or sent away by
  a timeout) is only known to be longer than the wait; with exponential
  patience, fitted by maximum likelihood over every caller's time in line
  (abandons / total waiting time, the censored estimate), it is the wait
  plus a fresh exponential draw (memoryless);
* the handle time of a call that was never answered is drawn from the
  day's answered calls (bootstrap);
* an agent answers an offer after the day's median ring time.

Priorities and skills are not replayed (the log keeps neither), and every
agent serves the queue all day.  A caller who left by choice (exit key,
callback, voicemail) leaves at the same wait in the replay, and counts as
exited there too.  Both the actual and the predicted figures count each
call in the interval it arrived in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acdcore import sim_loop
from acdcore.kpi import QueueTally
from acdcore.model import AgentConfig, QueueConfig
from acdcore.sim import load_scheduler

__all__ = ["DayCalls", "Prediction", "ANSWERED", "ABANDONED", "LEFT", "TIMED_OUT", "predict",
           "interval_tallies"]

# Outcome codes of a call, logged or predicted.
ANSWERED, ABANDONED, LEFT, TIMED_OUT = range(4)     # LEFT: exited by the caller's choice


@dataclass(frozen=True)
class DayCalls:
    """One queue's calls of one day, in arrival order; times in seconds from
    the day's start.  ``handle`` is NaN for calls never answered."""
    arrival: np.ndarray      # float64, ascending
    outcome: np.ndarray      # int8 codes above
    wait: np.ndarray         # float64: to answer, hang-up or exit
    handle: np.ndarray       # float64 talk + wrap-up, NaN if not answered
    ring: float = 0.0        # seconds an agent's phone rings before the answer
    max_wait: float = 0.0    # the queue's timeout (0: none)

    def __post_init__(self) -> None:
        n = self.arrival.size
        if not (self.outcome.size == self.wait.size == self.handle.size == n):
            raise ValueError("arrival, outcome, wait and handle must have one entry per call")
        if n and np.any(np.diff(self.arrival) < 0):
            raise ValueError("arrivals must be in time order")

    @property
    def mean_patience(self) -> float:
        """Censored exponential MLE: total time in line over the number of
        callers who gave up; infinite when nobody did."""
        gave_up = int(np.count_nonzero((self.outcome == ABANDONED) | (self.outcome == LEFT)))
        exposure = float(self.wait.sum())
        return exposure / gave_up if gave_up else math.inf


@dataclass(frozen=True)
class Prediction:
    outcome: np.ndarray      # int8 per call
    wait: np.ndarray         # float64 per call
    agents: int
    mean_patience: float
    engine: str


def predict(day: DayCalls, agents: int, *, seed: int = 0, strategy: str = "longest_idle",
            engine: str = "fast") -> Prediction:
    """The day replayed with ``agents`` agents; deterministic for one input."""
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents}")
    n = day.arrival.size
    rng = np.random.default_rng(seed)
    answered = day.outcome == ANSWERED
    handle = day.handle.astype(np.float64).copy()
    known = handle[answered & np.isfinite(handle)]
    fill = ~(answered & np.isfinite(handle))
    draws = rng.integers(0, max(known.size, 1), n)      # drawn whatever is needed: paired runs
    handle[fill] = known[draws[fill]] if known.size else 180.0
    handle = np.maximum(handle, 0.001)
    mean_patience = day.mean_patience
    extra = rng.exponential(1.0, n) * (mean_patience if math.isfinite(mean_patience) else 0.0)
    patience = np.where((day.outcome == ABANDONED) | (day.outcome == LEFT), day.wait,
                        day.wait + extra if math.isfinite(mean_patience) else math.inf)
    scheduler_cls, engine_name = load_scheduler(engine)
    hint = float(known.mean()) if known.size else 180.0
    sched = scheduler_cls(
        [QueueConfig("q", strategy=strategy, wrap_up=0.0,
                     ring_timeout=max(15.0, 4 * day.ring), max_wait=day.max_wait,
                     handle_time_hint=hint)],
        [AgentConfig(i, queues={"q": 0}) for i in range(agents)], seed=seed)
    inp = sim_loop.LoopInput(
        arrival=day.arrival.astype(np.float64), queue=np.zeros(n, dtype=np.int64),
        handle=handle, expiry=day.arrival + patience, names=["q"], wrap_up=[0.0],
        login=np.zeros(agents), logout=np.full(agents, math.inf), answer_delay=float(day.ring))
    out = sim_loop.run(sched, inp)
    outcome = np.full(n, TIMED_OUT, dtype=np.int8)
    outcome[(out.status == sim_loop.TALKING) | (out.status == sim_loop.DONE)] = ANSWERED
    gave_up = out.status == sim_loop.ABANDONED
    outcome[gave_up] = np.where(day.outcome[gave_up] == LEFT, LEFT, ABANDONED)
    return Prediction(outcome, out.wait.copy(), agents, mean_patience, engine_name)


def interval_tallies(arrival: np.ndarray, outcome: np.ndarray, wait: np.ndarray,
                     edges: list[float], thresholds: tuple[float, ...] = (20.0,),
                     short_abandon: float = 5.0) -> list[QueueTally]:
    """One tally per interval ``[edges[i], edges[i+1])``, by arrival time."""
    k = np.searchsorted(np.asarray(edges), arrival, side="right") - 1
    out = []
    for i in range(len(edges) - 1):
        mine = k == i
        tally = QueueTally(thresholds, short_abandon)
        tally.offered = int(np.count_nonzero(mine))
        tally.answered.add_many(wait[mine & (outcome == ANSWERED)])
        tally.abandoned.add_many(wait[mine & (outcome == ABANDONED)])
        for code, reason in ((LEFT, "left"), (TIMED_OUT, "timeout")):
            n = int(np.count_nonzero(mine & (outcome == code)))
            if n:
                tally.exited[reason] += n
        out.append(tally)
    return out
