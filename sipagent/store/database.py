"""A store's SQLite index: one file, one connection, shared by threads.

The voicemail and fax stores each index files on disk in one SQLite file
in the data directory, opened the same way:

- WAL, so a reader (the CLI, the HTTP API) never waits for a writer;
- ``synchronous=FULL``: a row committed is a row kept through a power cut
  (a caller told "your message has been saved" must not lose it);
- one connection for every thread (the engine calls the store through
  ``asyncio.to_thread``), so one re-entrant lock serialises all use of it:
  reads take it too, so none runs inside another thread's open
  transaction;
- autocommit (``isolation_level=None``) and explicit ``BEGIN IMMEDIATE``
  transactions: the write lock from the start, so a read-then-write (a
  claim, a cancel, "at most ``max_messages``") cannot interleave with
  another process's.  The ``sqlite3`` module's own transactions would not
  begin before the first write.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Iterator


class Database:
    def __init__(self, path: Path | str, schema: str, *, timeout: float = 5.0):
        self.lock = threading.RLock()
        self.connection = sqlite3.connect(path, check_same_thread=False,
                                          isolation_level=None, timeout=timeout)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.executescript(schema)

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT under the lock, ROLLBACK on any error."""
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """One statement, inside the caller's :meth:`transaction`."""
        return self.connection.execute(sql, args)

    def write(self, sql: str, args: tuple = ()) -> int:
        """One statement in a transaction of its own; the rows it changed."""
        with self.transaction():
            return self.connection.execute(sql, args).rowcount

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.connection.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple = ()) -> tuple | None:
        rows = self.read(sql, args)
        return rows[0] if rows else None
