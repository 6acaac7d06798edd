"""Which node delivers a webhook subscription: exactly one at a time.

With several engines on one PostgreSQL database, every node reads the same
event sequence, and each would POST every event to every subscription.  A
subscription is delivered by the node that holds its *claim*: a
session-level advisory lock (``pg_try_advisory_lock``) taken on a
connection kept for nothing else.  PostgreSQL itself decides who holds it,
so there is no home-made election; and it ends with the session: when the
holding node dies (its connection closes, or the server's TCP keepalives
find it gone), the lock is released and another node, trying every few
seconds, takes it and continues from the cursor the last holder saved in
the shared ``webhooks`` store.

A holder that loses its connection loses its claims with it (:meth:`alive`,
called every second by the deliverer, finds out); it stops before its next
POST.  Between the moment the server let go and the moment the old holder
notices, both may send: delivery is at least once (with the same
``webhook-id``), never "at most".

In SQLite (one engine owns the data directory) there is nobody to share
with: :class:`SoleClaims` grants every claim.
"""
from __future__ import annotations

import threading
import zlib

import psycopg
import structlog

__all__ = ["SoleClaims", "PostgresClaims", "claim_key"]

log = structlog.get_logger("sipagent.store.webhook_claims")

# The two-key form of the advisory locks (its own key space, apart from the
# stores' one-key write locks): class = this, object = the subscription's.
CLAIM_CLASS = 0x5E6B0001


def claim_key(name: str) -> int:
    """A subscription's lock key: a stable signed 32-bit number."""
    key = zlib.crc32(f"webhook:{name}".encode())
    return key - (1 << 32) if key >= 1 << 31 else key


class SoleClaims:
    """One engine, one process: every subscription is this node's."""

    def try_claim(self, name: str) -> bool:
        return True

    def holds(self, name: str) -> bool:
        return True

    def alive(self) -> bool:
        return True

    def release(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresClaims:
    """Claims as advisory locks of one dedicated session (module doc).
    Blocking: call from a worker thread, except :meth:`holds`."""

    def __init__(self, url: str, *, timeout: float = 5.0, keepalive: int = 5):
        self.url = url
        self.timeout = timeout
        self.keepalive = keepalive
        self._conn: psycopg.Connection | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            # The server's keepalives end the session of a node that vanished
            # without closing it (a power cut), and with it its claims.
            k = self.keepalive
            self._conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.timeout)),
                keepalives=1, keepalives_idle=k, keepalives_interval=1, keepalives_count=3,
                options=(f"-c tcp_keepalives_idle={k} -c tcp_keepalives_interval=1"
                         f" -c tcp_keepalives_count=3 -c statement_timeout="
                         f"{int(self.timeout * 1000)}"))
        return self._conn

    def _lost(self, error: Exception) -> None:
        # The session is gone, and with it every lock it held.
        if self._held:
            log.warning("webhook claims lost with their database session",
                        subscriptions=sorted(self._held), error=str(error))
        self._held.clear()
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def try_claim(self, name: str) -> bool:
        """True if this node holds ``name`` now (it may have before)."""
        with self._lock:
            if name in self._held:
                return True
            try:
                got = self._connection().execute(
                    "SELECT pg_try_advisory_lock(%s, %s)",
                    (CLAIM_CLASS, claim_key(name))).fetchone()[0]
            except psycopg.Error as exc:
                self._lost(exc)
                return False
            if got:
                self._held.add(name)
            return bool(got)

    def holds(self, name: str) -> bool:
        """As far as this node knows (no round trip: see :meth:`alive`)."""
        return name in self._held

    def alive(self) -> bool:
        """Whether the session behind the claims still lives; when it does
        not, every claim is dropped."""
        with self._lock:
            if self._conn is None:
                return True
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error as exc:
                self._lost(exc)
                return False
            return True

    def release(self, name: str) -> None:
        with self._lock:
            if name not in self._held:
                return
            self._held.discard(name)
            try:
                self._connection().execute("SELECT pg_advisory_unlock(%s, %s)",
                                           (CLAIM_CLASS, claim_key(name)))
            except psycopg.Error as exc:
                self._lost(exc)

    def close(self) -> None:
        """Ends the session: every claim is released at once."""
        with self._lock:
            self._held.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
