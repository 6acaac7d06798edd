"""The event log's database: where it lives, its schema and its migrations,
and how to open it (the writer in ``eventlog``, readers such as ``report``).

It is ``events.sqlite3`` in the data directory, or the ``eventlog`` schema
of the PostgreSQL database with ``[data] database`` (one log for every node
of a cluster).  Migrations are ``sipagent/store/migrations.py``'s: each in
one transaction with its version bump; a log newer than this code is
refused rather than written to.

Readers name the log by its *source*: the file's path, or the PostgreSQL
URL (``EventLog.source``, :func:`source_of`).
"""
from __future__ import annotations

from pathlib import Path

from sipagent.store.backends import open_database, open_reader
from sipagent.store.database import Database, StorePlace, as_place
from sipagent.store.migrations import SchemaTooNew
from sipagent.store.postgres import redacted

__all__ = ["EVENT_LOG_FILE", "STORE", "MIGRATIONS", "SCHEMA_VERSION", "SchemaTooNew",
           "event_log_path", "source_of", "connect", "read_only"]

#: The file name inside the data directory.  Its own file, so that its
#: ``user_version`` belongs to this schema alone.
EVENT_LOG_FILE = "events.sqlite3"


#: The store's name: its PostgreSQL schema.
STORE = "eventlog"


def event_log_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / EVENT_LOG_FILE


def source_of(where: StorePlace | Path | str) -> Path | str:
    """What readers open for the log of ``where`` (a place or a data dir)."""
    place = as_place(where)
    return place.database or event_log_path(place.dir)


MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    (
        # Several nodes write one log (PostgreSQL): each row and record says
        # whose it is, so a node closes out only what it left open, and each
        # node stamps its own heartbeat.
        "ALTER TABLE event ADD COLUMN node TEXT",
        "ALTER TABLE call_record ADD COLUMN node TEXT",
        """CREATE TABLE node_heartbeat (
            node TEXT PRIMARY KEY,
            t    REAL NOT NULL
        )""",
        "PRAGMA user_version = 5",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(where: StorePlace | Path | str, *, busy_timeout: float = 5.0) -> Database:
    """The writer's database, schema up to date: ``where`` is a place, or
    the SQLite file's path (WAL, ``synchronous=NORMAL``: see ``eventlog``)."""
    if isinstance(where, StorePlace):
        place, file = where, EVENT_LOG_FILE
    else:
        place, file = StorePlace(Path(where).parent), Path(where).name
    return open_database(place, file, STORE, MIGRATIONS, timeout=busy_timeout,
                         synchronous="NORMAL")


def read_only(source: Path | str) -> Database:
    """A reader's connection (never creates, never writes); ``source``: the
    file's path or the PostgreSQL URL.  Refuses a log newer than this code."""
    try:
        conn = open_reader(source, STORE)
    except FileNotFoundError:
        shown = redacted(source) if isinstance(source, str) else source
        raise FileNotFoundError(f"no event log at {shown}") from None
    try:
        version = conn.schema_version(STORE)
    except BaseException:
        conn.close()
        raise
    if version > SCHEMA_VERSION:
        conn.close()
        raise SchemaTooNew(f"{source}: event log schema {version} is newer than {SCHEMA_VERSION}")
    return conn
