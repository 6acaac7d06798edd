"""The voicemail outbox: notifications owed, kept until they are delivered.

Rows are added by :meth:`VoicemailStore.deposit` inside the transaction
that files the message (so a filed message always has its notifications,
and a crash cannot leave one without the other) and drained by
:class:`sipagent.voicemail.notify.VoicemailNotifier`.  A delivered row is
deleted; one given up on stays with state ``failed`` and its last error, for
an operator to see.  The table lives in the voicemail database.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from typing import Callable, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, box TEXT NOT NULL,
    channel TEXT NOT NULL, target TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending', last_error TEXT,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""


@dataclasses.dataclass(frozen=True)
class Notification:
    id: int
    message_id: str
    box: str
    channel: str                 # email, webhook
    target: str                  # JSON list of addresses, or a URL
    attempts: int


class Outbox:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock,
                 clock: Callable[[], float]):
        self._db, self._lock, self._clock = db, lock, clock
        with lock:
            db.executescript(SCHEMA)

    def queue(self, message_id: str, box: str, emails: Iterable[str],
              webhook: str | None) -> None:
        """Inside the caller's transaction (the deposit's)."""
        now = self._clock()
        emails = list(emails)
        targets = ([("email", json.dumps(emails))] if emails else []) + \
            ([("webhook", webhook)] if webhook else [])
        for channel, target in targets:
            self._db.execute("INSERT INTO outbox (message_id, box, channel, target, next_at, "
                             "created) VALUES (?, ?, ?, ?, ?, ?)",
                             (message_id, box, channel, target, now, now))

    def due(self, now: float, limit: int = 20) -> list[Notification]:
        rows = self._read("SELECT id, message_id, box, channel, target, attempts FROM outbox "
                          "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
                          (now, limit))
        return [Notification(*r) for r in rows]

    def next_at(self) -> float | None:
        return self._read("SELECT min(next_at) FROM outbox WHERE state = 'pending'")[0][0]

    def pending(self) -> int:
        return self._read("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]

    def rows(self, state: str = "pending") -> list[tuple]:
        """(id, message id, channel, attempts, last error) in ``state``."""
        return self._read("SELECT id, message_id, channel, attempts, last_error FROM outbox "
                          "WHERE state = ? ORDER BY id", (state,))

    def done(self, nid: int) -> None:
        self._write("DELETE FROM outbox WHERE id = ?", (nid,))

    def retry(self, nid: int, next_at: float, error: str) -> None:
        self._write("UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? "
                    "WHERE id = ?", (next_at, error[:500], nid))

    def gave_up(self, nid: int, error: str) -> None:
        self._write("UPDATE outbox SET attempts = attempts + 1, state = 'failed', "
                    "last_error = ? WHERE id = ?", (error[:500], nid))

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
