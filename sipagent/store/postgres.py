"""The store interface on PostgreSQL (``[data] database = "postgresql://…"``).

Every store of every node shares the one database: that is what makes a
cluster one call center (one event log, one sequence of public events, one
set of users, agents, callbacks, voicemail and fax records).  Each store
has a PostgreSQL schema (namespace) named after it, as it has a file of its
own in SQLite, so two stores' tables never clash (voicemail and fax each
keep an ``outbox``).  Each store opens its own connection (psycopg 3,
autocommit) with its schema as the search path, used like the SQLite
backend's: one re-entrant lock per connection, explicit transactions.

The write lock of a store.  SQLite's ``BEGIN IMMEDIATE`` lets one writer of
a file at a time, and the stores rely on it for their read-then-write steps
(a claim, a cancel, "at most N").  Here the same guarantee is a transaction
-scoped advisory lock keyed by the store's name, taken first in every
transaction: writers of one store queue on it, across processes and nodes;
readers never wait.  For the event log it also orders commits: rows are
numbered under the lock, so ids grow in commit order and a reader that saw
row N has seen every row before it (``event_stream``).

Errors come out as the ``sqlite3`` module's DB-API classes
(``database``): a lost connection or a serialisation failure is an
``OperationalError`` ("try again later"), and the next use reconnects.
"""
from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
import zlib
from typing import Any, Iterable, Iterator, Sequence

import psycopg

from sipagent.store.database import Database
from sipagent.store.sql_dialect import query_to_postgres

__all__ = ["PostgresDatabase", "Listener", "store_lock_key", "redacted"]

_STORE_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")

_VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version ("
                  " store TEXT PRIMARY KEY, version BIGINT NOT NULL)")


def store_lock_key(store: str) -> int:
    """The advisory lock of ``store``'s writers: a stable 32-bit number."""
    return zlib.crc32(f"sipacd:{store}".encode())


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def _plain(value: Any) -> Any:
    # The stores keep flags as 0/1 integers (SQLite has no booleans);
    # PostgreSQL refuses a boolean parameter for a BIGINT column.
    return int(value) if isinstance(value, bool) else value


def _args(args: Sequence[Any]) -> tuple:
    return tuple(_plain(a) for a in args)


