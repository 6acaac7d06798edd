"""The durable event log: queue and agent events, call records, survey answers.

One SQLite file (WAL, ``synchronous=NORMAL``) in the data directory, or,
with ``[data] database``, the ``eventlog`` tables in PostgreSQL, written by
every node of a cluster (``eventlog_schema``).  The log is append-only
facts, readable like Asterisk's queue_log; ``report`` derives every KPI
from it alone, so what was logged is what was measured.

The kinds of event, what each must carry and the checks are ``event_kinds``.

Several nodes, one log
----------------------
On PostgreSQL each row and call record carries the writing ``node``, and
each node stamps its own heartbeat, so a node's close-out ends only what
that node left open.  A batch commits under the store's advisory lock
(``postgres``), so row ids grow in commit order across nodes: a reader
that follows the log by id never skips a row committed late.  ``numbering``
lets a table's rows take their numbers inside that locked transaction (the
public stream's sequence, ``event_stream``).

Why a writer thread
-------------------
A commit costs little in WAL with synchronous=NORMAL, but a checkpoint
fsyncs, and that can stall for tens of milliseconds on a busy disk.  The
loop thread therefore only validates a row and appends it to a list; a
writer thread commits the list every ``flush_interval`` seconds or every
``flush_rows`` rows, in one transaction.  A crash loses the rows of the
last half second, never part of a batch: SQLite commits a transaction
whole or not at all.  Only plain values cross the thread (``data`` is
serialised to JSON before it is queued), never an object of the caller.

The public event stream rides on this log
------------------------------------------
``on_fact`` (when set) sees every fact as it is logged, in the logging
thread: ``("queue"|"agent"|"call", fields)``, the one hook the public
vocabulary is translated from (``event_stream``, ``public_events``).
``append(sql, row, urgent=True)`` queues a stream row; the writer then
waits at most ``urgent_delay`` (not ``flush_interval``) before it commits,
or on a shared log until ``urgent_gap`` after its previous urgent commit,
and calls ``on_commit`` with the urgent rows of each committed batch, in
order, from the writer thread: written first, sent second.

The heartbeat
-------------
With ``heartbeat_interval`` set (the engine sets ``HEARTBEAT_INTERVAL``),
the writer thread stamps the time into the ``node_heartbeat`` row of its
node (``""`` for a log of one writer) whenever that long has passed, in its own tiny commit.  It wakes every
``flush_interval``, so after a crash the last stamp is at most
``heartbeat_interval + flush_interval`` (2.5 s) older than the crash; the
close-out at the next start (``closeout``) ends open calls there, not at
their last event.  The stamp of the previous run is read on open, before
this run writes its own, as ``last_alive``.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import structlog

from sipagent.store.closeout import RESTART, ClosedOut, close_out, last_alive
from sipagent.store.database import Database, Error, OperationalError, StorePlace
from sipagent.store.event_kinds import (AGENT_EVENT_KINDS, NEEDS_AGENT, NEEDS_REASON, NEEDS_WAIT,
                                        QUEUE_EVENT_KINDS, opt_float, opt_str, req_str,
                                        wall_time)
from sipagent.store.eventlog_schema import (EVENT_LOG_FILE, SCHEMA_VERSION, SchemaTooNew, connect,
                                            event_log_path, read_only, source_of)
from sipagent.tasks import name_os_thread

__all__ = ["EventLog", "QUEUE_EVENT_KINDS", "AGENT_EVENT_KINDS", "HEARTBEAT_INTERVAL", "RESTART",
           # re-exported: the file and its schema
           "EVENT_LOG_FILE", "SCHEMA_VERSION", "SchemaTooNew", "connect", "event_log_path",
           "read_only", "source_of"]

log = structlog.get_logger("sipagent.store.eventlog")

#: Seconds between heartbeats of a running engine (see the module doc).
HEARTBEAT_INTERVAL = 2.0
_BEAT = ("INSERT INTO node_heartbeat (node, t) VALUES (?, ?)"
         " ON CONFLICT (node) DO UPDATE SET t = excluded.t")
_INSERT_EVENT = ("INSERT INTO event (t, kind, queue, call_id, agent, wait, position, reason, data,"
                 " node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# One constant statement for every upsert: a field passed as NULL keeps its
# stored value, so each moment of a call fills in what it knows.
_UPSERT_CALL = (
    'INSERT INTO call_record (call_id, start, answer, "end", caller, called, queue, agent,'
    ' outcome, wait, talk, wrap_up, hangup_side, caller_name, updated, node)'
    ' VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
    ' ON CONFLICT (call_id) DO UPDATE SET ' + ", ".join(
        f'{c} = COALESCE(excluded.{c}, call_record.{c})'
        for c in ("start", "answer", '"end"', "caller", "called", "queue", "agent", "outcome",
                  "wait", "talk", "wrap_up", "hangup_side", "caller_name", "node"))
    + ', updated = excluded.updated'
)
# The agent desktop's after-call code; the record exists from the call's start.
_SET_DISPOSITION = ('UPDATE call_record SET disposition = ?, disposition_note = ?, updated = ?'
                    ' WHERE call_id = ?')
_INSERT_SURVEY = ("INSERT INTO survey_answer (t, call_id, queue, score, scale)"
                  " VALUES (?, ?, ?, ?, ?)")
# Statements on one table whose rows depend on each other's order; every
# other statement only appends to its own table.
_IN_ORDER = frozenset({_UPSERT_CALL, _SET_DISPOSITION})


class EventLog:
    """The writer of the log.  Every method returns at once; see the module doc."""

    def __init__(self, where: StorePlace | str | Path, *, flush_interval: float = 0.5,
                 flush_rows: int = 200, busy_timeout: float = 5.0, max_pending: int = 200_000,
                 heartbeat_interval: float | None = None, node: str | None = None) -> None:
        """``where``: a place (the engine's), or the SQLite file's path."""
        #: What readers open (``read_only``): the file's path, or the URL.
        self.source = source_of(where) if isinstance(where, StorePlace) else Path(where)
        #: The SQLite file, or None on PostgreSQL.
        self.path = None if isinstance(self.source, str) else self.source
        #: The writing node (rows, records, heartbeat).  A shared log closes
        #: out by node; a file has one writer and closes out everything.
        self.node = node
        self.flush_interval = float(flush_interval)
        self.flush_rows = int(flush_rows)
        self.max_pending = int(max_pending)
        self.dropped = 0            # rows given up on (bad row, or backlog over max_pending)
        self._db: Database = connect(where, busy_timeout=busy_timeout)
        self.shared = self._db.dialect == "postgresql"
        self.heartbeat_interval = heartbeat_interval
        # The previous run's last heartbeat, read before ours is written.
        self.last_alive = last_alive(self._db, node or "")
        #: sql -> f(db, rows) -> rows: numbers a table's rows in the commit
        #: (module doc); set by the public stream on a shared log.
        self.numbering: dict[str, Callable[[Database, list[tuple]], list[tuple]]] = {}
        self._beat_at = 0.0
        self._pending: list[tuple[str, tuple]] = []
        self._queued = 0            # rows ever queued
        self._written = 0           # rows ever committed (or dropped): flush() waits on it
        self._closing = False
        self._flush_wanted = False
        self.on_fact: Callable[[str, dict], None] | None = None   # see the module doc
        self.on_commit: Callable[[list[tuple]], None] | None = None
        # On a shared log an event also crosses PostgreSQL's NOTIFY to the
        # other nodes; a shorter gathering keeps it as quick to arrive there
        # (benchmarks/cluster_events.py: p50 52 ms at 50 ms, 14 ms at 10 ms).
        self.urgent_delay = 0.01 if self.shared else 0.05
        # ... but under load, one node's urgent commits come no closer than
        # this: each costs the writer and every node's follower a round of
        # Python and round trips whatever it holds, so a node that committed
        # every 10 ms cost more per call than one that gathers twice the
        # calls (benchmarks/cluster_cpu.py).  Two nodes commit twice as
        # often as one carrying the same calls; at 50 ms that is 20 more
        # commits a second, about 5 ms of CPU (250 us each), and an event
        # waits at most 50 ms more under load.
        self.urgent_gap = 0.05 if self.shared else 0.0
        self._committed_at = 0.0     # monotonic, the last urgent commit's start
        self._urgent_sql: set[str] = set()
        self._urgent_at: float | None = None     # monotonic time of the oldest urgent row
        self._cond = threading.Condition()
        self._writer = threading.Thread(target=self._write_loop, name="eventlog-writer",
                                        daemon=True)
        self._writer.start()

    # -- what the runtime calls -------------------------------------------------
    def queue_event(self, t_wall: float, queue: str, call_id: str, kind: str, agent: str | None = None,
                    wait: float | None = None, position: int | None = None,
                    reason: str | None = None, data: Mapping[str, Any] | None = None) -> None:
        if kind not in QUEUE_EVENT_KINDS:
            raise ValueError(f"unknown queue event kind {kind!r}")
        if kind in NEEDS_AGENT and not agent:
            raise ValueError(f"{kind} needs the agent")
        if kind in NEEDS_REASON and not reason:
            raise ValueError(f"{kind} needs a reason")
        if kind in NEEDS_WAIT and wait is None:
            raise ValueError(f"{kind} needs the wait")
        row = (wall_time(t_wall), kind, req_str("queue", queue), req_str("call_id", call_id),
               opt_str("agent", agent), opt_float("wait", wait),
               None if position is None else int(position), opt_str("reason", reason),
               None if data is None else json.dumps(dict(data), default=str,
                                                     ensure_ascii=False), self.node)
        self._queue(_INSERT_EVENT, row)
        if self.on_fact is not None:
            self._tell("queue", {"kind": kind, "t": row[0], "queue": queue, "call_id": call_id,
                                 "agent": agent, "wait": row[5], "position": row[6],
                                 "reason": reason, "data": dict(data or {})})

    def agent_event(self, t_wall: float, agent: str, kind: str, queue: str | None = None,
                    reason: str | None = None, call_id: str | None = None) -> None:
        if kind not in AGENT_EVENT_KINDS:
            raise ValueError(f"unknown agent event kind {kind!r}")
        row = (wall_time(t_wall), kind, opt_str("queue", queue), opt_str("call_id", call_id),
               req_str("agent", agent), None, None, opt_str("reason", reason), None, self.node)
        self._queue(_INSERT_EVENT, row)
        if self.on_fact is not None:
            self._tell("agent", {"kind": kind, "t": row[0], "agent": agent, "queue": queue,
                                 "reason": reason, "call_id": call_id})

    def call_record(self, call_id: str, *, start: float | None = None, answer: float | None = None,
                    end: float | None = None, caller: str | None = None,
                    called: str | None = None, queue: str | None = None,
                    agent: str | None = None, outcome: str | None = None,
                    wait: float | None = None, talk: float | None = None,
                    wrap_up: float | None = None, hangup_side: str | None = None,
                    caller_name: str | None = None, t_wall: float | None = None) -> None:
        """Create or complete the call's record (CDR); fields left None keep their value.

        ``outcome``: ``answered``, ``abandoned``, the EXIT reason (``timeout``,
        ``voicemail``...), ``ivr`` for a call that never queued, or
        ``outbound``/``outbound_<result>`` for a click-to-call;
        ``hangup_side``: ``caller``, ``agent`` or ``system``; ``caller_name``:
        the From display name (caller-supplied text).  Times are wall clock;
        ``wait``, ``talk`` and ``wrap_up`` are durations in seconds.
        """
        row = (req_str("call_id", call_id), opt_float("start", start),
               opt_float("answer", answer), opt_float("end", end),
               opt_str("caller", caller), opt_str("called", called),
               opt_str("queue", queue), opt_str("agent", agent),
               opt_str("outcome", outcome), opt_float("wait", wait),
               opt_float("talk", talk), opt_float("wrap_up", wrap_up),
               opt_str("hangup_side", hangup_side), opt_str("caller_name", caller_name),
               time.time() if t_wall is None else wall_time(t_wall), self.node)
        self._queue(_UPSERT_CALL, row)
        if self.on_fact is not None:
            self._tell("call", {"call_id": call_id, "start": row[1], "answer": row[2],
                                "end": row[3], "caller": caller, "called": called,
                                "queue": queue, "agent": agent, "outcome": outcome,
                                "wait": row[9], "hangup_side": hangup_side,
                                "caller_name": caller_name, "t": row[14]})

    def disposition(self, call_id: str, code: str, note: str | None = None, *,
                    t_wall: float | None = None) -> None:
        """The agent's disposition of the call (``[desktop] dispositions``) and
        its note, on the call's record; a later one replaces it."""
        self._queue(_SET_DISPOSITION, (req_str("code", code), opt_str("note", note),
                                       time.time() if t_wall is None else wall_time(t_wall),
                                       req_str("call_id", call_id)))

    def survey_answer(self, call_id: str, score: int, scale: int, *, t_wall: float | None = None,
                      queue: str | None = None) -> None:
        """A post-call survey answer, ``score`` in 1..``scale``."""
        score, scale = int(score), int(scale)
        if scale < 2 or not 1 <= score <= scale:
            raise ValueError(f"survey score {score} is not in 1..{scale}")
        row = (time.time() if t_wall is None else wall_time(t_wall), req_str("call_id", call_id),
               opt_str("queue", queue), score, scale)
        self._queue(_INSERT_SURVEY, row)

    def append(self, sql: str, row: tuple, *, urgent: bool = False) -> None:
        """Queue a row for another table of this file (the public event
        stream's); ``urgent``: commit within ``urgent_delay`` and pass it to
        ``on_commit`` once committed (module doc)."""
        if not urgent:
            self._queue(sql, row)
            return
        with self._cond:
            self._urgent_sql.add(sql)
            wake = self._urgent_at is None
            if wake:
                self._urgent_at = time.monotonic()
            self._queue(sql, row)
            if wake:
                self._cond.notify_all()

    def _tell(self, source: str, fact: dict) -> None:
        try:
            self.on_fact(source, fact)
        except Exception:   # the fact is logged; its public event must not undo that
            log.exception("public event not derived", source=source, kind=fact.get("kind"))

    def close_dangling(self, reason: str = RESTART) -> ClosedOut:
        """After a crash: end what the previous run left open (``closeout``):
        this node's, on a shared log.  Call it once at start, before any call
        or login is logged; it reads the log, so it blocks briefly."""
        return close_out(self, reason, self.last_alive,
                         node=self.node if self.shared else None)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until everything queued so far is committed; False on timeout."""
        with self._cond:
            target = self._queued
            self._flush_wanted = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._written >= target or not self._writer.is_alive(),
                                       timeout)

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._writer.join()
        self._beat(force=True)
        if not self.shared:
            try:
                # Fold the WAL back so the file is whole on its own (backups, copies).
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except Error as exc:
                log.warning("event log checkpoint failed", error=str(exc))
        self._db.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread --------------------------------------------------------
    def _queue(self, sql: str, row: tuple) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("event log is closed")
            self._pending.append((sql, row))
            self._queued += 1
            if len(self._pending) > self.max_pending:
                # The disk has been failing for a long while: keep the newest.
                del self._pending[0]
                self.dropped += 1
                self._written += 1
            if len(self._pending) >= self.flush_rows:
                self._cond.notify_all()

    def _write_loop(self) -> None:
        name_os_thread("eventlog-writer")
        while True:
            with self._cond:
                due = lambda: (self._closing or self._flush_wanted  # noqa: E731
                               or len(self._pending) >= self.flush_rows)
                self._cond.wait_for(lambda: due() or self._urgent_at is not None,
                                    self.flush_interval)
                if self._urgent_at is not None:   # gather the burst, briefly
                    self._cond.wait_for(due, max(self._urgent_at + self.urgent_delay,
                                                 self._committed_at + self.urgent_gap)
                                        - time.monotonic())
                    self._committed_at = time.monotonic()
                self._urgent_at = None
                batch, self._pending = self._pending, []
                self._flush_wanted = False
                closing = self._closing
            retry = self._commit(batch) if batch else []
            if self.on_commit is not None and self._urgent_sql and len(retry) < len(batch):
                # _commit's retry is always a tail of the batch
                committed = [row for sql, row in batch[:len(batch) - len(retry)]
                             if sql in self._urgent_sql]
                if committed:
                    try:
                        self.on_commit(committed)
                    except Exception:
                        log.exception("committed stream rows not passed on")
            with self._cond:
                self._written += len(batch) - len(retry)
                self._pending[:0] = retry
                if retry and closing:
                    log.error("event log closed with rows unwritten", rows=len(self._pending))
                    self.dropped += len(self._pending)
                    self._written += len(self._pending)
                    self._pending.clear()
                self._cond.notify_all()
                if closing and not self._pending:
                    return
            self._beat()
            if retry:
                time.sleep(self.flush_interval)

    def _beat(self, force: bool = False) -> None:
        if self.heartbeat_interval is None:
            return
        now = time.time()
        if not force and now - self._beat_at < self.heartbeat_interval:
            return
        try:
            self._db.execute(_BEAT, (self.node or "", now))
            self._beat_at = now
        except Error as exc:   # the rows' own retry reports a failing disk
            log.debug("heartbeat not written", error=str(exc))

    def _commit(self, batch: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
        """Write one batch in one transaction; returns the rows to retry later."""
        try:
            self._write(batch)
            return []
        except OperationalError as exc:   # locked, disk full, I/O, connection: try again later
            log.error("event log write failed, will retry", error=str(exc), rows=len(batch))
            return batch
        except Error:
            pass
        # A row SQLite refuses (the checks above should make this impossible).
        # Write the others one by one so one bad row does not sink its batch.
        for i, item in enumerate(batch):
            try:
                self._write([item])
            except OperationalError:
                return batch[i:]
            except Error as exc:
                log.error("event log row dropped", error=str(exc), row=repr(item[1])[:200])
                with self._cond:
                    self.dropped += 1
        return []

    def _write(self, batch: list[tuple[str, tuple]]) -> None:
        # Every statement's rows go to one executemany, not one per run of
        # the batch (a call's moment interleaves tables: seven rows were
        # seven runs).  Rows of one table keep their order; a call record's
        # update follows the insert of its row, so those two statements keep
        # their runs in batch order.
        gathered: dict[str, list[tuple]] = {}
        in_order = []
        for sql, row in batch:
            if sql in _IN_ORDER:
                in_order.append((sql, row))
            else:
                gathered.setdefault(sql, []).append(row)
        db = self._db
        with db.transaction(batch=True):
            for sql, rows in gathered.items():
                number = self.numbering.get(sql)
                db.executemany(sql, number(db, rows) if number else rows)
            for sql, run in groupby(in_order, key=itemgetter(0)):
                db.executemany(sql, [row for _, row in run])
