"""KPIs per queue and interval, computed from the event log alone.

The log is replayed in time order into the same accumulators the live
metrics and the simulator use (``acdcore.kpi``), so the formulas live in
one place.  Each count belongs to the interval of the event that made it,
which is also the moment the runtime moves its Prometheus counter:

* offered at ENTER; answered (and its wait) at CONNECT; abandoned (and its
  wait) at ABANDON, short abandons included (KPI.md: a short abandon is
  counted, and excluded where a formula says so: the SL and abandon-rate
  variants "excluding short abandons"); exited at EXIT;
* a call closed out at a restart (``closeout``) once, by its one outcome:
  a waiting caller as exited ``engine_restart``, a connected call as the
  answered call it was; ``closed_by_restart`` counts both kinds, and a
  connected one is left out of AHT (cut short, no wrap-up);
* a handled call (AHT = talk + hold + wrap-up) when its wrap-up ends
  (WRAPUP_END, or READY / PAUSE / LOGOUT cutting it short), with the
  wrap-up it really took; talk is CONNECT to COMPLETE_* (or to the agent's
  TRANSFER), hold included;
* a survey answer when it was given; participation divides by the
  interval's answered calls.

So ``increase(sipacd_queue_answered_total[1h])`` and this report's
"answered" for the same hour agree, and intervals add up to the whole.

Occupancy is agent time-in-state: (talk + wrap-up) / (talk + wrap-up +
available idle), paused and logged-out time in neither term.  An agent
counts in every queue it serves (``members``; without it, the queues it
logged into, was offered or took calls from in the period or the day
before).  Its state at
``t_from`` is rebuilt by replaying its events since its last login,
logout or wrap-up end before ``t_from``.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acdcore.kpi import OccupancyMeter, QueueTally
from sipagent.store.eventlog import AGENT_EVENT_KINDS, RESTART, read_only

__all__ = ["ReportRow", "report", "interval_starts", "SATISFIED_SHARE", "DEFAULT_THRESHOLDS",
           "DEFAULT_SHORT_ABANDON", "KpiReplay", "agent_seed", "EVENT_COLUMNS"]

DEFAULT_THRESHOLDS = (20.0,)
DEFAULT_SHORT_ABANDON = 5.0
#: A survey answer is "satisfied" from this share of its scale up: 4 and 5
#: of 1..5 (the usual top-two box), 8..10 of 1..10, 2 of a yes/no 1..2.
SATISFIED_SHARE = 0.8

EVENT_COLUMNS = "id, t, kind, queue, call_id, agent, wait, position, reason"   # a replay row
_COLUMNS = EVENT_COLUMNS
_WINDOW_SQL = f"SELECT {_COLUMNS} FROM event WHERE t >= ? AND t < ? ORDER BY t, id"
# An agent's state at t_from is rebuilt from its events since an anchor: its
# last LOGIN, LOGOUT or WRAPUP_END before t_from, where nothing of a call is
# open.  Agents that stay logged in for weeks would otherwise be replayed
# from their login.  Each query walks the (agent, t) index backwards.
_AGENTS_SQL = "SELECT DISTINCT agent FROM event WHERE kind = 'LOGIN' AND t < ?"
_ANCHOR_SQL = (
    "SELECT t, id FROM event WHERE agent = ? AND t < ?"
    " AND kind IN ('LOGIN', 'LOGOUT', 'WRAPUP_END') ORDER BY t DESC, id DESC LIMIT 1"
)
# Whether the agent was logged in and paused at the anchor.
_FLAGS_SQL = (
    "SELECT kind FROM event WHERE agent = ? AND (t < ? OR (t = ? AND id <= ?))"
    " AND kind IN ('LOGIN', 'LOGOUT', 'PAUSE', 'READY', 'UNPAUSE') ORDER BY t DESC, id DESC LIMIT 1"
)
_SINCE_SQL = (
    f"SELECT {_COLUMNS} FROM event WHERE agent = ? AND (t > ? OR (t = ? AND id >= ?)) AND t < ?"
    " ORDER BY t, id"
)
# Without a configured membership, an agent serves the queues it logged
# into, was offered or took calls from during the period or the day before.
_MEMBERSHIP_LOOKBACK = 86400.0
_MEMBERSHIP_SQL = (
    "SELECT DISTINCT agent, queue FROM event WHERE t >= ? AND t < ?"
    " AND kind IN ('LOGIN', 'OFFER', 'CONNECT') AND agent IS NOT NULL AND queue IS NOT NULL"
)
_SURVEY_SQL = (
    "SELECT s.t, COALESCE(s.queue, (SELECT e.queue FROM event e WHERE e.call_id = s.call_id"
    "  AND e.kind = 'CONNECT' AND e.t <= s.t ORDER BY e.t DESC, e.id DESC LIMIT 1)),"
    " s.score, s.scale FROM survey_answer s WHERE s.t >= ? AND s.t < ? ORDER BY s.t, s.id"
)


@dataclass
class ReportRow:
    """One queue over one interval ``[start, end)``."""
    queue: str
    start: float
    end: float
    tally: QueueTally
    busy_time: float = 0.0     # agent-seconds talking or in wrap-up
    idle_time: float = 0.0     # agent-seconds available and idle
    surveys: int = 0
    satisfied: int = 0
    closed_by_restart: int = 0   # calls whose ending a restart wrote (see closeout)
    transfers: int = 0           # connected calls an agent transferred on
    holds: int = 0               # times a connected caller was put on hold
    hold_time: float = 0.0       # seconds on hold (part of talk, so of AHT)

    @property
    def occupancy(self) -> float:
        total = self.busy_time + self.idle_time
        return self.busy_time / total if total > 0 else math.nan

    @property
    def satisfaction(self) -> float:
        return self.satisfied / self.surveys if self.surveys else math.nan

    @property
    def participation(self) -> float:
        answered = self.tally.answered.count
        return self.surveys / answered if answered else math.nan

    def kpis(self) -> dict[str, Any]:
        """Every KPI of the row, ratios in 0..1, NaN where the denominator is empty."""
        return {
            "queue": self.queue, "start": self.start, "end": self.end,
            **self.tally.summary(),
            "handled": self.tally.handled,
            "occupancy": self.occupancy,
            "agent_busy_seconds": self.busy_time,
            "agent_idle_seconds": self.idle_time,
            "surveys": self.surveys,
            "satisfied": self.satisfied,
            "satisfaction": self.satisfaction,
            "participation": self.participation,
            "closed_by_restart": self.closed_by_restart,
            "transfers": self.transfers,
            "holds": self.holds,
            "hold_seconds": self.hold_time,
        }


def report(db_path: str | Path, t_from: float, t_to: float, queue: str | None = None,
           interval: float | None = None,
           thresholds: Sequence[float] | Mapping[str, Sequence[float]] = DEFAULT_THRESHOLDS,
           short_abandon: float | Mapping[str, float] = DEFAULT_SHORT_ABANDON,
           members: Mapping[str, Iterable[str]] | None = None,
           observer: Any = None) -> list[ReportRow]:
    """KPI rows per queue per interval of ``[t_from, t_to)`` (epoch seconds).

    ``interval`` in seconds cuts the period into steps from ``t_from`` (the
    last one ends at ``t_to``), or is the list of interval starts after
    ``t_from``; None gives one row per queue.
    ``thresholds`` and ``short_abandon`` are global or per queue (a mapping;
    queues it lacks get the defaults).  ``members`` maps a queue to the
    agents serving it, for occupancy.  Rows are ordered by start, then queue.
    """
    t_from, t_to = float(t_from), float(t_to)
    if not t_to > t_from:
        raise ValueError(f"the period is empty: {t_from} .. {t_to}")
    starts = interval_starts(t_from, t_to, interval)
    conn = read_only(db_path)
    try:
        agents, seed = agent_seed(conn, t_from)
        window = conn.execute(_WINDOW_SQL, (t_from, t_to)).fetchall()
        surveys = conn.execute(_SURVEY_SQL, (t_from, t_to)).fetchall()
        served = (conn.execute(_MEMBERSHIP_SQL, (t_from - _MEMBERSHIP_LOOKBACK, t_to)).fetchall()
                  if members is None else [(a, q) for q, names in members.items() for a in names])
    finally:
        conn.close()

    if queue is not None:
        queues = [queue]
    else:
        # Queues named by a caller-side event in the window, or by a call
        # still open from before it (its talk and wrap-up count here).
        named = {r[3] for r in (*seed, *window) if r[3] is not None
                 and r[2] not in AGENT_EVENT_KINDS}
        named.update(q for _, q, _, _ in surveys if q is not None)
        named.update(q for _, q in served)
        for config in (thresholds, short_abandon, members):
            if isinstance(config, Mapping):
                named.update(config)
        queues = sorted(named)
    replay = KpiReplay(starts, t_to, queues, thresholds, short_abandon,
                       _membership(served, queues), agents, observer=observer)
    for row in seed:
        replay.event(row)
    replay.open_window()
    for row in window:
        replay.event(row)
    replay.close_window()
    for t, q, score, scale in surveys:
        out = replay.row(q, t)
        if out is not None:
            out.surveys += 1
            out.satisfied += score >= SATISFIED_SHARE * scale
    return [replay.rows[(q, k)] for k in range(replay.n) for q in queues]


def interval_starts(t_from: float, t_to: float,
                    interval: float | Sequence[float] | None) -> list[float]:
    """The start of each interval: ``t_from``, then every ``interval`` seconds,
    or ``t_from`` and the given times inside the period (calendar days
    across a DST change are not all 86400 s long; the caller computes them)."""
    if interval is None:
        return [t_from]
    if isinstance(interval, Sequence):
        inner = sorted({float(t) for t in interval if t_from < float(t) < t_to})
        return [t_from, *inner]
    step = float(interval)
    if not step > 0 or math.isinf(step):
        raise ValueError(f"interval must be > 0 s, got {interval}")
    n = max(1, math.ceil((t_to - t_from) / step - 1e-9))
    return [t_from + k * step for k in range(n)]


def agent_seed(conn, t_from: float) -> tuple[dict[str, _Agent], list[tuple]]:
    """Each agent's state at its anchor, and its events from there to t_from."""
    agents: dict[str, _Agent] = {}
    rows: list[tuple] = []
    for (name,) in conn.execute(_AGENTS_SQL, (t_from,)).fetchall():
        anchor = conn.execute(_ANCHOR_SQL, (name, t_from)).fetchone()
        if anchor is None:
            continue
        t, row_id = anchor
        flag = conn.execute(_FLAGS_SQL, (name, t, t, row_id)).fetchone()
        kind = flag[0] if flag else "LOGOUT"
        agents[name] = _Agent(logged_in=kind != "LOGOUT", paused=kind == "PAUSE", name=name)
        rows += conn.execute(_SINCE_SQL, (name, t, t, row_id, t_from)).fetchall()
    rows.sort(key=lambda r: (r[1], r[0]))
    return agents, rows


