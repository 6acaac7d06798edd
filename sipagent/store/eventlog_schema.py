"""The event log's file: where it lives, its schema and its migrations,
and how to open it (the writer in ``eventlog``, readers such as ``report``).

The schema version is SQLite's ``user_version``.  Migration i takes a file
from version i to i + 1, in one transaction with its version bump, so a
crash during a migration leaves the old version, never half a schema; a
file newer than this code is refused rather than written to.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["EVENT_LOG_FILE", "SCHEMA_VERSION", "SchemaTooNew", "event_log_path", "connect",
           "read_only"]

#: The file name inside the data directory.  Its own file, so that its
#: ``user_version`` belongs to this schema alone.
EVENT_LOG_FILE = "events.sqlite3"


def event_log_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / EVENT_LOG_FILE


_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE event (
            id       INTEGER PRIMARY KEY,   -- emission order; breaks ties in t
            t        REAL NOT NULL,         -- wall clock, epoch seconds
            kind     TEXT NOT NULL,
            queue    TEXT,
            call_id  TEXT,
            agent    TEXT,
            wait     REAL,
            position INTEGER,
            reason   TEXT,
            data     TEXT                   -- a JSON object, or NULL
        )""",
        "CREATE INDEX event_t ON event (t)",
        "CREATE INDEX event_call ON event (call_id, t)",
        "CREATE INDEX event_agent ON event (agent, t)",
        # The report rebuilds each agent's state from its last login, and
        # close_dangling finds who was logged in: few rows, kept apart.
        "CREATE INDEX event_login ON event (agent, t) WHERE kind = 'LOGIN'",
        "CREATE INDEX event_logout ON event (agent, t) WHERE kind = 'LOGOUT'",
        """CREATE TABLE call_record (
            call_id     TEXT PRIMARY KEY,
            start       REAL,
            answer      REAL,
            "end"       REAL,
            caller      TEXT,
            called      TEXT,
            queue       TEXT,
            agent       TEXT,
            outcome     TEXT,
            wait        REAL,
            talk        REAL,
            wrap_up     REAL,
            hangup_side TEXT,
            updated     REAL NOT NULL
        )""",
        "CREATE INDEX call_record_start ON call_record (start)",
        """CREATE TABLE survey_answer (
            id      INTEGER PRIMARY KEY,
            t       REAL NOT NULL,
            call_id TEXT NOT NULL,
            queue   TEXT,
            score   INTEGER NOT NULL,
            scale   INTEGER NOT NULL
        )""",
        "CREATE INDEX survey_answer_t ON survey_answer (t)",
        "PRAGMA user_version = 1",
    ),
    (
        # The last moment the writing engine was known alive, refreshed every
        # few seconds: after a crash, calls left open are closed at this time
        # rather than at their last event, which may be minutes older.
        """CREATE TABLE heartbeat (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            t  REAL NOT NULL
        )""",
        # The close-out at start looks for records without an end: few rows.
        'CREATE INDEX call_record_open ON call_record (call_id) WHERE "end" IS NULL',
        "PRAGMA user_version = 2",
    ),
    (
        # The public event stream (``event_stream``): what SSE clients and
        # webhooks are sent, each with its sequence id, written before it is sent.
        """CREATE TABLE stream_event (
            seq     INTEGER PRIMARY KEY,   -- the public sequence id (SSE id)
            t       REAL NOT NULL,
            type    TEXT NOT NULL,         -- resource.verb
            node    TEXT NOT NULL,
            call_id TEXT,
            queue   TEXT,
            agent   TEXT,
            body    TEXT NOT NULL          -- the whole event, JSON
        )""",
        "CREATE INDEX stream_event_call ON stream_event (call_id)",
        # What the agent desktop adds to a call's record at wrap-up.
        "ALTER TABLE call_record ADD COLUMN disposition TEXT",
        "ALTER TABLE call_record ADD COLUMN disposition_note TEXT",
        "ALTER TABLE call_record ADD COLUMN caller_name TEXT",
        "PRAGMA user_version = 3",
    ),
    (
        # The agent desktop's screen pop lists the caller's recent calls.
        "CREATE INDEX call_record_caller ON call_record (caller, start)",
        "PRAGMA user_version = 4",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

class SchemaTooNew(RuntimeError):
    """The file was written by a newer sipacd; migrating down would lose data."""


def connect(path: str | Path, *, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode with the schema up to date (used by the writer and by tests)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=busy_timeout)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot use WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str | Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # two processes opening a new file: one migrates
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"{path}: event log schema {version} is newer than this "
                               f"sipacd understands ({SCHEMA_VERSION})")
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_only(path: str | Path) -> sqlite3.Connection:
    """A reader's connection: never creates the file, never writes."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no event log at {p}")
    conn = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        conn.close()
        raise SchemaTooNew(f"{p}: event log schema {version} is newer than {SCHEMA_VERSION}")
    return conn
