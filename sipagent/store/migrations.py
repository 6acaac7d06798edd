"""Versioned schemas, the same steps on SQLite and PostgreSQL.

A store's schema is a sequence of migrations: migration ``i`` takes the
store from version ``i`` to ``i + 1``.  Each is a script (or a sequence of
statements) in the stores' SQL (``sql_dialect``), run with its version bump
in one transaction under the store's write lock: a crash during a migration
leaves the old version, never half a schema, and two processes opening a
new database migrate it once.  A database newer than this code is refused
rather than written to (migrating down would lose data).

Where the version is kept: SQLite's ``user_version`` (each store has a file
of its own); in PostgreSQL, where every store shares one database, the
table ``schema_version`` keyed by store name (``postgres``).

One exception to "written once": a step that carries SQLite's hidden
``rowid`` over into a real column (the order rows were added in, which
PostgreSQL has no notion of) is a mapping ``{"sqlite": ..., "postgresql":
...}``, and each backend runs its own.  Both make the same schema, so a
version means the same tables on either backend.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from sipagent.store.database import Database
from sipagent.store.sql_dialect import ddl_to_postgres, split_statements

__all__ = ["SchemaTooNew", "migrate", "statements_of"]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer sipacd."""


def statements_of(migration: Sequence[str] | str) -> list[str]:
    if isinstance(migration, str):
        return split_statements(migration)
    return [s for part in migration for s in split_statements(part)]


Step = Sequence[str] | str | Mapping[str, Sequence[str] | str]


def migrate(db: Database, store: str, migrations: Sequence[Step], *,
            where: object = None) -> int:
    """Bring ``store`` in ``db`` to ``len(migrations)``; returns the version found."""
    newest = len(migrations)
    with db.transaction():
        found = db.schema_version(store)
        if found > newest:
            raise SchemaTooNew(f"{where or store}: {store} schema {found} is newer than this "
                               f"sipacd understands ({newest})")
        for migration in migrations[found:]:
            if isinstance(migration, Mapping):
                migration = migration[db.dialect]
            for statement in statements_of(migration):
                if db.dialect == "postgresql":
                    statement = ddl_to_postgres(statement)
                    if statement is None:
                        continue
                db.execute(statement)
        if found < newest:
            db.set_schema_version(store, newest)
    return found
