"""A discrete-event simulator of a contact centre, driving the real scheduler.

The whole point of the sans-I/O core is that this file can feed the *same*
``Scheduler`` the SIP runtime uses with synthetic callers and agents, and
measure what it does: a day of traffic in seconds, KPIs comparable with the
Erlang predictions in ``erlang``.

Theory of operation
-------------------
* Every random number is drawn up front with numpy's ``Generator`` (seeded):
  Poisson arrival times split over the queues by rate, handle times
  (exponential or lognormal with a given mean and CV) and exponential
  patience.  The per-call loop then only indexes arrays; draws are the same
  whatever the scheduler does, which makes runs with different strategies
  paired comparisons.
* Arrivals are pre-sorted, so they need no heap; a heap holds everything
  else: patience expiry, answer after the configured ring delay, end of
  talk, shift logins and logouts.  Stale heap entries (the patience of a
  caller already connected, the answer to a cancelled offer) are skipped
  when they pop instead of being removed.
* The scheduler's own timers (ring timeout, wrap-up, max wait) are driven
  by ``Tick(t)`` at ``next_deadline()`` when no simulator event comes
  first; the scheduler fires due timers itself before any later event.
* Agents answer an ``Offer`` after ``answer_delay`` (0 = at once), talk for
  the call's handle time, then wrap up for the queue's ``wrap_up``.
* The loop itself lives in ``sim_loop`` (plain Python) and ``_sim_loop.pyx``
  (compiled, same behaviour); this file sets it up and turns its raw
  output into KPIs with ``kpi``.
* The run ends when every call has an outcome.  KPIs count only calls that
  arrived after ``warmup`` seconds, so the empty-centre start does not bias
  the steady-state comparison with Erlang.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acdcore.kpi import OccupancyMeter, QueueTally

__all__ = ["QueueLoad", "Shift", "Scenario", "SimResult", "simulate", "load_scheduler"]


@dataclass(frozen=True)
class QueueLoad:
    """Traffic offered to one queue."""

    name: str
    arrival_rate: float                 # calls per second
    aht: float                          # mean talk time, seconds
    handle: str = "exponential"         # or "lognormal"
    handle_cv: float = 1.0              # lognormal coefficient of variation
    patience: float | None = None       # mean patience in s; None: callers never hang up
    strategy: str = "longest_idle"
    wrap_up: float = 0.0

    def __post_init__(self) -> None:
        if self.arrival_rate <= 0 or self.aht <= 0:
            raise ValueError(f"queue {self.name}: arrival rate and aht must be > 0")
        if self.handle not in ("exponential", "lognormal"):
            raise ValueError(f"queue {self.name}: handle must be exponential or lognormal")
        if self.patience is not None and self.patience <= 0:
            raise ValueError(f"queue {self.name}: patience must be > 0")


@dataclass(frozen=True)
class Shift:
    """One agent's working time and the queues it serves (None: every queue)."""

    agent_id: str                       # a label; the scheduler knows agents by index
    login: float = 0.0
    logout: float = math.inf
    queues: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Scenario:
    queues: tuple[QueueLoad, ...]
    agents: int | tuple[Shift, ...]     # an int: that many agents on every queue all day
    calls: int = 200_000                # total arrivals over all queues
    seed: int = 0
    answer_delay: float = 0.0
    warmup: float = 0.0                 # seconds; calls arriving earlier are not counted
    service_thresholds: tuple[float, ...] = (20.0,)
    short_abandon: float = 5.0

    def __post_init__(self) -> None:
        if not self.queues:
            raise ValueError("a scenario needs at least one queue")
        if self.calls < 1 or self.answer_delay < 0 or self.warmup < 0:
            raise ValueError("calls must be >= 1, answer_delay and warmup >= 0")

    def shifts(self) -> tuple[Shift, ...]:
        if isinstance(self.agents, int):
            return tuple(Shift(f"agent-{i}") for i in range(self.agents))
        return self.agents


