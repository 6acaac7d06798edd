"""The console's interval and agent reports: calendar days of the console's
time zone cut into 15-minute, hourly or daily intervals, computed by the
report's replay of the event log (``report``), as JSON-ready rows or CSV.

Intervals start at each local midnight and step by their length inside the
day, so a day with a DST change has 92 or 100 quarter hours and the next
day starts at 00:00 again.  ``to`` is the last day reported (inclusive).

A request must not keep the engine busy for minutes: the span is capped per
interval length (``MAX_DAYS``) and by the number of logged events in it
(``MAX_EVENTS``); ``ReportLimit`` says which limit and by how much.
"""
from __future__ import annotations

import csv
import io
import math
import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sipagent.store.day_counters import kpi_figures
from sipagent.store.eventlog import read_only
from sipagent.store.report import ReportRow, report

__all__ = ["INTERVALS", "MAX_DAYS", "MAX_EVENTS", "ReportLimit", "Span", "span_of",
           "interval_rows", "agent_rows", "AgentTimes", "to_csv"]

INTERVALS = {"15m": 900.0, "1h": 3600.0, "1d": 86400.0}
MAX_DAYS = {"15m": 31, "1h": 92, "1d": 366}
#: About 7 s of replay (benchmarks/console_reports.py: ~3.3 us an event); a busy
#: centre logs 5 to 10 events a call.
MAX_EVENTS = 2_000_000
_COUNT_SQL = "SELECT COUNT(*) FROM event WHERE t >= ? AND t < ?"
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class ReportLimit(ValueError):
    """A request over a limit; ``param`` names the query parameter to change."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class Span:
    t_from: float
    t_to: float
    starts: list[float]          # every interval start, t_from first
    zone: ZoneInfo

    def ends(self) -> list[float]:
        return [*self.starts[1:], self.t_to]

    def iso(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.zone).isoformat(timespec="seconds")


def _midnight(d: date, zone: ZoneInfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()


def span_of(day_from: date, day_to: date, interval: str, zone: ZoneInfo) -> Span:
    """The local days ``day_from`` .. ``day_to`` (inclusive) cut into intervals."""
    if interval not in INTERVALS:
        raise ReportLimit("interval", f"one of {', '.join(INTERVALS)}, got {interval!r}")
    if day_to < day_from:
        raise ReportLimit("to", f"{day_to} is before from ({day_from})")
    days = (day_to - day_from).days + 1
    if days > MAX_DAYS[interval]:
        raise ReportLimit("to", f"at most {MAX_DAYS[interval]} days at interval {interval}, "
                                f"asked for {days}")
    step = INTERVALS[interval]
    starts: list[float] = []
    for n in range(days):
        d = day_from + timedelta(days=n)
        start, end = _midnight(d, zone), _midnight(d + timedelta(days=1), zone)
        if interval == "1d":
            starts.append(start)
            continue
        k = 0
        while start + k * step < end - 1e-6:
            starts.append(start + k * step)
            k += 1
    return Span(starts[0], _midnight(day_to + timedelta(days=1), zone), starts, zone)


def check_size(db: str | Path, span: Span, max_events: int | None = None) -> int:
    """The number of logged events in the span; ReportLimit over ``max_events``
    (default ``MAX_EVENTS``)."""
    max_events = MAX_EVENTS if max_events is None else max_events
    conn = read_only(db)
    try:
        n = conn.execute(_COUNT_SQL, (span.t_from, span.t_to)).fetchone()[0]
    finally:
        conn.close()
    if n > max_events:
        raise ReportLimit("to", f"the span holds {n} events, more than the {max_events} one "
                                "request may replay; ask for fewer days")
    return n


def interval_rows(db: str | Path, span: Span, queue: str | None = None, *,
                  thresholds: Any = (20.0,), short_abandon: Any = 5.0,
                  members: Mapping[str, Iterable[str]] | None = None) -> list[dict[str, Any]]:
    """One row per queue and interval: the wallboard's K plus the report's extras."""
    rows = report(db, span.t_from, span.t_to, queue=queue, interval=span.starts[1:],
                  thresholds=thresholds, short_abandon=short_abandon, members=members)
    return [_interval_row(r, span) for r in rows]


def _interval_row(r: ReportRow, span: Span) -> dict[str, Any]:
    k = r.kpis()
    figures = kpi_figures(r.tally)
    occupancy = k["occupancy"]
    return {"start": span.iso(r.start), "end": span.iso(r.end), "start_epoch": r.start,
            "end_epoch": r.end, "queue": r.queue, **figures,
            "exited_by_reason": dict(r.tally.exited),
            "occupancy": None if math.isnan(occupancy) else occupancy,
            "transfers": r.transfers, "holds": r.holds, "hold_seconds": r.hold_time,
            "surveys": r.surveys, "satisfied": r.satisfied}


@dataclass
class _AgentRow:
    handled: int = 0
    talk: float = 0.0
    wrap_up: float = 0.0
    busy: float = 0.0
    idle: float = 0.0
    paused: float = 0.0
    offers: int = 0
    missed: int = 0
    pause_by_reason: dict[str, float] = field(default_factory=dict)


class AgentTimes:
    """The replay's observer (``report.KpiReplay``): per agent and interval,
    handled calls, talk and wrap-up, and time busy, idle and paused (by
    reason), split at the interval edges."""

    def __init__(self, starts: Sequence[float], t_to: float, queue: str | None = None):
        self.starts, self.t_to, self.queue = list(starts), t_to, queue
        self.rows: dict[tuple[str, int], _AgentRow] = {}
        self._state: dict[str, tuple[str | None, float, str]] = {}   # state, since, reason
        self._pause_reason: dict[str, str] = {}

    def _row(self, name: str, t: float) -> _AgentRow:
        k = max(0, bisect_right(self.starts, t) - 1)
        return self.rows.setdefault((name, k), _AgentRow())

    def agent_event(self, name: str, state: str | None, kind: str | None, queue: str | None,
                    reason: str | None, t: float) -> None:
        if kind == "PAUSE":
            self._pause_reason[name] = reason or "paused"
        if self.queue is None or queue == self.queue:
            if kind == "OFFER":
                self._row(name, t).offers += 1
            elif kind == "RINGNOANSWER":
                self._row(name, t).missed += 1
        self._close(name, t)
        self._state[name] = (state, t, self._pause_reason.get(name, "paused"))

    def handled(self, name: str, queue: str, talk: float, wrap_up: float, t: float) -> None:
        row = self._row(name, t)
        row.handled += 1
        row.talk += talk
        row.wrap_up += wrap_up

    def close(self) -> None:
        for name in list(self._state):
            self._close(name, self.t_to)

    def _close(self, name: str, t: float) -> None:
        """Adds the agent's time in its state since the last change, interval by interval."""
        state, since, reason = self._state.get(name, (None, t, ""))
        if state is None or t <= since:
            return
        k = max(0, bisect_right(self.starts, since) - 1)
        while since < t:
            edge = self.starts[k + 1] if k + 1 < len(self.starts) else self.t_to
            upto = min(t, edge)
            row = self.rows.setdefault((name, k), _AgentRow())
            dt = upto - since
            setattr(row, state, getattr(row, state) + dt)
            if state == "paused":
                row.pause_by_reason[reason] = row.pause_by_reason.get(reason, 0.0) + dt
            since, k = upto, k + 1
            if k >= len(self.starts):
                break
        self._state[name] = (state, t, reason)


