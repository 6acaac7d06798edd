"""The store interface: one API over SQLite (the default) and PostgreSQL.

Every store (event log, call records, callbacks, people, voicemail and fax
indexes, webhook cursors...) talks to a :class:`Database`: ``transaction``,
``execute``, ``executemany``, ``read``, ``one``, ``write``.  Where it lives is
a :class:`StorePlace`: the data directory (files: audio, TIFF, PDF, and the
SQLite databases) and, with ``[data] database = "postgresql://…"``, the one
PostgreSQL database every store of every node shares
(``sipagent/store/postgres.py``).  Schemas are versioned migrations
(``sipagent/store/migrations.py``) applied by ``backends.open_database``.

SQLite, as each store always opened it:

- WAL, so a reader (the CLI, the HTTP API) never waits for a writer;
- ``synchronous=FULL`` by default: a row committed is a row kept through a
  power cut (a caller told "your message has been saved" must not lose it);
- one connection for every thread (the engine calls a store through
  ``asyncio.to_thread``), so one re-entrant lock serialises all use of it:
  reads take it too, so none runs inside another thread's open transaction;
- autocommit (``isolation_level=None``) and explicit ``BEGIN IMMEDIATE``
  transactions: the write lock from the start, so a read-then-write (a
  claim, a cancel, "at most ``max_messages``") cannot interleave with
  another process's.  The ``sqlite3`` module's own transactions would not
  begin before the first write.

Errors: both backends raise DB-API's classes as the ``sqlite3`` module
defines them (:data:`Error`, :data:`OperationalError` for "try again
later": locked, disk or connection lost, :data:`IntegrityError`), so a
store catches one family whichever backend runs it.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

__all__ = ["Database", "SqliteDatabase", "StorePlace", "as_place", "Error", "OperationalError",
           "IntegrityError", "is_postgres_url"]

Error = sqlite3.Error
OperationalError = sqlite3.OperationalError
IntegrityError = sqlite3.IntegrityError


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class StorePlace:
    """Where the stores live: ``dir`` for files (and SQLite databases),
    ``database`` a PostgreSQL URL for every table, or None (SQLite)."""
    dir: Path
    database: str | None = None

    def file(self, name: str) -> Path:
        return Path(self.dir) / name


def as_place(where: StorePlace | Path | str) -> StorePlace:
    """A store's argument: a :class:`StorePlace`, or a data directory (SQLite)."""
    return where if isinstance(where, StorePlace) else StorePlace(Path(where))


class Database:
    """What every store uses; see the module doc.  ``dialect`` is
    ``"sqlite"`` or ``"postgresql"``."""

    dialect = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    # -- the backend's part -----------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, batch: bool = False) -> Iterator[None]:
        """One transaction holding this store's write lock from its start
        (no other writer of the store, in any process, until it ends);
        rolled back on any error.  ``batch``: a run of writes whose errors
        may surface at the end rather than at each statement (a server
        backend then sends them without waiting for each answer)."""
        raise NotImplementedError
        yield   # pragma: no cover

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """One statement (``?`` placeholders), inside the caller's
        :meth:`transaction` if it writes; a cursor (``fetchone``,
        ``fetchall``, ``rowcount``, iteration)."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def schema_version(self, store: str) -> int:
        raise NotImplementedError

    def set_schema_version(self, store: str, version: int) -> None:
        """Inside the migration's transaction."""
        raise NotImplementedError

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Held by one holder of this connection's database at a time, across
        processes (not a transaction: the holder commits as it goes)."""
        raise NotImplementedError
        yield   # pragma: no cover

    # -- shared -------------------------------------------------------------------------
    def write(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement in a transaction of its own; the rows it changed."""
        with self.transaction():
            return self.execute(sql, args).rowcount

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.execute(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        rows = self.read(sql, args)
        return rows[0] if rows else None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path | str, *, timeout: float = 5.0, synchronous: str = "FULL",
                 read_only: bool = False):
        super().__init__()
        self.path = Path(path)
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"no database at {self.path}")
            self.connection = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro",
                                              uri=True, check_same_thread=False,
                                              timeout=timeout)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, check_same_thread=False,
                                          isolation_level=None, timeout=timeout)
        try:
            mode = self.connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"{path}: cannot use WAL mode (got {mode!r})")
            self.connection.execute(f"PRAGMA synchronous={synchronous}")
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    @contextlib.contextmanager
    def transaction(self, *, batch: bool = False) -> Iterator[None]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.connection.executemany(sql, rows)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        # A file has one writing process (the engine); its own threads
        # serialise on the lock.
        with self.lock:
            yield

    # A store of its own file: SQLite's user_version is its version.
    def schema_version(self, store: str) -> int:
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, store: str, version: int) -> None:
        self.connection.execute(f"PRAGMA user_version = {int(version)}")
