"""The people who log in to the console: users, their sessions, lockouts.

One store, ``people`` (``people.sqlite3`` in the data directory, or its
schema in PostgreSQL with ``[data] database``), shared with the run-time
agent records (``agent_book``) and the audit trail (``audit``).

Theory of operation
-------------------
- A password is kept only as a salted scrypt hash (``store.pin``'s format,
  ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>``).  Checking one costs tens of
  milliseconds of CPU: callers run :meth:`PeopleStore.check_login` in a
  thread, never on the loop.
- A session is a random secret in the ``sipacd_session`` cookie; only its
  SHA-256 is stored, so a copied database opens no session.  It ends at its
  expiry (``session_ttl`` after login), at logout, or when its user is
  removed or gets a new password.  Each session has its own CSRF token.
- ``lockout_failures`` wrong passwords in a row lock the user for
  ``lockout_seconds``; while locked even the right password is refused
  (without being checked).  A success resets the count.  A name nobody
  has is refused like a wrong password, after one derivation's delay, but
  is not counted (no rows for names typed at random).
- Users come from two places.  ``[users.<name>]`` in the config file seed
  the table at each start: a user still as the file made it (``origin``
  ``config``) follows the file, and one the file no longer names goes.
  Once a user is created, edited or removed through the admin API
  (``origin`` ``admin``), the database wins: the file no longer changes it,
  and a removed user stays removed (a tombstone row) until the admin API
  creates it again.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from sipagent.store.agent_book import AgentBook
from sipagent.store.audit import audit_rows, record
from sipagent.store.backends import open_database
from sipagent.store.database import StorePlace
from sipagent.store.pin import verify_pin

PEOPLE_FILE = "people.sqlite3"
ROLES = ("admin", "supervisor", "agent")

SCHEMA = """
CREATE TABLE IF NOT EXISTS person (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    agent TEXT,
    queues TEXT,                 -- JSON array, or NULL: every queue
    password_hash TEXT,
    origin TEXT NOT NULL,        -- 'config' (follows the file) or 'admin'
    removed INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS session (
    secret_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS session_name ON session (name);
CREATE INDEX IF NOT EXISTS session_expires ON session (expires);
CREATE TABLE IF NOT EXISTS login_failure (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_record (
    agent TEXT PRIMARY KEY,
    spec TEXT,                   -- JSON (agent_book.AgentSpec), NULL once removed
    origin TEXT NOT NULL,        -- 'config' or 'admin'
    removed INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS audit_t ON audit (t);
"""
# Agents in the order they were first stored (what ``rowid`` gave in
# SQLite, which PostgreSQL has not): the admin API lists them so.
AGENT_ORDER = {
    "sqlite": ("ALTER TABLE agent_record ADD COLUMN seq INTEGER",
               "UPDATE agent_record SET seq = rowid"),
    "postgresql": ("ALTER TABLE agent_record ADD COLUMN seq INTEGER",
                   "UPDATE agent_record SET seq = (SELECT count(*) FROM agent_record o"
                   " WHERE o.updated < agent_record.updated OR (o.updated ="
                   " agent_record.updated AND o.agent <= agent_record.agent))"),
}
#: The schema's versions (``sipagent/store/migrations.py``).
MIGRATIONS = (SCHEMA, AGENT_ORDER)


def people_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / PEOPLE_FILE


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    agent: str | None = None
    queues: frozenset[str] | None = None     # a supervisor's scope; None: every queue
    password_hash: str | None = None
    origin: str = "admin"

    def public(self) -> dict:
        """What the API shows: never the hash, only whether there is one."""
        return {"user": self.name, "role": self.role, "agent": self.agent,
                "queues": None if self.queues is None else sorted(self.queues),
                "password": self.password_hash is not None, "origin": self.origin}


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires: float


@dataclass(frozen=True)
class LoginResult:
    user: User | None           # None: refused
    locked_for: float = 0.0     # > 0: locked, seconds left


class PeopleStore:
    def __init__(self, path: StorePlace | Path | str, *, session_ttl: float = 8 * 3600,
                 lockout_failures: int = 5, lockout_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time):
        # A place (the engine's), or the path of a SQLite file (tools, tests).
        place = path if isinstance(path, StorePlace) else StorePlace(Path(path).parent)
        file = PEOPLE_FILE if isinstance(path, StorePlace) else Path(path).name
        self.db = open_database(place, file, "people", MIGRATIONS)
        self.session_ttl = float(session_ttl)
        self.lockout_failures = int(lockout_failures)
        self.lockout_seconds = float(lockout_seconds)
        self.clock = clock
        self.agents = AgentBook(self.db, clock)

    def audit(self, **query) -> list[dict]:
        """The audit trail, newest first (``store.audit.audit_rows``)."""
        return audit_rows(self.db, **query)

    def close(self) -> None:
        self.db.close()

    # -- users -------------------------------------------------------------------------
    def seed_users(self, users: Mapping[str, User]) -> None:
        """The config file's users (see the module doc: the database wins for
        users the admin API touched)."""
        now = self.clock()
        with self.db.transaction():
            kept = {name: origin for name, origin in
                    self.db.execute("SELECT name, origin FROM person").fetchall()}
            for name, user in users.items():
                if kept.get(name, "config") != "config":
                    continue
                self.db.execute(_UPSERT_PERSON, (*_person_row(user), "config", 0, now))
            for name, origin in kept.items():
                if origin == "config" and name not in users:
                    self.db.execute("DELETE FROM person WHERE name = ?", (name,))
                    self.db.execute("DELETE FROM session WHERE name = ?", (name,))

    def user(self, name: str) -> User | None:
        row = self.db.one(_SELECT_PERSON + " WHERE name = ? AND removed = 0", (name,))
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        return [_user(r) for r in self.db.read(_SELECT_PERSON + " WHERE removed = 0 ORDER BY name")]

    def user_of_agent(self, agent: str) -> User | None:
        row = self.db.one(_SELECT_PERSON + " WHERE agent = ? AND removed = 0 ORDER BY name",
                          (agent,))
        return None if row is None else _user(row)

    def put_user(self, user: User, *, audit: tuple | None = None) -> None:
        """Create or replace a user (origin ``admin``).  A new password (or
        none) ends the user's sessions.  ``audit``: (who, action, before,
        after) written in the same transaction."""
        with self.db.transaction():
            old = self.db.execute("SELECT password_hash FROM person WHERE name = ? "
                                  "AND removed = 0", (user.name,)).fetchone()
            self.db.execute(_UPSERT_PERSON, (*_person_row(user), "admin", 0, self.clock()))
            if old is not None and old[0] != user.password_hash:
                self.db.execute("DELETE FROM session WHERE name = ?", (user.name,))
            if audit is not None:
                record(self.db, self.clock(), *audit[:2], user.name, *audit[2:])

    def remove_user(self, name: str, *, audit: tuple | None = None) -> bool:
        """A tombstone: a config user removed here stays removed."""
        with self.db.transaction():
            changed = self.db.execute(
                "UPDATE person SET removed = 1, password_hash = NULL, origin = 'admin', "
                "updated = ? WHERE name = ? AND removed = 0", (self.clock(), name)).rowcount
            self.db.execute("DELETE FROM session WHERE name = ?", (name,))
            if changed and audit is not None:
                record(self.db, self.clock(), *audit[:2], name, *audit[2:])
        return bool(changed)

    # -- logging in ----------------------------------------------------------------------
    def locked_for(self, name: str) -> float:
        row = self.db.one("SELECT locked_until FROM login_failure WHERE name = ?", (name,))
        return max(0.0, row[0] - self.clock()) if row else 0.0

    def check_login(self, name: str, password: str) -> LoginResult:
        """Blocking (one scrypt derivation): call it in a thread."""
        locked = self.locked_for(name)
        if locked > 0:
            return LoginResult(None, locked)
        user = self.user(name)
        if verify_pin(password, user.password_hash if user else None) and user is not None:
            self.db.write("DELETE FROM login_failure WHERE name = ?", (name,))
            return LoginResult(user)
        if user is None:
            return LoginResult(None)
        with self.db.transaction():
            row = self.db.execute("SELECT failures FROM login_failure WHERE name = ?",
                                  (name,)).fetchone()
            failures = (row[0] if row else 0) + 1
            locked_until = 0.0
            if failures >= self.lockout_failures:
                failures, locked_until = 0, self.clock() + self.lockout_seconds
            self.db.execute("INSERT INTO login_failure (name, failures, locked_until) "
                            "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                            "failures = excluded.failures, locked_until = excluded.locked_until",
                            (name, failures, locked_until))
        return LoginResult(None, max(0.0, locked_until - self.clock()))

    # -- sessions --------------------------------------------------------------------------
    def open_session(self, name: str) -> tuple[str, str]:
        """A new session for ``name``: (cookie secret, CSRF token)."""
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.transaction():
            self.db.execute("DELETE FROM session WHERE expires <= ?", (now,))
            self.db.execute("INSERT INTO session (secret_hash, name, csrf, created, expires) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (secret_hash(secret), name, csrf, now, now + self.session_ttl))
        return secret, csrf

    def session(self, secret: str) -> Session | None:
        """The live session the cookie names, with its user as stored now
        (a role changed by the admin applies at once); None if expired."""
        row = self.db.one("SELECT s.csrf, s.expires, " + _PERSON_COLUMNS +
                          " FROM session s JOIN person p ON p.name = s.name"
                          " WHERE s.secret_hash = ? AND p.removed = 0", (secret_hash(secret),))
        if row is None or row[1] <= self.clock():
            return None
        return Session(_user(row[2:]), row[0], row[1])

    def end_session(self, secret: str) -> bool:
        return self.db.write("DELETE FROM session WHERE secret_hash = ?",
                             (secret_hash(secret),)) > 0


_PERSON_COLUMNS = "p.name, p.role, p.agent, p.queues, p.password_hash, p.origin"
_SELECT_PERSON = "SELECT " + _PERSON_COLUMNS + " FROM person p"
_UPSERT_PERSON = (
    "INSERT INTO person (name, role, agent, queues, password_hash, origin, removed, updated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
    " agent = excluded.agent, queues = excluded.queues, password_hash = excluded.password_hash,"
    " origin = excluded.origin, removed = excluded.removed, updated = excluded.updated")


def _person_row(user: User) -> tuple:
    if user.role not in ROLES:
        raise ValueError(f"unknown role {user.role!r}")
    queues = None if user.queues is None else json.dumps(sorted(user.queues))
    return user.name, user.role, user.agent, queues, user.password_hash


def _user(row: Iterable) -> User:
    name, role, agent, queues, password_hash, origin = row
    return User(name, role, agent, None if queues is None else frozenset(json.loads(queues)),
                password_hash, origin)


def users_from(sections: Mapping) -> dict[str, User]:
    """The config file's ``[users.<name>]`` tables (role, agent, queues,
    password_hash) as the store seeds them."""
    return {name: User(name, u.role, u.agent, None if u.queues is None else frozenset(u.queues),
                       u.password_hash, "config") for name, u in sections.items()}
