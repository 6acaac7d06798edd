"""A discrete-event simulator of a contact centre, driving the real scheduler.

The whole point of the sans-I/O core is that this file can feed the *same*
``Scheduler`` the SIP runtime uses with synthetic callers and agents, and
measure what it does: a day of traffic in seconds, KPIs comparable with the
Erlang predictions in ``erlang``.

Theory of operation
-------------------
* Every random number is drawn up front with numpy's ``Generator`` (seeded):
  per queue, Poisson arrival times, handle times (exponential or lognormal
  with a given mean and CV) and exponential patience.  The per-call loop
  then only indexes arrays; draws are the same whatever the scheduler does,
  which makes runs with different strategies paired comparisons.
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
* The run ends when every call has an outcome.  KPIs count only calls that
  arrived after ``warmup`` seconds, so the empty-centre start does not bias
  the steady-state comparison with Erlang.
"""
from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
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

    agent_id: str
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

    def shifts(self) -> tuple[Shift, ...]:
        if isinstance(self.agents, int):
            return tuple(Shift(f"agent-{i}") for i in range(self.agents))
        return self.agents


@dataclass
class SimResult:
    queues: dict[str, QueueTally]
    occupancy: float
    calls: int
    events: int             # events handed to the scheduler (incl. Ticks)
    horizon: float          # simulated seconds
    wall_seconds: float
    engine: str
    notes: list[str] = field(default_factory=list)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall_seconds if self.wall_seconds > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "calls": self.calls,
            "events": self.events,
            "horizon_seconds": self.horizon,
            "wall_seconds": self.wall_seconds,
            "calls_per_second": self.calls_per_second,
            "occupancy": self.occupancy,
            "queues": {name: t.summary() for name, t in self.queues.items()},
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
    """Arrival time, queue index, handle time and patience of every call, by arrival order."""
    rates = np.array([q.arrival_rate for q in scenario.queues])
    # Split the call budget by rate so every queue covers the same horizon.
    counts = np.floor(scenario.calls * rates / rates.sum()).astype(np.int64)
    counts[np.argmax(rates)] += scenario.calls - int(counts.sum())
    times, queue, handle, patience = [], [], [], []
    for i, (q, n) in enumerate(zip(scenario.queues, counts)):
        times.append(np.cumsum(rng.exponential(1.0 / q.arrival_rate, n)))
        queue.append(np.full(n, i, dtype=np.int64))
        if q.handle == "exponential":
            handle.append(rng.exponential(q.aht, n))
        else:
            sigma2 = math.log1p(q.handle_cv ** 2)
            handle.append(rng.lognormal(math.log(q.aht) - sigma2 / 2, math.sqrt(sigma2), n))
        patience.append(rng.exponential(q.patience, n) if q.patience else np.full(n, math.inf))
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    return t[order], np.concatenate(queue)[order], np.concatenate(handle)[order], np.concatenate(patience)[order]


# Simulator-side event kinds on the heap; ties at equal times order by kind.
_K_LOGIN, _K_ANSWER, _K_END, _K_ABANDON, _K_LOGOUT = range(5)
# Per-call outcome codes.
_WAITING, _TALKING, _DONE, _ABANDONED, _EXITED = range(5)
# Per-agent occupancy states (only what occupancy needs, not the scheduler's).
_OUT, _IDLE, _BUSY, _PAUSED = range(4)