@contextlib.contextmanager
def _as_dbapi() -> Iterator[None]:
    try:
        yield
    except psycopg.IntegrityError as exc:
        raise sqlite3.IntegrityError(str(exc)) from exc
    except (psycopg.OperationalError, psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
        raise sqlite3.OperationalError(str(exc)) from exc
    except psycopg.Error as exc:
        raise sqlite3.DatabaseError(str(exc)) from exc


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, store: str, timeout: float = 5.0, read_only: bool = False):
        super().__init__()
        if not _STORE_NAME.fullmatch(store):
            raise ValueError(f"store name {store!r} is not a plain lower-case identifier")
        self.url = url
        self.store = store
        self.timeout = float(timeout)
        self.read_only = read_only
        self._lock_key = store_lock_key(store)
        self._conn: psycopg.Connection | None = None
        self._in_transaction = threading.local()
        self._batch: _Script | None = None     # the batch transaction under way
        with self.lock:
            conn = self._connection()
            with _as_dbapi():
                if read_only:
                    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                         (store,)).fetchone()
                    if found is None:
                        conn.close()
                        raise FileNotFoundError(f"no {store} tables in {redacted(url)}")
                else:
                    with conn.transaction():
                        # Two first starts must not both create the schema.
                        conn.execute("SELECT pg_advisory_xact_lock(%s)",
                                     (store_lock_key("schemas"),))
                        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{store}"')

    def _connection(self) -> psycopg.Connection:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        with _as_dbapi():
            options = (f"-c search_path={self.store}"
                       f" -c lock_timeout={int(self.timeout * 1000)}")
            if self.read_only:
                options += " -c default_transaction_read_only=on"
            self._conn = psycopg.connect(self.url, autocommit=True,
                                         connect_timeout=max(1, int(self.timeout)),
                                         options=options)
        return self._conn

    @property
    def connection(self) -> psycopg.Connection:
        with self.lock:
            return self._connection()

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self, *, batch: bool = False) -> Iterator[None]:
        with self.lock, _as_dbapi():
            conn = self._connection()
            if not batch:
                with conn.transaction():
                    if not self.read_only:
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    yield
                return
            script = self._batch = _Script(conn, None if self.read_only else self._lock_key)
            try:
                yield
                script.commit()
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    script.rollback()
                raise
            finally:
                self._batch = None

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """A session-level advisory lock: released at the end, or when the
        holder's connection dies (a crashed node holds nothing)."""
        key = store_lock_key(f"{self.store}:{name}")
        with self.lock:
            with _as_dbapi():
                self._connection().execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                with _as_dbapi():
                    self._connection().execute("SELECT pg_advisory_unlock(%s)", (key,))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor:
        with self.lock, _as_dbapi():
            if self._batch is not None:
                return self._batch.execute(sql, args)
            return self._connection().execute(query_to_postgres(sql), _args(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.lock, _as_dbapi():
            if self._batch is not None:
                self._batch.executemany(sql, rows)
                return
            with self._connection().cursor() as cursor:
                cursor.executemany(query_to_postgres(sql), [_args(r) for r in rows])

    # Each store's schema has its own version table (under the store's lock).
    def schema_version(self, store: str) -> int:
        if not self.read_only:
            self.execute(_VERSION_TABLE)
        elif self.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        row = self.execute("SELECT version FROM schema_version WHERE store = ?",
                           (store,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_schema_version(self, store: str, version: int) -> None:
        self.execute("INSERT INTO schema_version (store, version) VALUES (?, ?)"
                     " ON CONFLICT (store) DO UPDATE SET version = excluded.version",
                     (store, int(version)))


class _Script:
    """A batch transaction sent as few scripts as it can: statements with
    their values written in as literals (psycopg's client-side binding),
    joined by semicolons, one round trip each.  Writes wait in the script
    until a statement whose answer is wanted (:meth:`execute`) or COMMIT.
    The event log's commit (BEGIN, the lock, the last seq, the rows, COMMIT)
    is two round trips: in psycopg's pipeline mode it cost the writer
    thread about 65 us of CPU a statement, most of it waiting on the socket
    once per statement, 500 us for a call's moment of seven rows."""

    def __init__(self, conn: psycopg.Connection, lock_key: int | None):
        self._conn = conn
        self._literals = psycopg.ClientCursor(conn)
        head = "BEGIN" if lock_key is None else f"BEGIN; SELECT pg_advisory_xact_lock({lock_key})"
        self._unsent = [head]
        self._begun = False

    def _send(self, last: str) -> psycopg.Cursor:
        script = "; ".join((*self._unsent, last))
        self._unsent = []
        self._begun = True
        cursor = self._conn.execute(script)
        while cursor.nextset():     # to the last statement's result
            pass
        return cursor

    def execute(self, sql: str, args: Sequence[Any]) -> psycopg.Cursor:
        return self._send(self._literals.mogrify(query_to_postgres(sql), _args(args)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        query = query_to_postgres(sql)
        self._unsent.extend(self._literals.mogrify(query, _args(r)) for r in rows)

    def commit(self) -> None:
        if self._begun or len(self._unsent) > 1:
            self._send("COMMIT")

    def rollback(self) -> None:
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")


class Listener:
    """``LISTEN channel`` on a connection of its own.  :meth:`wait` returns
    the payloads of the notifications that came (``[]`` when ``timeout``
    passed first, or the database was away), or ``None`` when it had to
    (re)connect: notifications sent meanwhile are lost, so the caller should
    look anyway, as it should on ``[]``."""

    def __init__(self, url: str, channel: str):
        if not _STORE_NAME.fullmatch(channel):
            raise ValueError(f"channel {channel!r} is not a plain lower-case identifier")
        self.url, self.channel = url, channel
        self._conn: psycopg.Connection | None = None

    def wait(self, timeout: float) -> list[str] | None:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                self._conn.execute(f"LISTEN {self.channel}")
                return None
            # Whatever came in the same packet as the first one comes too.
            return [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=1)]
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            time.sleep(min(timeout, 1.0))    # the database is away: do not spin
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