def _param(value: Any, queue: str, default: Any) -> Any:
    return value.get(queue, default) if isinstance(value, Mapping) else value


def _membership(served: list[tuple[str, str]], queues: list[str]) -> dict[str, set[str]]:
    """agent -> the selected queues it serves."""
    wanted = set(queues)
    out: dict[str, set[str]] = {}
    for agent, q in served:
        if q in wanted:
            out.setdefault(agent, set()).add(q)
    return out


@dataclass
class _Agent:
    logged_in: bool = False
    paused: bool = False
    activity: str | None = None          # None, "talk" or "wrapup"
    call: tuple[str, str, float] | None = None       # (call_id, queue, connected at)
    after_call: tuple[str, float] | None = None      # (queue, talk) of the call just ended
    wrap_from: float | None = None
    name: str = ""

    @property
    def category(self) -> str | None:
        if self.activity is not None:
            return "busy"
        return "idle" if self.logged_in and not self.paused else None

    @property
    def time_state(self) -> str | None:
        """Where the agent's time goes: busy, idle, paused, or None (logged out)."""
        category = self.category
        return "paused" if category is None and self.logged_in else category


@dataclass
class KpiReplay:
    """Counts the log's rows, fed in time order, into ``rows`` per queue and
    interval.  ``observer``, when given, gets ``agent_event(name, time_state,
    kind, queue, reason, t)`` after each of an agent's events inside the
    window (kind None at ``t_from``: the state then) and ``handled(name,
    queue, talk, wrap_up, t)`` when its handled call counts: what an
    agent report needs, from the same replay."""
    starts: list[float]        # interval starts: t_from first, ascending
    t_to: float
    queues: list[str]
    thresholds: Any
    short_abandon: Any
    membership: dict[str, set[str]]
    agents: dict[str, _Agent] = field(default_factory=dict)
    rows: dict[tuple[str, int], ReportRow] = field(default_factory=dict)
    meters: dict[str, OccupancyMeter] = field(default_factory=dict)
    live: bool = False
    observer: Any = None

    def __post_init__(self) -> None:
        self.t_from = self.starts[0]
        self.n = len(self.starts)
        ends = [*self.starts[1:], self.t_to]
        for q in self.queues:
            sl = _param(self.thresholds, q, DEFAULT_THRESHOLDS)
            short = _param(self.short_abandon, q, DEFAULT_SHORT_ABANDON)
            for k, (start, end) in enumerate(zip(self.starts, ends)):
                self.rows[(q, k)] = ReportRow(q, start, end, QueueTally(sl, short))
        self._next_edge = 1       # the next interval start the meters must cross
        self._done: dict[str, tuple[float, float]] = {}   # busy, idle time already in rows

    def row(self, queue: str | None, t: float) -> ReportRow | None:
        if not self.t_from <= t < self.t_to:
            return None
        return self.rows.get((queue, bisect_right(self.starts, t) - 1))

    # -- occupancy -----------------------------------------------------------------
    def open_window(self) -> None:
        for q in self.queues:
            self.meters[q] = OccupancyMeter(self.t_from)
            self._done[q] = (0.0, 0.0)
        for name, agent in self.agents.items():
            self._move(name, None, agent.category, self.t_from)
            if self.observer is not None:
                self.observer.agent_event(name, agent.time_state, None, None, None, self.t_from)
        self.live = True

    def close_window(self) -> None:
        self._cross_edges(self.t_to)
        self._close_interval(self.n - 1, self.t_to)

    def _cross_edges(self, t: float) -> None:
        while self._next_edge < self.n and self.starts[self._next_edge] <= t:
            self._close_interval(self._next_edge - 1, self.starts[self._next_edge])
            self._next_edge += 1

    def _close_interval(self, k: int, edge: float) -> None:
        for q, meter in self.meters.items():
            meter.advance(edge)
            busy_done, idle_done = self._done[q]
            row = self.rows[(q, k)]
            row.busy_time = meter.busy_time - busy_done
            row.idle_time = meter.idle_time - idle_done
            self._done[q] = (meter.busy_time, meter.idle_time)

    def _move(self, name: str, before: str | None, after: str | None, t: float) -> None:
        if before == after or not self.meters:
            return
        busy = (after == "busy") - (before == "busy")
        idle = (after == "idle") - (before == "idle")
        for q in self.membership.get(name, ()):
            self.meters[q].change(t, busy=busy, idle=idle)

    # -- the replay ------------------------------------------------------------------
    def event(self, r: tuple) -> None:
        _id, t, kind, queue, call_id, agent_name, wait, _position, reason = r
        if self.live:
            self._cross_edges(t)
            out = self.row(queue, t) if kind not in AGENT_EVENT_KINDS else None
            if out is not None:
                tally = out.tally
                if kind == "ENTER":
                    tally.call_offered()
                elif kind == "CONNECT":
                    tally.call_answered(wait)
                elif kind == "ABANDON":
                    tally.call_abandoned(wait)
                elif kind == "EXIT":
                    tally.call_exited(reason or "unknown")
                elif kind == "TRANSFER":
                    out.transfers += 1
                elif kind == "HOLD":
                    out.holds += 1
                elif kind == "UNHOLD":
                    out.hold_time += wait or 0.0
                if reason == RESTART and kind in ("EXIT", "COMPLETE_SYSTEM"):
                    out.closed_by_restart += 1
        if agent_name is None:
            return
        agent = self.agents.get(agent_name) or self.agents.setdefault(agent_name,
                                                                      _Agent(name=agent_name))
        before = agent.category
        self._agent_event(agent, kind, queue, call_id, t)
        if self.live:
            self._move(agent_name, before, agent.category, t)
            if self.observer is not None and self.t_from <= t < self.t_to:
                self.observer.agent_event(agent_name, agent.time_state, kind, queue, reason, t)

    def _agent_event(self, a: _Agent, kind: str, queue: str | None, call_id: str | None,
                     t: float) -> None:
        if kind in ("CONNECT", "CALLBACK_CONNECTED"):
            # A callback from a key pressed in the queue has no CONNECT (its
            # outcome was counted then); its talk starts at CALLBACK_CONNECTED.
            if a.call is None or a.call[0] != call_id:
                self._after_call_over(a, t)
                a.activity, a.call = "talk", (call_id, queue, t)
        elif kind == "COMPLETE_SYSTEM":
            # Closed out after a crash: busy until then, but no handle time.
            if a.call is not None and a.call[0] == call_id:
                a.call = None
                if a.activity == "talk":
                    a.activity = None
        elif kind in ("COMPLETE_CALLER", "COMPLETE_AGENT", "TRANSFER"):
            if a.call is not None and a.call[0] == call_id:
                a.after_call = (a.call[1], max(0.0, t - a.call[2]))
                a.call = None
                if a.activity == "talk":
                    a.activity = None
        elif kind == "OUTBOUND_START":
            a.activity = "outbound"        # busy (occupancy), as the live metrics count it
        elif kind == "OUTBOUND_END" and a.activity == "outbound":
            a.activity = None
        elif kind == "WRAPUP_START":
            a.activity, a.wrap_from = "wrapup", t
        elif kind == "LOGIN":
            # Only a logged-out agent logs in; anything still open is what a
            # crash left behind, and is dropped rather than counted as hours
            # of talk or wrap-up.
            a.logged_in, a.paused, a.activity = True, False, None
            a.call = a.after_call = a.wrap_from = None
        elif kind in ("WRAPUP_END", "READY", "UNPAUSE", "PAUSE", "LOGOUT"):
            self._after_call_over(a, t)
            if kind in ("READY", "UNPAUSE"):
                a.paused = False
            elif kind == "PAUSE":
                a.paused = True
            elif kind == "LOGOUT":
                # A call that goes on after logout keeps a.call, so its talk
                # still counts when it completes; the agent's time does not.
                a.logged_in, a.paused, a.activity = False, False, None
        # OFFER, RINGNOANSWER, TRANSFER...: ringing counts as available time.

    def _after_call_over(self, a: _Agent, t: float) -> None:
        """The agent's after-call period ends: the handled call counts now."""
        wrap = 0.0
        if a.activity == "wrapup":
            wrap = max(0.0, t - a.wrap_from)
            a.activity, a.wrap_from = None, None
        if a.after_call is not None:
            queue, talk = a.after_call
            a.after_call = None
            out = self.row(queue, t) if self.live else None
            if out is not None:
                out.tally.call_handled(talk, wrap)
                if self.observer is not None:
                    self.observer.handled(a.name, queue, talk, wrap, t)