def simulate(scenario: Scenario, engine: str = "fast", scheduler_cls: type | None = None) -> SimResult:
    """Run the scenario through the scheduler; ``engine`` is "fast" or "reference"."""
    from acdcore import events as E
    from acdcore.actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                                 OfferTimedOut, WrapUpEnded)
    from acdcore.model import AgentConfig, QueueConfig

    if scheduler_cls is None:
        scheduler_cls, engine_name = load_scheduler(engine)
    else:
        engine_name = scheduler_cls.__name__
    loads = scenario.queues
    names = [q.name for q in loads]
    ring_timeout = max(15.0, 4 * scenario.answer_delay)  # agents always pick up in the sim
    shifts = scenario.shifts()
    sched = scheduler_cls(
        [QueueConfig(q.name, strategy=q.strategy, wrap_up=q.wrap_up, ring_timeout=ring_timeout,
                     handle_time_hint=q.aht) for q in loads],
        [AgentConfig(s.agent_id, queues={n: 0 for n in (s.queues or names)}) for s in shifts],
        seed=scenario.seed,
    )
    rng = np.random.default_rng(scenario.seed)
    arr_t_np, arr_q_np, handle_np, patience_np = _draws(scenario, rng)
    arr_t = arr_t_np.tolist()           # Python floats index faster than numpy scalars
    arr_q = arr_q_np.tolist()
    handle = handle_np.tolist()
    expiry = (arr_t_np + patience_np).tolist()
    n_calls = len(arr_t)
    t_end = arr_t[-1] if n_calls else 0.0
    warmup = scenario.warmup
    wrap_of = [q.wrap_up for q in loads]

    answered_waits: list[list[float]] = [[] for _ in loads]
    abandoned_waits: list[list[float]] = [[] for _ in loads]
    talk_sum = [0.0] * len(loads)
    wrap_sum = [0.0] * len(loads)
    handled = [0] * len(loads)
    exited: list[dict[str, int]] = [{} for _ in loads]
    status = bytearray(n_calls)

    agent_index = {s.agent_id: i for i, s in enumerate(shifts)}
    agent_state = bytearray(len(shifts))
    # (t, Δbusy, Δidle) head-count changes, integrated once at the end.
    occ_log: list[tuple[float, int, int]] = []
    log_occ = occ_log.append

    heap: list[tuple] = []
    for s in shifts:
        heap.append((s.login, _K_LOGIN, agent_index[s.agent_id], s.agent_id))
        if math.isfinite(s.logout):
            heap.append((s.logout, _K_LOGOUT, agent_index[s.agent_id], s.agent_id))
    heapq.heapify(heap)
    heappush, heappop = heapq.heappush, heapq.heappop
    handle_raw = sched.handle_raw
    next_deadline = sched.next_deadline
    delay = scenario.answer_delay
    pending: set[tuple[int, str]] = set()   # offers not yet answered (or cancelled)
    now_answers: list[tuple[int, str]] = []  # answers due at the current instant (delay 0)
    EV_ARR, EV_ANS, EV_END, EV_ABN = E.EV_CALL_ARRIVED, E.EV_OFFER_ANSWERED, E.EV_CALL_ENDED, E.EV_CALL_ABANDONED
    EV_TICK, EV_IN, EV_OUT = E.EV_TICK, E.EV_AGENT_LOGGED_IN, E.EV_AGENT_LOGGED_OUT
    inf = math.inf
    events = 0
    i = 0
    deadline = inf
    t = 0.0
    started = time.perf_counter()
    while True:
        if now_answers:
            key = now_answers.pop()
            if key not in pending:
                continue
            pending.discard(key)
            actions = handle_raw(EV_ANS, t, key[0], key[1])
        else:
            ta = arr_t[i] if i < n_calls else inf
            th = heap[0][0] if heap else inf
            if deadline < ta and deadline < th:
                t = deadline
                actions = handle_raw(EV_TICK, t)
            elif ta <= th:
                if ta == inf:
                    break
                t = ta
                c = i
                i += 1
                q = arr_q[c]
                actions = handle_raw(EV_ARR, t, c, None, None, names[q], 0)
                if expiry[c] != inf:
                    heappush(heap, (expiry[c], _K_ABANDON, c, None))
            else:
                t, kind, c, agent = heappop(heap)
                if kind == _K_END:
                    status[c] = _DONE
                    q = arr_q[c]
                    if arr_t[c] >= warmup:
                        handled[q] += 1
                        talk_sum[q] += handle[c]
                        wrap_sum[q] += wrap_of[q]
                    actions = handle_raw(EV_END, t, c)
                    a = agent_index[agent]
                    if wrap_of[q] == 0 and agent_state[a] == _BUSY:
                        agent_state[a] = _IDLE
                        log_occ((t, -1, 1))
                elif kind == _K_ABANDON:
                    if status[c] != _WAITING:
                        continue
                    status[c] = _ABANDONED
                    if arr_t[c] >= warmup:
                        abandoned_waits[arr_q[c]].append(t - arr_t[c])
                    actions = handle_raw(EV_ABN, t, c)
                elif kind == _K_ANSWER:
                    key = (c, agent)
                    if key not in pending:
                        continue
                    pending.discard(key)
                    actions = handle_raw(EV_ANS, t, c, agent)
                elif kind == _K_LOGIN:
                    actions = handle_raw(EV_IN, t, None, agent)
                    agent_state[c] = _IDLE
                    log_occ((t, 0, 1))
                else:  # _K_LOGOUT
                    actions = handle_raw(EV_OUT, t, None, agent)
                    st = agent_state[c]
                    log_occ((t, -(st == _BUSY), -(st == _IDLE)))
                    agent_state[c] = _OUT
        events += 1
        for act in actions:
            kind_type = type(act)
            if kind_type is Offer:
                key = (act.call_id, act.agent_id)
                pending.add(key)
                if delay == 0:
                    now_answers.append(key)
                else:
                    heappush(heap, (t + delay, _K_ANSWER, key[0], key[1]))
            elif kind_type is Connect:
                c = act.call_id
                status[c] = _TALKING
                if arr_t[c] >= warmup:
                    answered_waits[arr_q[c]].append(t - arr_t[c])
                heappush(heap, (t + handle[c], _K_END, c, act.agent_id))
                a = agent_index[act.agent_id]
                if agent_state[a] == _IDLE:
                    agent_state[a] = _BUSY
                    log_occ((t, 1, -1))
            elif kind_type is WrapUpEnded or kind_type is AgentAutoPaused:
                a = agent_index[act.agent_id]
                st = agent_state[a]
                if kind_type is WrapUpEnded:
                    if st == _BUSY:
                        agent_state[a] = _IDLE
                        log_occ((t, -1, 1))
                else:
                    agent_state[a] = _PAUSED
                    log_occ((t, -(st == _BUSY), -(st == _IDLE)))
            elif kind_type is CancelOffer or kind_type is OfferTimedOut:
                pending.discard((act.call_id, act.agent_id))
            elif kind_type is CallExited:
                c = act.call_id
                status[c] = _EXITED
                if arr_t[c] >= warmup:
                    reasons = exited[arr_q[c]]
                    reasons[act.reason] = reasons.get(act.reason, 0) + 1
        d = next_deadline()
        deadline = inf if d is None else d
    wall = time.perf_counter() - started

    counted = arr_t_np >= warmup
    tallies: dict[str, QueueTally] = {}
    for q, name in enumerate(names):
        tally = QueueTally(scenario.service_thresholds, scenario.short_abandon)
        tally.offered = int(np.count_nonzero(counted & (arr_q_np == q)))
        tally.answered.add_many(answered_waits[q])
        tally.abandoned.add_many(abandoned_waits[q])
        tally.handled, tally.talk_sum, tally.wrap_up_sum = handled[q], talk_sum[q], wrap_sum[q]
        for reason, count in exited[q].items():
            tally.exited[reason] = count
        tallies[name] = tally
    notes = []
    stuck = int(np.count_nonzero(np.frombuffer(bytes(status), dtype=np.uint8) == _WAITING))
    if stuck:
        notes.append(f"{stuck} calls never got an outcome (no agent left to serve them)")
    return SimResult(
        queues=tallies,
        occupancy=_occupancy(occ_log, warmup, t_end),
        calls=n_calls,
        events=events,
        horizon=t,
        wall_seconds=wall,
        engine=engine_name,
        notes=notes,
    )


def _occupancy(log: Sequence[tuple[float, int, int]], start: float, end: float) -> float:
    """Busy / (busy + idle) agent-time over [start, end] from head-count changes.

    The window stops at the last arrival: while the centre drains after it,
    idle time piles up that no steady-state formula would count.
    """
    if not log or end <= start:
        return math.nan
    arr = np.asarray(log, dtype=np.float64)
    t = np.clip(arr[:, 0], start, end)
    busy = np.cumsum(arr[:, 1])
    idle = np.cumsum(arr[:, 2])
    dt = np.diff(np.append(t, end))
    meter = OccupancyMeter(start)
    meter.busy_time = float(np.dot(busy, dt))
    meter.idle_time = float(np.dot(idle, dt))
    return meter.occupancy
