"""A batch transaction (``Database.transaction(batch=True)``, the event
log's commit) on both backends: all or nothing, a read inside it sees its
writes so far, and what goes in comes back as it was.  On PostgreSQL the
batch is sent as scripts with the values written in as literals
(sipagent/store/postgres.py), so quoting is this test's business too."""
from __future__ import annotations

import sqlite3

import pytest

from sipagent.store.backends import open_database

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL

SCHEMA = ["CREATE TABLE item (k INTEGER PRIMARY KEY, t REAL, s TEXT, n INTEGER)"]
INSERT = "INSERT INTO item (k, t, s, n) VALUES (?, ?, ?, ?)"
ODD = ["it's", "100 %", "back\\slash", "é ✓", "a;b -- c", "$$x$$", "", "?"]


@pytest.fixture
def db(store_place):
    database = open_database(store_place, "batch.db", "batch_test", [SCHEMA])
    yield database
    database.close()


def test_a_batch_commits_every_row_with_its_values_intact(db):
    rows = [(i, 1733250000.125 + i, s, None if i % 2 else True) for i, s in enumerate(ODD)]
    with db.transaction(batch=True):
        db.executemany(INSERT, rows[:3])
        # A read in the batch sees the writes before it.
        assert db.execute("SELECT COUNT(*) FROM item").fetchone()[0] == 3
        db.executemany(INSERT, rows[3:])
    back = db.read("SELECT k, t, s, n FROM item ORDER BY k")
    assert back == [(k, t, s, None if n is None else 1) for k, t, s, n in rows]


def test_a_failing_batch_leaves_nothing_and_the_store_goes_on(db):
    db.write(INSERT, (1, 0.0, "before", 1))
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction(batch=True):
            db.executemany(INSERT, [(2, 0.0, "in the batch", 1), (1, 0.0, "clash", 1)])
            db.executemany(INSERT, [(3, 0.0, "after the clash", 1)])
    assert db.read("SELECT k, s FROM item ORDER BY k") == [(1, "before")]
    with db.transaction(batch=True):
        db.executemany(INSERT, [(2, 0.0, "again", 1)])
    assert db.read("SELECT k FROM item ORDER BY k") == [(1,), (2,)]


def test_an_error_in_the_callers_code_rolls_the_batch_back(db):
    with pytest.raises(RuntimeError):
        with db.transaction(batch=True):
            db.executemany(INSERT, [(1, 0.0, "x", 1)])
            db.execute("SELECT COUNT(*) FROM item").fetchone()    # sent: the batch began
            raise RuntimeError("the caller changed its mind")
    assert db.read("SELECT COUNT(*) FROM item") == [(0,)]
