"""An outbox: notifications owed, kept until they are delivered.

A store (voicemail, fax) keeps one in its own database.  Rows are added
inside the transaction that files the item they announce (a voicemail
message, a received fax), so a filed item always has its notifications and
a crash cannot leave one without the other; an
:class:`sipagent.store.outbox_notifier.OutboxNotifier` drains them.  A
delivered row is deleted; one given up on stays with state ``failed`` and
its last error, for an operator to see.

With PostgreSQL every node drains the one outbox, and two nodes reading
the same due row would both send it: a node first *claims* a row
(:meth:`Outbox.claim`, its ``next_at`` pushed ``CLAIM_LEASE`` ahead, which
only one node's update can do) and only then sends it.  A node that dies
mid-send leaves the row to come due again when the lease runs out.  With
SQLite (one engine) there is nobody to race and no claim is taken.

The columns keep the names voicemail gave them first: ``message_id`` holds
the item's id (a message's or a fax's) and ``box`` its scope (a mailbox
number, or ``fax``).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Callable, Iterable

from sipagent.store.database import Database

#: Part of the first migration of each store that keeps an outbox.
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, box TEXT NOT NULL,
    channel TEXT NOT NULL, target TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending', last_error TEXT,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""


# How long a claimed row is a node's own (module doc): longer than any one
# attempt (the mail server's and the webhook's timeouts).
CLAIM_LEASE = 600.0


@dataclasses.dataclass(frozen=True)
class Notification:
    id: int
    item_id: str                 # a voicemail message's id, a fax's id
    scope: str                   # what the item is in: a mailbox number, or "fax"
    channel: str                 # email, webhook
    target: str                  # JSON list of addresses, or a URL
    attempts: int


class Outbox:
    def __init__(self, db: Database, clock: Callable[[], float]):
        self._db, self._clock = db, clock

    def queue(self, item_id: str, scope: str, emails: Iterable[str],
              webhook: str | None) -> None:
        """Inside the caller's transaction (the one that files the item)."""
        now = self._clock()
        emails = list(emails)
        targets = ([("email", json.dumps(emails))] if emails else []) + \
            ([("webhook", webhook)] if webhook else [])
        for channel, target in targets:
            self._db.execute("INSERT INTO outbox (message_id, box, channel, target, next_at, "
                             "created) VALUES (?, ?, ?, ?, ?, ?)",
                             (item_id, scope, channel, target, now, now))

    def due(self, now: float, limit: int = 20) -> list[Notification]:
        rows = self._db.read("SELECT id, message_id, box, channel, target, attempts FROM outbox "
                             "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
                             (now, limit))
        return [Notification(*r) for r in rows]

    def next_at(self) -> float | None:
        return self._db.read("SELECT min(next_at) FROM outbox WHERE state = 'pending'")[0][0]

    def pending(self) -> int:
        return self._db.read("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]

    def rows(self, state: str = "pending") -> list[tuple]:
        """(id, item id, channel, attempts, last error) in ``state``."""
        return self._db.read("SELECT id, message_id, channel, attempts, last_error FROM outbox "
                             "WHERE state = ? ORDER BY id", (state,))

    def claim(self, nid: int, now: float) -> bool:
        """Make the due row ``nid`` this node's to send (module doc): False
        if another node claimed it, or it is gone, first."""
        if self._db.dialect == "sqlite":
            return True
        return self._db.write("UPDATE outbox SET next_at = ? WHERE id = ? AND state = 'pending'"
                              " AND next_at <= ?", (now + CLAIM_LEASE, nid, now)) == 1

    def done(self, nid: int) -> None:
        self._db.write("DELETE FROM outbox WHERE id = ?", (nid,))

    def retry(self, nid: int, next_at: float, error: str) -> None:
        self._db.write("UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? "
                       "WHERE id = ?", (next_at, error[:500], nid))

    def gave_up(self, nid: int, error: str) -> None:
        self._db.write("UPDATE outbox SET attempts = attempts + 1, state = 'failed', "
                       "last_error = ? WHERE id = ?", (error[:500], nid))