def agent_rows(db: str | Path, span: Span, queue: str | None = None, *,
               members: Mapping[str, Iterable[str]] | None = None) -> list[dict[str, Any]]:
    """One row per agent and interval in which it was logged in or handled
    a call.  With ``queue``: the calls of that queue and the agents serving
    it (``members``, else those the log shows in it); state times are the
    agent's whole time, whatever queue its calls came from."""
    # A span reaching into the future (today) counts states up to now, not
    # to the end of the day: an agent logged in seconds ago was idle seconds.
    times = AgentTimes(span.starts, min(span.t_to, time.time()), queue)
    report(db, span.t_from, span.t_to, queue=queue, interval=span.starts[1:],
           members=members, observer=times)
    times.close()
    wanted = None
    if queue is not None and members is not None:
        wanted = set(members.get(queue, ()))
    ends = span.ends()
    out = []
    for (name, k), row in sorted(times.rows.items(), key=lambda item: (item[0][1], item[0][0])):
        if wanted is not None and name not in wanted:
            continue
        if not (row.handled or row.busy or row.idle or row.paused or row.offers):
            continue
        handle = row.talk + row.wrap_up
        staffed = row.busy + row.idle
        out.append({"start": span.iso(span.starts[k]), "end": span.iso(ends[k]),
                    "start_epoch": span.starts[k], "end_epoch": ends[k], "agent": name,
                    "queue": queue, "handled": row.handled, "talk_seconds": row.talk,
                    "wrap_up_seconds": row.wrap_up,
                    "aht": handle / row.handled if row.handled else None,
                    "busy_seconds": row.busy, "idle_seconds": row.idle,
                    "pause_seconds": row.paused, "pause_by_reason": dict(row.pause_by_reason),
                    "logged_in_seconds": row.busy + row.idle + row.paused,
                    "offers": row.offers, "missed": row.missed,
                    "occupancy": row.busy / staffed if staffed > 0 else None})
    return out


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text that starts like a
    formula gets a leading apostrophe (OWASP's CSV injection advice)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_CSV_TRIGGERS):
        return "'" + value
    return value


def _flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                flat[f"{key}_{sub}"] = v
        else:
            flat[key] = value
    return flat


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV; nested figures become columns (``service_level_offered:20``)."""
    flats = [_flatten(r) for r in rows]
    columns: dict[str, None] = {}
    for flat in flats:
        columns.update(dict.fromkeys(flat))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[_cell(c) for c in columns], lineterminator="\r\n",
                            restval="")
    writer.writeheader()
    for flat in flats:
        writer.writerow({_cell(k): _cell(v) for k, v in flat.items()})
    return out.getvalue()
