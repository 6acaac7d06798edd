"""Today's and the last quarter hour's KPIs per queue, for the wallboard.

Theory of operation
-------------------
The wallboard is fetched again after every relevant event, so it must cost
next to nothing, and its figures must be the ones ``sipacd report`` gives
for the same span.  Both come from one choice: the counters are the
report's own replay (``report.KpiReplay``) of the event log, kept open for
the day and fed only the rows written since the last read:

* the first read of a day (at start, and at each local midnight of the
  console's time zone) replays that day's rows since its midnight, after
  rebuilding each agent's state at midnight the way the report does
  (``agent_seed``): a restart mid-day keeps today's figures;
* every later read asks the log for rows with an id above the last one
  seen (the primary key: an index walk of the few new rows) and feeds them;
* each count goes into the day's tally and into a one-minute bin; "last
  15 minutes" sums the bins of the current minute and the 14 before it
  (from the previous day's replay too, just after midnight), so its span
  is ``[minute start - 14 min, now)``; both spans are in the answer.

The log's writer commits in batches every half second; the HTTP route
flushes it first so the figures include the event that made the console
ask.  A lock serialises readers: the route calls from a worker thread.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from acdcore.kpi import QueueTally
from acdcore.service_level import ServiceLevelVariant
from sipagent.store.eventlog import read_only
from sipagent.store.report import (DEFAULT_SHORT_ABANDON, DEFAULT_THRESHOLDS, EVENT_COLUMNS,
                                   KpiReplay, ReportRow, agent_seed)

__all__ = ["DayCounters", "kpi_figures", "local_day", "BIN", "RECENT_BINS"]

BIN = 60.0            # seconds per bin of the recent window
RECENT_BINS = 15      # the current minute and the 14 before it
_DAY_SQL = (f"SELECT {EVENT_COLUMNS} FROM event WHERE t >= ? AND t < ? AND id <= ?"
            " ORDER BY t, id")
_TAIL_SQL = f"SELECT {EVENT_COLUMNS} FROM event WHERE id > ? ORDER BY id"


def local_day(t: float, zone: ZoneInfo) -> tuple[float, float]:
    """The local calendar day holding ``t``: its midnight and the next one
    (23 or 25 hours apart across a DST change)."""
    date = datetime.fromtimestamp(t, zone).date()
    start = datetime(date.year, date.month, date.day, tzinfo=zone)
    nxt = date + timedelta(days=1)
    return start.timestamp(), datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def kpi_figures(tally: QueueTally) -> dict[str, Any]:
    """The wallboard's K: counts, abandon rate, every SL variant at every
    threshold (``"offered:20"``), ASA and AHT; null where nothing counted."""
    sl = {f"{v.value}:{t:g}": _finite(tally.service_level(t, v))
          for t in tally.service_thresholds for v in ServiceLevelVariant}
    return {"offered": tally.offered, "answered": tally.answered.count,
            "abandoned": tally.abandoned.count, "short_abandoned": tally.short_abandoned,
            "exited": sum(tally.exited.values()), "handled": tally.handled,
            "abandon_rate": _finite(tally.abandon_rate()),
            "abandon_rate_excluding_short": _finite(tally.abandon_rate(exclude_short=True)),
            "answer_rate": _finite(tally.answer_rate),
            "service_level": sl, "asa": _finite(tally.asa), "aht": _finite(tally.aht)}


class _Tee:
    """Counts into the day's tally and the minute's at once."""
    __slots__ = ("a", "b")

    def __init__(self, a: QueueTally, b: QueueTally):
        self.a, self.b = a, b

    def call_offered(self) -> None:
        self.a.call_offered()
        self.b.call_offered()

    def call_answered(self, wait: float) -> None:
        self.a.call_answered(wait)
        self.b.call_answered(wait)

    def call_abandoned(self, wait: float) -> None:
        self.a.call_abandoned(wait)
        self.b.call_abandoned(wait)

    def call_exited(self, reason: str) -> None:
        self.a.call_exited(reason)
        self.b.call_exited(reason)

    def call_handled(self, talk: float, wrap_up: float = 0.0) -> None:
        self.a.call_handled(talk, wrap_up)
        self.b.call_handled(talk, wrap_up)


class _DayReplay(KpiReplay):
    """The report's replay over one local day, counting per queue into a
    day tally and one-minute bins instead of fixed report rows."""

    def setup(self) -> None:
        self.day = {q: self._tally(q) for q in self.queues}
        self.bins: dict[tuple[str, int], ReportRow] = {}

    def _tally(self, q: str) -> QueueTally:
        return QueueTally(self.thresholds.get(q, DEFAULT_THRESHOLDS),
                          self.short_abandon.get(q, DEFAULT_SHORT_ABANDON))

    def row(self, queue: str | None, t: float) -> ReportRow | None:
        if queue not in self.day or not self.t_from <= t < self.t_to:
            return None
        k = math.floor(t / BIN)
        out = self.bins.get((queue, k))
        if out is None:
            tee = _Tee(self.day[queue], self._tally(queue))
            out = ReportRow(queue, k * BIN, (k + 1) * BIN, tee)
            self.bins[(queue, k)] = out
        return out

    def recent(self, queue: str, k_now: int, into: QueueTally) -> None:
        for k in range(k_now - RECENT_BINS + 1, k_now + 1):
            out = self.bins.get((queue, k))
            if out is not None:
                into += out.tally.b


class DayCounters:
    """``figures()``: per queue, today's K and the last 15 minutes' K.

    ``queues`` maps each queue to its SL thresholds and short-abandon
    threshold; ``clock`` gives epoch seconds (tests move it past midnight).
    """

    def __init__(self, db_path: str | Path, zone: ZoneInfo,
                 queues: Mapping[str, tuple[Sequence[float], float]],
                 clock: Callable[[], float] = time.time):
        self.db_path = db_path       # the log's file, or its PostgreSQL URL
        self.zone = zone
        self.thresholds = {q: tuple(sl) for q, (sl, _) in queues.items()}
        self.short_abandon = {q: float(short) for q, (_, short) in queues.items()}
        self.clock = clock
        self._lock = threading.Lock()
        self._day: _DayReplay | None = None
        self._previous: _DayReplay | None = None
        self._last_id = 0
        self.rows_read = 0          # rows fed since construction (for tests and benchmarks)

    def figures(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        with self._lock:
            conn = read_only(self.db_path)
            try:
                self._catch_up(conn, now)
            finally:
                conn.close()
            day = self._day
            k_now = math.floor(now / BIN)
            out = {}
            for q in day.queues:
                recent = day._tally(q)
                day.recent(q, k_now, recent)
                if self._previous is not None:
                    self._previous.recent(q, k_now, recent)
                out[q] = {"today": {**kpi_figures(day.day[q]), "from": day.t_from, "to": now},
                          "last_15m": {**kpi_figures(recent),
                                       "from": (k_now - RECENT_BINS + 1) * BIN, "to": now}}
            return {"day_start": day.t_from, "day_end": day.t_to, "queues": out}

    # -- reading the log ---------------------------------------------------------
    def _catch_up(self, conn, now: float) -> None:
        if self._day is None:
            self._last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM event").fetchone()[0]
            self._day = self._open_day(conn, now)
            return
        if now >= self._day.t_to:
            # The new day starts from the rows already read; the tail then
            # goes to both days, each counting what falls inside it.
            self._previous = self._day
            self._day = self._open_day(conn, now)
        self._feed_tail(conn)
        if self._previous is not None and now >= self._previous.t_to + RECENT_BINS * BIN:
            self._previous = None

    def _feed_tail(self, conn) -> None:
        rows = conn.execute(_TAIL_SQL, (self._last_id,)).fetchall()
        for r in rows:
            self._day.event(r)
            if self._previous is not None:
                self._previous.event(r)
        if rows:
            self._last_id = rows[-1][0]
            self.rows_read += len(rows)

    def _open_day(self, conn, now: float) -> _DayReplay:
        """The day holding ``now``, replayed from the log's rows up to the last one read."""
        start, end = local_day(now, self.zone)
        last_id = self._last_id
        agents, seed = agent_seed(conn, start)
        day = _DayReplay([start], end, list(self.thresholds), self.thresholds,
                         self.short_abandon, {}, agents)
        day.setup()
        for r in seed:
            if r[0] <= last_id:      # later rows come with the tail
                day.event(r)
        day.open_window()
        rows = conn.execute(_DAY_SQL, (start, end, last_id)).fetchall()
        for r in rows:
            day.event(r)
        self.rows_read += len(rows)
        return day
