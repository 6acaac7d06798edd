"""Pending callbacks kept, so an engine restart calls every customer back.

``<data>/callbacks.sqlite3`` (WAL, ``synchronous=FULL``: a caller told "we
will call you back at two" must be called back at two) holds one row per
callback request, keyed by its call id.  A row is written when the request
is made and changed as the request moves: it joins its queue (``joined``),
an attempt is made (``attempts``), a retry is due later (``due``), the
shutdown counts its queue outcome (``counted``), and finally it is ``done``
with the ``result`` that was logged in the event log in the same step.
At start the engine reads the rows not done and carries on with them.

The schema is versioned (``MIGRATIONS``, ``sipagent/store/migrations.py``);
a database written by a newer sipacd is refused.  With ``[data] database``
the table lives in PostgreSQL instead (``sipagent/store/postgres.py``).

Writes are small and ordered: :meth:`CallbackStore.later` queues them on one
worker thread (never the event loop; one thread, so a request's rows change
in the order the engine changed them).  ``close`` waits for that queue.
"""
from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

import structlog

from sipagent.store.backends import open_database
from sipagent.store.database import StorePlace, as_place

__all__ = ["CallbackStore", "CallbackRecord", "DB_FILE", "MIGRATIONS"]

log = structlog.get_logger("sipagent.store.callbacks")

DB_FILE = "callbacks.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS callback (
    call_id  TEXT PRIMARY KEY,
    queue    TEXT NOT NULL,
    number   TEXT NOT NULL,
    origin   TEXT NOT NULL CHECK (origin IN ('queue', 'web')),
    due      REAL NOT NULL,          -- wall clock: when it may join the line (or be dialled)
    scheduled INTEGER NOT NULL,      -- 1: a time was chosen (slot or API ``at``)
    entered  REAL NOT NULL,          -- wall clock: when the request was made
    attempts INTEGER NOT NULL DEFAULT 0,
    joined   INTEGER NOT NULL DEFAULT 0,   -- offered (ENTER logged) already
    counted  INTEGER NOT NULL DEFAULT 0,   -- its one queue outcome is logged already
    status   TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    result   TEXT,
    updated  REAL NOT NULL);
CREATE INDEX IF NOT EXISTS callback_pending ON callback (due) WHERE status = 'pending';
"""
#: The schema's versions (``sipagent/store/migrations.py``).
MIGRATIONS = (SCHEMA,)


@dataclass
class CallbackRecord:
    call_id: str
    queue: str
    number: str
    origin: str
    due: float
    scheduled: bool
    entered: float
    attempts: int = 0
    joined: bool = False
    counted: bool = False
    status: str = "pending"
    result: str | None = None


_COLUMNS = tuple(f.name for f in fields(CallbackRecord))


class CallbackStore:
    def __init__(self, data_dir: StorePlace | Path | str):
        self.db = open_database(as_place(data_dir), DB_FILE, "callbacks", MIGRATIONS,
                                timeout=30.0)
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "callback-store")
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._writer.shutdown(wait=True)
        self.db.close()

    # -- blocking calls (start-up, tests, the writer thread) ---------------------------
    def pending(self, queues: Iterable[str] | None = None) -> list[CallbackRecord]:
        """The requests not done, oldest first; only those of ``queues`` if
        given (with PostgreSQL every node's callbacks are in the one table:
        a node carries on with its own partitions' queues only)."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM callback WHERE status = 'pending'"
        args: tuple = ()
        if queues is not None:
            args = tuple(sorted(set(queues)))
            if not args:
                return []
            sql += f" AND queue IN ({', '.join('?' * len(args))})"
        rows = self.db.read(sql + " ORDER BY entered, call_id", args)
        return [CallbackRecord(*row) for row in rows]

    def add(self, record: CallbackRecord) -> None:
        values = tuple(getattr(record, c) for c in _COLUMNS)
        self.db.write(f"INSERT INTO callback ({', '.join(_COLUMNS)}, updated) VALUES "
                      f"({', '.join('?' * (len(_COLUMNS) + 1))})", (*values, time.time()))

    def update(self, call_id: str, **changes) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"not a callback column: {', '.join(sorted(unknown))}")
        sets = ", ".join(f"{k} = ?" for k in changes)
        self.db.write(f"UPDATE callback SET {sets}, updated = ? WHERE call_id = ?",
                      (*changes.values(), time.time(), call_id))

    def done(self, call_id: str, result: str) -> None:
        self.update(call_id, status="done", result=result)

    # -- from the event loop --------------------------------------------------------------
    def later(self, method: str, *args, **kw) -> None:
        """Run ``add``, ``update`` or ``done`` on the writer thread, in order."""
        if self._closed:
            log.error("callback store closed; change not written", method=method, args=args)
            return
        future = self._writer.submit(getattr(self, method), *args, **kw)
        future.add_done_callback(_report_failure)


def _report_failure(future: concurrent.futures.Future) -> None:
    exc = future.exception()
    if exc is not None:
        # The engine goes on; what is lost is the restart-safety of one request.
        log.error("callback store write failed", error=repr(exc),
                  disk=isinstance(exc, sqlite3.Error))
