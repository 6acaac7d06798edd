"""Agents' keypad PIN checks and their lockout, kept across restarts.

An agent who logs in from a phone keypad proves it with a PIN; a few wrong
PINs in a row lock that agent's keypad out for a while, as a voicemail box
locks (``sipagent/voicemail/store.py``).  The count and the lockout live in
the ``agent_keypad`` store (``<data>/agent_keypad.sqlite3``, or its schema
in PostgreSQL, shared by every node), so restarting the engine does not
hand a guesser a fresh set of tries.

Methods block (SQLite, scrypt); the engine calls them through
``asyncio.to_thread``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Literal

from sipagent.store.backends import open_database
from sipagent.store.database import StorePlace, as_place
from sipagent.store.pin import verify_pin

DB_FILE = "agent_keypad.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS keypad_pin (
    agent TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0);
"""

PinCheck = Literal["ok", "wrong", "locked"]


class KeypadLockout:
    def __init__(self, data_dir: StorePlace | Path | str, *, pin_attempts: int = 3, lockout: float = 900.0,
                 clock: Callable[[], float] = time.time):
        self.pin_attempts, self.lockout = pin_attempts, lockout
        self._clock = clock
        self.db = open_database(as_place(data_dir), DB_FILE, "agent_keypad", [SCHEMA])

    def close(self) -> None:
        self.db.close()

    def check(self, agent_id: str | None, pin: str, pin_hash: str | None) -> PinCheck:
        """``wrong`` also for an unknown agent (``agent_id`` None) and as
        slow; ``locked`` while a lockout lasts, before the PIN is looked at,
        and for the wrong PIN that starts one (the caller need not try again)."""
        if agent_id is not None and self.locked_until(agent_id) > self._clock():
            return "locked"
        if verify_pin(pin, pin_hash):
            if agent_id is not None:
                self.db.write("DELETE FROM keypad_pin WHERE agent = ?", (agent_id,))
            return "ok"
        if agent_id is not None:
            with self.db.transaction():
                failures = self.db.execute(
                    "INSERT INTO keypad_pin (agent, failures) VALUES (?, 1) ON CONFLICT (agent) "
                    "DO UPDATE SET failures = keypad_pin.failures + 1 RETURNING failures",
                    (agent_id,)).fetchone()[0]
                if failures >= self.pin_attempts:
                    self.db.execute("UPDATE keypad_pin SET failures = 0, locked_until = ? "
                                    "WHERE agent = ?", (self._clock() + self.lockout, agent_id))
                    return "locked"
        return "wrong"

    def locked_until(self, agent_id: str) -> float:
        row = self.db.one("SELECT locked_until FROM keypad_pin WHERE agent = ?", (agent_id,))
        return row[0] if row else 0.0
