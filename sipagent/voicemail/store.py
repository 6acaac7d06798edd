"""Voicemail boxes on disk: the message index (SQLite) and the audio beside it.

Theory of operation
-------------------
The ``voicemail`` store (``<data>/voicemail.sqlite3``, WAL,
``synchronous=FULL``: a caller told "your message has been saved" must not
lose it to a power cut; or its schema in PostgreSQL with ``[data]
database``) indexes messages; the audio lives in ``<data>/voicemail/<box>/<id>.wav`` and the
greetings in ``<data>/voicemail/<box>/greetings/<kind>.wav``.

The one rule: a row points to a file only once the file is complete.

- Deposit: the finished recording is renamed into the box folder (copied
  under a hidden temporary name, fsynced and renamed when it sits on another
  file system), the folder is fsynced, then the row is committed, in the same
  transaction as the notifications it owes (the outbox).
- Delete: the row is committed away first, then the file is unlinked.

A crash between the two steps leaves a file without a row, which nobody
lists; :meth:`VoicemailStore.clean_strays` removes it, with any temporary
file, when the store opens.  Every path is built from a box number, message
id or greeting kind that is checked by pattern *and* resolved inside the
voicemail folder, so no input can name a file elsewhere.

Methods block (SQLite, fsync, scrypt); the engine calls them through
``asyncio.to_thread``.  The index is a :class:`sipagent.store.database.Database`,
whose one lock serialises writers, which is also what makes "at most
``max_messages``" hold when two callers deposit at once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping


from ivrflows.call import (GREETING_KINDS, LoginResult, MailboxFull, MessageTooShort,
                           VoicemailBox, VoicemailMessage)
from sipagent.store.backends import open_database
from sipagent.store.database import StorePlace, as_place
from sipagent.store.files import publish, read_wav_8k, wav_seconds, write_wav_atomic
from sipagent.store.outbox import SCHEMA as OUTBOX_SCHEMA, Outbox
from sipagent.store.pin import check_pin_format, hash_pin, verify_pin

DB_FILE = "voicemail.sqlite3"
TooShort = MessageTooShort
_BOX = re.compile(r"[0-9A-Za-z+_-]{1,40}")
_ID = re.compile(r"[0-9a-f]{32}")
# With a shared folder (PostgreSQL: several nodes), a leftover must be this
# old to be swept: no deposit takes an hour between its file and its row.
SHARED_STRAY_AGE = 3600.0
SETTABLE = ("owner", "emails", "webhook", "max_length", "min_length", "max_messages",
            "retention_days")

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id TEXT PRIMARY KEY, box TEXT NOT NULL,
    folder TEXT NOT NULL CHECK (folder IN ('new', 'saved')),
    caller TEXT NOT NULL, caller_name TEXT NOT NULL, called TEXT NOT NULL,
    received REAL NOT NULL, duration REAL NOT NULL, urgent INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS message_by_box ON message (box, folder, received);
CREATE TABLE IF NOT EXISTS mailbox (
    box TEXT PRIMARY KEY, pin_hash TEXT, pin_origin TEXT NOT NULL DEFAULT 'config',
    failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}');
"""
#: The schema's versions (``sipagent/store/migrations.py``); the outbox is
#: part of the first.
MIGRATIONS = ((SCHEMA, OUTBOX_SCHEMA),)


class UnknownMailbox(LookupError):
    pass


class NoSuchMessage(LookupError):
    pass


class UnsafePath(ValueError):
    """A box, id or greeting kind that would lead outside the voicemail folder."""


@dataclasses.dataclass(frozen=True)
class Mailbox:
    """A box's settings as the engine applies them (config, then API changes)."""
    number: str
    owner: str = ""              # agent:NAME, queue:NAME or person:TEXT
    pin_hash: str | None = None
    emails: tuple[str, ...] = ()
    webhook: str | None = None
    max_length: float = 180.0
    min_length: float = 2.0
    max_messages: int = 100
    retention_days: int = 0      # 0: kept until deleted
    silence: float = 5.0

    @property
    def owner_agent(self) -> str | None:
        kind, _, name = self.owner.partition(":")
        return name if kind == "agent" else None


