"""Opening a store's database on the backend its place names: SQLite
files in the data directory, or the shared PostgreSQL database (see
``database`` for the interface both offer)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from sipagent.store.database import (Database, SqliteDatabase, StorePlace, as_place,
                                     is_postgres_url)
from sipagent.store.migrations import Step, migrate
from sipagent.store.postgres import Listener, PostgresDatabase

__all__ = ["open_database", "open_reader", "open_listener"]


def open_database(where: StorePlace | Path | str, file: str, store: str,
                  migrations: Sequence[Step], *, timeout: float = 5.0,
                  synchronous: str = "FULL") -> Database:
    """The store ``store``'s database, its schema migrated to the newest
    version: ``<dir>/<file>`` in SQLite, or the shared PostgreSQL database.
    Raises :class:`migrations.SchemaTooNew` for a database newer than this code."""
    place = as_place(where)
    if place.database:
        db: Database = PostgresDatabase(place.database, store=store, timeout=timeout)
    else:
        db = SqliteDatabase(place.file(file), timeout=timeout, synchronous=synchronous)
    try:
        migrate(db, store, migrations, where=place.database and store or place.file(file))
    except BaseException:
        db.close()
        raise
    return db


def open_reader(source: Path | str, store: str, *, timeout: float = 5.0) -> Database:
    """A reader's connection that never creates nor writes: a SQLite file
    (opened read-only) or ``store``'s tables in a PostgreSQL database (a
    URL); FileNotFoundError if there is none."""
    if is_postgres_url(source):
        return PostgresDatabase(str(source), store=store, timeout=timeout, read_only=True)
    return SqliteDatabase(source, timeout=timeout, read_only=True)


def open_listener(source: Path | str, channel: str) -> Listener | None:
    """Notifications of ``channel`` from the PostgreSQL database ``source``;
    None for a SQLite file (one process: its writer tells its readers)."""
    return Listener(str(source), channel) if is_postgres_url(source) else None