@dataclass
class SimResult:
    queues: dict[str, QueueTally]
    occupancy: float                    # all agents
    occupancy_by_queue: dict[str, float]  # agents serving the queue (shared agents count in each)
    calls: int
    events: int             # events handed to the scheduler (incl. Ticks)
    horizon: float          # simulated seconds
    wall_seconds: float
    cpu_seconds: float      # this process's CPU time: steadier than wall time on a shared box
    engine: str
    notes: list[str] = field(default_factory=list)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall_seconds if self.wall_seconds > 0 else math.inf

    @property
    def calls_per_cpu_second(self) -> float:
        return self.calls / self.cpu_seconds if self.cpu_seconds > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "calls": self.calls,
            "events": self.events,
            "horizon_seconds": self.horizon,
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "calls_per_second": self.calls_per_second,
            "calls_per_cpu_second": self.calls_per_cpu_second,
            "occupancy": self.occupancy,
            "queues": {name: {**t.summary(), "occupancy": self.occupancy_by_queue.get(name)}
                       for name, t in self.queues.items()},
        }


def load_scheduler(prefer: str = "fast") -> tuple[type, str]:
    """The compiled scheduler (the reference when it is not built), or the reference."""
    if prefer == "fast":
        from acdcore.scheduler import COMPILED, Scheduler
        return Scheduler, "cython" if COMPILED else "reference"
    if prefer != "reference":
        raise ValueError(f"engine must be 'fast' or 'reference', got {prefer!r}")
    from acdcore.reference import ReferenceScheduler
    return ReferenceScheduler, "reference"