class VoicemailStore:
    def __init__(self, data_dir: StorePlace | Path | str, boxes: Mapping[str, Mailbox], *,
                 pin_attempts: int = 3, lockout: float = 900.0,
                 events: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time):
        place = as_place(data_dir)
        self.root = (Path(place.dir) / "voicemail").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._config = {n: b for n, b in boxes.items() if _BOX.fullmatch(n)}
        self.pin_attempts, self.lockout = pin_attempts, lockout
        self._event = events or (lambda kind: None)
        self._clock = clock
        self.db = open_database(place, DB_FILE, "voicemail", MIGRATIONS)
        self.shared = place.database is not None     # the folder is every node's
        self.outbox = Outbox(self.db, clock)
        self._sync_boxes()
        self.strays_removed = self.clean_strays()

    def close(self) -> None:
        self.db.close()

    # -- boxes -------------------------------------------------------------------------
    def _sync_boxes(self) -> None:
        """The config's PIN replaces the stored one unless the owner changed it
        (by phone or API): a restart must not undo an owner's new PIN."""
        with self.db.transaction():
            for number, box in self._config.items():
                self.db.execute("INSERT INTO mailbox (box) VALUES (?)"
                                " ON CONFLICT (box) DO NOTHING", (number,))
                if box.pin_hash:
                    self.db.execute("UPDATE mailbox SET pin_hash = ? WHERE box = ? AND "
                                    "(pin_origin = 'config' OR pin_hash IS NULL)",
                                    (box.pin_hash, number))

    def mailbox(self, box: str) -> Mailbox:
        base = self._config.get(box)
        if base is None:
            raise UnknownMailbox(f"no mailbox {box!r}")
        row = self.db.one("SELECT settings FROM mailbox WHERE box = ?", (box,))
        changes = json.loads(row[0]) if row else {}
        if "emails" in changes:
            changes["emails"] = tuple(changes["emails"])
        return dataclasses.replace(base, **{k: v for k, v in changes.items() if k in SETTABLE})

    def boxes(self) -> list[Mailbox]:
        return [self.mailbox(n) for n in sorted(self._config)]

    def update_box(self, box: str, **settings) -> Mailbox:
        """Change settings through the API; kept across restarts, over the config."""
        unknown = set(settings) - set(SETTABLE)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        candidate = dataclasses.replace(self.mailbox(box), **{
            k: tuple(v) if k == "emails" else v for k, v in settings.items()})
        if candidate.min_length > candidate.max_length or candidate.max_messages < 1:
            raise ValueError("need min_length <= max_length and max_messages >= 1")
        with self.db.transaction():
            row = self.db.one("SELECT settings FROM mailbox WHERE box = ?", (box,))
            merged = {**json.loads(row[0] if row else "{}"), **settings}
            self.db.execute("UPDATE mailbox SET settings = ? WHERE box = ?",
                            (json.dumps(merged), box))
        return self.mailbox(box)

    def info(self, box: str) -> VoicemailBox:
        """What a flow sees of a box (ivrflows.call.VoicemailBox)."""
        mb = self.mailbox(box)
        new, saved = self.counts(box)
        greetings = {k: str(p) for k in GREETING_KINDS if (p := self.greeting_path(box, k))}
        return VoicemailBox(box, new, saved, mb.max_messages, mb.max_length, mb.min_length,
                            mb.silence, greetings)

    # -- messages ----------------------------------------------------------------------
    def deposit(self, box: str, recording_path: Path | str, caller: str, called: str, *,
                caller_name: str = "", urgent: bool = False,
                received: float | None = None) -> str:
        """File a complete WAV; returns the message id.  The recording is moved
        in (gone from where it was) only when the message is filed."""
        mb = self.mailbox(box)
        src = Path(recording_path)
        duration = wav_seconds(src)
        if duration < mb.min_length:
            self._event("too_short")
            raise MessageTooShort(f"{duration:.1f} s is under the {mb.min_length:g} s minimum")
        with self.db.lock:
            if sum(self.counts(box)) >= mb.max_messages:
                self._event("full")
                raise MailboxFull(f"mailbox {box} holds {mb.max_messages} messages")
            message_id = uuid.uuid4().hex
            final = self.message_path(box, message_id)
            final.parent.mkdir(parents=True, exist_ok=True)
            publish(src, final)
            try:
                with self.db.transaction():
                    # Again under the store's write lock: with PostgreSQL another
                    # node may have filed one into this box since the count above.
                    if sum(self.counts(box)) >= mb.max_messages:
                        self._event("full")
                        raise MailboxFull(f"mailbox {box} holds {mb.max_messages} messages")
                    self._insert_message(message_id, box, caller, caller_name, called,
                                         received or self._clock(), duration, urgent,
                                         final.stat().st_size)
                    self.outbox.queue(message_id, mb.number, mb.emails, mb.webhook)
            except BaseException:
                # Not filed: hand the recording back rather than lose it.
                try:
                    os.replace(final, src)
                except OSError:
                    final.unlink(missing_ok=True)
                raise
        self._event("deposited")
        return message_id

    def _insert_message(self, message_id, box, caller, caller_name, called, received,
                        duration, urgent, size) -> None:
        self.db.execute("INSERT INTO message VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, ?)",
                        (message_id, box, caller, caller_name, called, received,
                         round(duration, 3), int(urgent), size))

    def list(self, box: str, folder: str | None = None, *, since: float | None = None,
             until: float | None = None, caller: str | None = None,
             urgent: bool | None = None, limit: int = 1000) -> list[VoicemailMessage]:
        """Urgent first, then oldest first: the order a caller hears them."""
        self.mailbox(box)
        where, args = ["box = ?"], [box]
        for clause, value in (("folder = ?", folder), ("received >= ?", since),
                              ("received < ?", until), ("caller = ?", caller),
                              ("urgent = ?", None if urgent is None else int(urgent))):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self.db.read(f"SELECT * FROM message WHERE {' AND '.join(where)} "
                            "ORDER BY urgent DESC, received, id LIMIT ?", (*args, limit))
        return [self._message(r) for r in rows]

    def get(self, box: str, message_id: str) -> VoicemailMessage:
        _check_id(message_id)
        row = self.db.one("SELECT * FROM message WHERE box = ? AND id = ?", (box, message_id))
        if row is None:
            raise NoSuchMessage(f"no message {message_id!r} in mailbox {box!r}")
        return self._message(row)

    def _message(self, row) -> VoicemailMessage:
        mid, box, folder, caller, name, called, received, duration, urgent, _ = row
        return VoicemailMessage(mid, box, folder, caller, name, called,
                                datetime.fromtimestamp(received, timezone.utc), duration,
                                bool(urgent), str(self.message_path(box, mid)))

    def mark(self, box: str, message_id: str, folder: str) -> None:
        if folder == "deleted":
            return self.delete(box, message_id)
        if folder not in ("new", "saved"):
            raise ValueError(f"no voicemail folder {folder!r}")
        self.get(box, message_id)
        with self.db.transaction():
            self.db.execute("UPDATE message SET folder = ? WHERE box = ? AND id = ?",
                            (folder, box, message_id))

    def mark_saved(self, box: str, message_id: str) -> None:
        self.mark(box, message_id, "saved")

    def delete(self, box: str, message_id: str) -> None:
        path = self.message_path(box, message_id)
        with self.db.lock:
            with self.db.transaction():
                gone = self.db.execute("DELETE FROM message WHERE box = ? AND id = ?",
                                       (box, message_id)).rowcount
            if not gone:
                raise NoSuchMessage(f"no message {message_id!r} in mailbox {box!r}")
            # Row first: a crash here leaves an orphan file, swept at start.
            path.unlink(missing_ok=True)

    def counts(self, box: str) -> tuple[int, int]:
        """(new, saved)."""
        got = dict(self.db.read("SELECT folder, count(*) FROM message WHERE box = ? "
                                "GROUP BY folder", (box,)))
        return got.get("new", 0), got.get("saved", 0)

    def usage(self) -> dict:
        """Totals for the metrics: messages by folder, bytes, full boxes, the
        fullest box's fill ratio."""
        per_box: dict[str, int] = {}
        folders = {"new": 0, "saved": 0}
        size = 0
        for box, folder, n, b in self.db.read(
                "SELECT box, folder, count(*), sum(bytes) FROM message GROUP BY box, folder"):
            per_box[box] = per_box.get(box, 0) + n
            folders[folder] = folders.get(folder, 0) + n
            size += int(b or 0)     # PostgreSQL's sum of a BIGINT is a NUMERIC
        ratios = [per_box.get(mb.number, 0) / mb.max_messages for mb in self.boxes()]
        return {"messages": folders, "bytes": size, "full": sum(r >= 1 for r in ratios),
                "fill_max": max(ratios, default=0.0)}

    def sweep_retention(self, now: float | None = None) -> int:
        """Delete messages older than their box's retention; returns how many."""
        now = now or self._clock()
        removed = 0
        for mb in self.boxes():
            if mb.retention_days > 0:
                for m in self.list(mb.number, until=now - mb.retention_days * 86400.0):
                    self.delete(mb.number, m.id)
                    removed += 1
        return removed

    # -- greetings ---------------------------------------------------------------------
    def greeting_path(self, box: str, kind: str) -> Path | None:
        path = self._greeting_file(box, kind)
        return path if path.is_file() else None

    def set_greeting(self, box: str, kind: str, audio: Path | bytes) -> Path:
        """Make a WAV (a recording's path, or uploaded bytes) the greeting of
        ``kind``; any PCM WAV is converted to 8 kHz mono 16-bit."""
        self.mailbox(box)
        target = self._greeting_file(box, kind)
        samples = read_wav_8k(audio)
        write_wav_atomic(target, samples)
        if isinstance(audio, Path):
            audio.unlink(missing_ok=True)
        return target

    def delete_greeting(self, box: str, kind: str) -> bool:
        self.mailbox(box)
        path = self._greeting_file(box, kind)
        existed = path.is_file()
        path.unlink(missing_ok=True)
        return existed

    # -- PIN and lockout ---------------------------------------------------------------
    def set_pin(self, box: str, pin: str) -> None:
        """The owner's own PIN (phone or API): a restart keeps it over the config's."""
        self.mailbox(box)
        hashed = hash_pin(check_pin_format(pin))
        with self.db.transaction():
            self.db.execute("UPDATE mailbox SET pin_hash = ?, pin_origin = 'owner', "
                            "failures = 0, locked_until = 0 WHERE box = ?", (hashed, box))

    def login(self, box: str, pin: str) -> LoginResult:
        """``wrong`` also for an unknown box (and as slow); ``locked`` while a
        lockout lasts, before the PIN is even looked at."""
        row = self.db.one("SELECT pin_hash, locked_until FROM mailbox WHERE box = ?",
                          (box,)) if box in self._config else None
        if row is not None and row[1] > self._clock():
            self._event("pin_locked")
            return "locked"
        if verify_pin(pin, row[0] if row else None):
            with self.db.transaction():
                self.db.execute("UPDATE mailbox SET failures = 0, locked_until = 0 "
                                "WHERE box = ?", (box,))
            return "ok"
        self._event("pin_wrong")
        if row is not None:
            with self.db.transaction():
                failures = self.db.execute("UPDATE mailbox SET failures = failures + 1 WHERE "
                                           "box = ? RETURNING failures", (box,)).fetchone()[0]
                if failures >= self.pin_attempts:
                    self.db.execute("UPDATE mailbox SET failures = 0, locked_until = ? "
                                    "WHERE box = ?", (self._clock() + self.lockout, box))
                    self._event("lockout")
        return "wrong"

    def lock_state(self, box: str) -> tuple[int, float]:
        """(wrong PINs in a row, locked until) as persisted."""
        row = self.db.one("SELECT failures, locked_until FROM mailbox WHERE box = ?", (box,))
        return (row[0], row[1]) if row else (0, 0.0)

    # -- files -------------------------------------------------------------------------
    def box_dir(self, box: str) -> Path:
        if not _BOX.fullmatch(box or ""):
            raise UnsafePath(f"bad mailbox number {box!r}")
        return _inside(self.root, self.root / box)

    def message_path(self, box: str, message_id: str) -> Path:
        _check_id(message_id)
        folder = self.box_dir(box)
        return _inside(folder, folder / f"{message_id}.wav")

    def _greeting_file(self, box: str, kind: str) -> Path:
        if kind not in GREETING_KINDS:
            raise UnsafePath(f"no greeting kind {kind!r} (one of {', '.join(GREETING_KINDS)})")
        folder = self.box_dir(box) / "greetings"
        return _inside(folder, folder / f"{kind}.wav")

    def clean_strays(self) -> int:
        """Remove temporary files and audio without an index row (a crash
        between the two steps of a deposit or a delete); returns how many.

        With PostgreSQL the folder is shared by every node, and another
        node's deposit under way looks just like a crash's leftovers (its
        temporary file, or its audio a moment before the row commits): only
        files older than :data:`SHARED_STRAY_AGE` are taken there."""
        min_age = SHARED_STRAY_AGE if self.shared else 0.0
        now = time.time()
        with self.db.lock:
            known = {r[0] for r in self.db.read("SELECT id FROM message")}
            removed = 0
            for path in _walk(self.root):
                stray = path.name.startswith(".") and ".tmp" in path.name
                orphan = (path.parent.parent == self.root and path.suffix == ".wav"
                          and path.stem not in known)
                if (stray or orphan) and _age(path, now) >= min_age:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed


# -- paths ----------------------------------------------------------------------------

def _inside(folder: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()) or resolved == folder.resolve():
        raise UnsafePath(f"{path} is outside {folder}")
    return resolved


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _check_id(message_id: str) -> None:
    if not _ID.fullmatch(message_id or ""):
        raise UnsafePath(f"bad message id {message_id!r}")


def _walk(root: Path) -> Iterable[Path]:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            yield Path(folder) / name


async def keep_retention(store: VoicemailStore, every: float = 3600.0) -> None:
    """Run :meth:`VoicemailStore.sweep_retention` now and every ``every``
    seconds (an engine task; cancel it at stop)."""
    import structlog

    log = structlog.get_logger("sipagent.voicemail.store")
    while True:
        try:
            removed = await asyncio.to_thread(store.sweep_retention)
            if removed:
                log.info("voicemail retention: old messages deleted", count=removed)
        except Exception:
            log.exception("voicemail retention sweep failed")
        await asyncio.sleep(every)
