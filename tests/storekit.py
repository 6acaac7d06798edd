"""The stores' tests on both backends: ``store_place`` is a
:class:`sipagent.store.database.StorePlace` on SQLite (files in the test's
``tmp_path``) or on PostgreSQL (a fresh database of its own, files still in
``tmp_path``), so one test body checks both.

One PostgreSQL server serves the whole session (``initdb`` and start cost a
few seconds; a database costs a fraction of one): started on first use
only, so ``-m "not postgres"`` starts none.  Each test gets
``CREATE DATABASE`` of its own, dropped after it (``WITH (FORCE)``: a
connection the test left open does not keep it).  The PostgreSQL cases
carry the ``postgres`` marker: ``-m postgres`` runs only them.

Use: ``from storekit import store_place, store_postgres  # noqa: F401`` in
a test module, then take ``store_place`` as a fixture argument.
"""
from __future__ import annotations

import glob
import uuid
from pathlib import Path

import pytest

from portlocks import Ports
from sipagent.store.database import StorePlace

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))


def postgres_installed() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/postgres"))


@pytest.fixture(scope="session")
def store_postgres(port_allocator):
    """The session's PostgreSQL server (tests/clusterkit.py)."""
    if not postgres_installed():
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    from clusterkit import Postgres

    with Postgres(Ports(port_allocator)()) as server:
        yield server


def database_url(server, name: str) -> str:
    return (f"postgresql://{server.USER}:{server.password}@127.0.0.1:{server.port}/{name}")


class FreshDatabases:
    """CREATE / DROP DATABASE on ``server`` over one maintenance connection."""

    def __init__(self, server):
        import psycopg

        self.server = server
        self._admin = psycopg.connect(database_url(server, "postgres"), autocommit=True)
        # A file copy of the empty template is the quickest way to a new
        # database (about 65 ms against 100 ms for PostgreSQL 15's default).
        self._how = (" TEMPLATE template0 STRATEGY FILE_COPY"
                     if self._admin.info.server_version >= 150000 else "")

    def create(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._admin.execute(f'CREATE DATABASE "{name}" OWNER {self.server.USER}{self._how}')
        return name

    def drop(self, name: str) -> None:
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._admin.close()


@pytest.fixture(scope="session")
def fresh_databases(store_postgres):
    made = FreshDatabases(store_postgres)
    yield made
    made.close()


def place_on(backend: str, request, tmp_path: Path):
    """A generator: the StorePlace of ``backend`` for one test, then clean-up."""
    if backend == "sqlite":
        yield StorePlace(tmp_path / "data")
        return
    made: FreshDatabases = request.getfixturevalue("fresh_databases")
    name = made.create()
    try:
        yield StorePlace(tmp_path / "data", database_url(made.server, name))
    finally:
        made.drop(name)


@pytest.fixture(params=BACKENDS)
def store_place(request, tmp_path) -> StorePlace:
    """Where a test's stores live: SQLite in ``tmp_path / "data"``, or a
    fresh PostgreSQL database (and that folder for files)."""
    yield from place_on(request.param, request, tmp_path)


@pytest.fixture
def pg_place(request, tmp_path) -> StorePlace:
    """A fresh PostgreSQL database only (for what SQLite has no part in,
    such as several nodes sharing one store)."""
    yield from place_on("postgresql", request, tmp_path)


def set_schema_version(place: StorePlace, store: str, file: str, version: int) -> None:
    """Write ``store``'s schema version as a newer (or older) sipacd would
    have left it: SQLite's ``user_version`` of ``file``, or the row of the
    store's ``schema_version`` table in PostgreSQL."""
    if place.database is None:
        import sqlite3

        db = sqlite3.connect(place.file(file))
        db.execute(f"PRAGMA user_version = {int(version)}")
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(place.database, autocommit=True) as db:
        db.execute(f'UPDATE "{store}".schema_version SET version = %s WHERE store = %s',
                   (version, store))