def _draws(scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Arrival time, queue index, handle time and patience of every call, by arrival order.

    One Poisson stream at the total rate, each call routed to queue i with
    probability λ_i/Λ: splitting a Poisson process gives independent
    Poisson processes per queue, while the total is exactly ``calls`` and
    every queue covers the same horizon (so occupancy windows agree).
    """
    rates = np.array([q.arrival_rate for q in scenario.queues])
    n = scenario.calls
    t = np.cumsum(rng.exponential(1.0 / rates.sum(), n))
    queue = (rng.choice(len(rates), size=n, p=rates / rates.sum()) if len(rates) > 1
             else np.zeros(n, dtype=np.int64))
    handle = np.empty(n)
    patience = np.full(n, math.inf)
    for i, q in enumerate(scenario.queues):
        mine = queue == i
        k = int(np.count_nonzero(mine))
        if q.handle == "exponential":
            handle[mine] = rng.exponential(q.aht, k)
        else:
            sigma2 = math.log1p(q.handle_cv ** 2)
            handle[mine] = rng.lognormal(math.log(q.aht) - sigma2 / 2, math.sqrt(sigma2), k)
        if q.patience:
            patience[mine] = rng.exponential(q.patience, k)
    return t, queue.astype(np.int64), handle, patience


def simulate(scenario: Scenario, engine: str = "fast", scheduler_cls: type | None = None,
             loop: str = "fast") -> SimResult:
    """Run the scenario through a scheduler.

    ``engine``: "fast" (the compiled scheduler when built) or "reference".
    ``loop``: "fast" (the compiled event loop when built) or "python".
    """
    from acdcore import sim_loop
    from acdcore.model import AgentConfig, QueueConfig

    if scheduler_cls is None:
        scheduler_cls, engine_name = load_scheduler(engine)
    else:
        engine_name = scheduler_cls.__name__
    run, loop_name = _load_loop(loop)
    loads = scenario.queues
    names = [q.name for q in loads]
    ring_timeout = max(15.0, 4 * scenario.answer_delay)  # agents always pick up in the sim
    shifts = scenario.shifts()
    # Agents are known to the scheduler by index: int ids hash faster, and
    # the loop needs no id -> index lookup per action.
    sched = scheduler_cls(
        [QueueConfig(q.name, strategy=q.strategy, wrap_up=q.wrap_up, ring_timeout=ring_timeout,
                     handle_time_hint=q.aht) for q in loads],
        [AgentConfig(i, queues={n: 0 for n in (s.queues or names)}) for i, s in enumerate(shifts)],
        seed=scenario.seed,
    )
    arrival, queue, handle, patience = _draws(scenario, np.random.default_rng(scenario.seed))
    inp = sim_loop.LoopInput(
        arrival=arrival, queue=queue, handle=handle, expiry=arrival + patience,
        names=names, wrap_up=[float(q.wrap_up) for q in loads],
        login=np.array([s.login for s in shifts], dtype=np.float64),
        logout=np.array([s.logout for s in shifts], dtype=np.float64),
        answer_delay=float(scenario.answer_delay),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    out = run(sched, inp)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return _result(scenario, inp, out, wall, cpu, f"{engine_name}+{loop_name}")


def _load_loop(prefer: str):
    from acdcore import sim_loop

    if prefer == "fast":
        try:
            from acdcore import _sim_loop  # type: ignore[attr-defined]
            return _sim_loop.run, "compiled-loop"
        except ImportError:
            return sim_loop.run, "python-loop"
    if prefer != "python":
        raise ValueError(f"loop must be 'fast' or 'python', got {prefer!r}")
    return sim_loop.run, "python-loop"


def _result(scenario: Scenario, inp: Any, out: Any, wall: float, cpu: float, engine: str) -> SimResult:
    from acdcore.sim_loop import ABANDONED, DONE, TALKING, WAITING

    t_end = float(inp.arrival[-1]) if inp.arrival.size else 0.0
    counted = inp.arrival >= scenario.warmup
    answered = (out.status == TALKING) | (out.status == DONE)
    tallies: dict[str, QueueTally] = {}
    for q, load in enumerate(scenario.queues):
        mine = counted & (inp.queue == q)
        tally = QueueTally(scenario.service_thresholds, scenario.short_abandon)
        tally.offered = int(np.count_nonzero(mine))
        tally.answered.add_many(out.wait[mine & answered])
        tally.abandoned.add_many(out.wait[mine & (out.status == ABANDONED)])
        done = mine & (out.status == DONE)
        tally.handled = int(np.count_nonzero(done))
        tally.talk_sum = float(inp.handle[done].sum())
        tally.wrap_up_sum = tally.handled * float(load.wrap_up)
        tallies[load.name] = tally
    for call, reason in out.exits:
        if counted[call]:
            tallies[scenario.queues[int(inp.queue[call])].name].call_exited(reason)
    notes = []
    stuck = int(np.count_nonzero(out.status == WAITING))
    if stuck:
        notes.append(f"{stuck} calls never got an outcome (no agent left to serve them)")
    shifts = scenario.shifts()
    busy, idle = _agent_times(out.occupancy, len(shifts), scenario.warmup, t_end)
    by_queue = {}
    for load in scenario.queues:
        members = np.array([s.queues is None or load.name in s.queues for s in shifts], dtype=bool)
        by_queue[load.name] = _ratio(float(busy[members].sum()), float(idle[members].sum()))
    return SimResult(
        queues=tallies,
        occupancy=_ratio(float(busy.sum()), float(idle.sum())),
        occupancy_by_queue=by_queue,
        calls=int(inp.arrival.size),
        events=out.events,
        horizon=out.t_last,
        wall_seconds=wall,
        cpu_seconds=cpu,
        engine=engine,
        notes=notes,
    )


def _agent_times(log: np.ndarray, n_agents: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Busy and idle seconds per agent inside [start, end], from the loop's
    (t, agent, Δbusy, Δidle) change log.

    The window stops at the last arrival: while the centre drains after it,
    idle time piles up that no steady-state formula would count.
    """
    if not len(log) or end <= start:
        return np.zeros(n_agents), np.zeros(n_agents)
    order = np.argsort(log[:, 1], kind="stable")   # by agent, time order kept within each
    t = np.clip(log[order, 0], start, end)
    agent = log[order, 1].astype(np.int64)
    first = np.r_[True, agent[1:] != agent[:-1]]
    last = np.r_[first[1:], True]
    # Each change holds until the same agent's next change, or the window end.
    dt = np.where(last, end, np.r_[t[1:], end]) - t
    group = np.cumsum(first) - 1
    times = []
    for column in (2, 3):
        total = np.cumsum(log[order, column])
        before = np.r_[0.0, total][np.flatnonzero(first)]   # running sum before each agent's first row
        level = total - before[group]                       # the agent's own head-count: 0 or 1
        times.append(np.bincount(agent, weights=level * dt, minlength=n_agents))
    return times[0], times[1]


def _ratio(busy: float, idle: float) -> float:
    meter = OccupancyMeter()
    meter.busy_time, meter.idle_time = busy, idle
    return meter.occupancy
