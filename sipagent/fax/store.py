"""Fax on disk: the document library, the record of every fax sent or
received, and the two-call jobs (a fax owed to a number).

Theory of operation
-------------------
The ``fax`` store (``<data>/fax.sqlite3``, WAL, ``synchronous=FULL``; or its
schema in PostgreSQL with ``[data] database``) indexes three kinds of
file under ``<data>/fax/``: ``documents/`` (library documents as TIFF-F,
named ``<number>-<random>.tif`` so a replacement never overwrites the file a
call may be sending), ``received/`` (``<id>.tif`` and its ``<id>.pdf``) and
``jobs/`` (``<id>.tif``: a job's documents joined when it was created, so
editing the library later does not change what a caller asked for).

The one rule: a row points to a file only once the file is complete (hidden
temporary name, fsync, rename, fsync of the folder, then the commit).  A
delete commits the row away first, then unlinks.  A crash between the two
steps leaves a file no row names; :meth:`FaxStore.clean_strays` removes it,
with any temporary file, when the store opens.

The CLI opens the folder while the engine runs, and the engine's unfinished
files look just like strays.  So each store holds a shared ``flock`` on
``fax/store.lock``; only the sole user of the folder (the exclusive lock)
sweeps, or puts back jobs found ``sending`` (a crash mid-call).

Methods block (SQLite, fsync, ghostscript): the engine calls them through
``asyncio.to_thread``.  The index is a :class:`sipagent.store.database.Database`
(one connection, one lock, ``BEGIN IMMEDIATE`` transactions).
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from sipagent.fax.documents import (PAPER_SIZES, DocumentError, join_tiffs, tiff_pages,
                                    to_fax_document, to_pdf)
from sipagent.fax.jobs import NEXT_SEQ, FaxJobBook
from sipagent.fax.records import (DOCUMENT_NUMBER, FAX_NUMBER, JOB_STATES,
                                  DocumentExists, DocumentRejected, FaxAccessDenied,
                                  FaxDocument, FaxJob, FaxRecord, FaxStoreError, JobBusy,
                                  NoSuchDocument, NoSuchFax, NoSuchJob, check_id)
from sipagent.store.backends import open_database
from sipagent.store.database import StorePlace, as_place
from sipagent.store.files import publish
from sipagent.store.outbox import SCHEMA as OUTBOX_SCHEMA, Outbox
from sipagent.store.pin import check_pin_format, hash_pin, verify_pin

# The store's records and errors are imported from here by its users.
__all__ = ["FaxStore", "DB_FILE", "DOCUMENT_NUMBER", "FAX_NUMBER", "JOB_STATES", "FaxDocument",
           "FaxRecord", "FaxJob", "FaxStoreError", "DocumentRejected", "DocumentExists",
           "NoSuchDocument", "FaxAccessDenied", "NoSuchFax", "NoSuchJob", "JobBusy"]

DB_FILE = "fax.sqlite3"
MAX_TITLE = 200
# With a shared folder (PostgreSQL), a file nobody names must be this old to
# be swept: another node's document or received fax may be a moment from
# its row.
SHARED_STRAY_AGE = 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS document (
    number TEXT PRIMARY KEY, title TEXT NOT NULL, pages INTEGER NOT NULL, pin_hash TEXT,
    file TEXT NOT NULL, size INTEGER NOT NULL, added REAL NOT NULL, updated REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS fax (
    id TEXT PRIMARY KEY, direction TEXT NOT NULL CHECK (direction IN ('send', 'receive')),
    ok INTEGER NOT NULL, status INTEGER NOT NULL, status_text TEXT NOT NULL,
    pages INTEGER NOT NULL, bit_rate INTEGER NOT NULL, resolution TEXT NOT NULL,
    ecm INTEGER NOT NULL, remote_ident TEXT NOT NULL, seconds REAL NOT NULL,
    call_id TEXT NOT NULL, remote TEXT NOT NULL, documents TEXT NOT NULL, job_id TEXT,
    tiff TEXT, pdf TEXT, started REAL NOT NULL, ended REAL NOT NULL);
CREATE INDEX IF NOT EXISTS fax_by_time ON fax (direction, ended);
CREATE TABLE IF NOT EXISTS job (
    id TEXT PRIMARY KEY, number TEXT NOT NULL, documents TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'done', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL, pages_total INTEGER NOT NULL, pages_confirmed INTEGER NOT NULL,
    next_attempt REAL, last_status TEXT NOT NULL, call_id TEXT,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS job_due ON job (state, next_attempt);
"""
# Faxes and jobs in the order they were recorded, for "newest first" among
# equal times (SQLite's ``rowid`` did it; PostgreSQL has none).
_ORDER_COLUMNS = ("ALTER TABLE fax ADD COLUMN seq INTEGER",
                  "ALTER TABLE job ADD COLUMN seq INTEGER",
                  "CREATE INDEX IF NOT EXISTS fax_seq ON fax (seq)",
                  "CREATE INDEX IF NOT EXISTS job_seq ON job (seq)")
ORDER = {
    "sqlite": _ORDER_COLUMNS + ("UPDATE fax SET seq = rowid", "UPDATE job SET seq = rowid"),
    "postgresql": _ORDER_COLUMNS + (
        "UPDATE fax SET seq = (SELECT count(*) FROM fax o WHERE o.ended < fax.ended"
        " OR (o.ended = fax.ended AND o.id <= fax.id))",
        "UPDATE job SET seq = (SELECT count(*) FROM job o WHERE o.created < job.created"
        " OR (o.created = job.created AND o.id <= job.id))"),
}
#: The schema's versions (``sipagent/store/migrations.py``); the outbox is
#: part of the first.
MIGRATIONS = ((SCHEMA, OUTBOX_SCHEMA), ORDER)
_DOC = "number, title, pages, pin_hash, file, size, added, updated"
_FAX = ("id, direction, ok, status, status_text, pages, bit_rate, resolution, ecm, "
        "remote_ident, seconds, call_id, remote, documents, job_id, tiff, pdf, started, ended")


class FaxStore(FaxJobBook):
    def __init__(self, data_dir: StorePlace | Path | str, *, max_pages: int = 50, paper: str = "a4",
                 clock: Callable[[], float] = time.time, pin_attempts: int = 5,
                 lockout: float = 900.0):
        if paper not in PAPER_SIZES:
            raise ValueError(f"paper: one of {', '.join(PAPER_SIZES)}, not {paper!r}")
        place = as_place(data_dir)
        data_dir = Path(place.dir)
        self.root = (data_dir / "fax").resolve()
        self.documents_dir = self.root / "documents"
        self.received_dir = self.root / "received"
        self.jobs_dir = self.root / "jobs"
        for folder in (self.documents_dir, self.received_dir, self.jobs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.max_pages, self.paper, self._clock = max_pages, paper, clock
        self.pin_attempts, self.lockout = pin_attempts, lockout
        self._folder_lock = open(self.root / "store.lock", "a+b")
        self.db = open_database(place, DB_FILE, "fax", MIGRATIONS,
                                timeout=30.0)
        self.shared = place.database is not None     # other nodes use the folder and rows
        self.outbox = Outbox(self.db, clock)
        self.jobs_resumed = self.strays_removed = 0
        with self.db.lock:
            if self._sole_user():
                try:
                    self.jobs_resumed = self._resume_jobs()
                    self.strays_removed = self._remove_strays()
                finally:
                    fcntl.flock(self._folder_lock, fcntl.LOCK_SH)

    def close(self) -> None:
        with self.db.lock:
            self.db.close()
            self._folder_lock.close()

    # -- library -----------------------------------------------------------------------
    def add_document(self, number: str, source: Path | str, *, title: str = "",
                     pin: str | None = None) -> FaxDocument:
        number, title = _document_number(number), _title(title)
        pin_hash = None if pin is None else hash_pin(_pin(pin))
        if self.db.one("SELECT 1 FROM document WHERE number = ?", (number,)):
            raise DocumentExists(f"document {number} exists already")
        final, pages = self._render(number, Path(source))
        try:
            with self.db.transaction():
                if self.db.one("SELECT 1 FROM document WHERE number = ?", (number,)):
                    raise DocumentExists(f"document {number} exists already")
                now = self._clock()
                self.db.execute(f"INSERT INTO document ({_DOC}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (number, title, pages, pin_hash, final.name,
                                 final.stat().st_size, now, now))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return self.document(number)

    def replace_document(self, number: str, source: Path | str, *,
                         title: str | None = None) -> FaxDocument:
        """New content (and title, if given) under the same number and PIN."""
        self.document(number)
        title = None if title is None else _title(title)
        final, pages = self._render(number, Path(source))
        try:
            with self.db.transaction():
                row = self.db.one("SELECT file FROM document WHERE number = ?", (number,))
                if row is None:
                    raise NoSuchDocument(f"no document {number}")
                self.db.execute("UPDATE document SET file = ?, pages = ?, size = ?, "
                                "title = coalesce(?, title), updated = ? WHERE number = ?",
                                (final.name, pages, final.stat().st_size, title,
                                 self._clock(), number))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        self._document_file(row[0]).unlink(missing_ok=True)
        return self.document(number)

    def set_document_pin(self, number: str, pin: str | None) -> FaxDocument:
        pin_hash = None if pin is None else hash_pin(_pin(pin))
        with self.db.transaction():
            changed = self.db.execute(
                "UPDATE document SET pin_hash = ?, failures = 0, locked_until = 0, updated = ? "
                "WHERE number = ?", (pin_hash, self._clock(), str(number))).rowcount
            if not changed:
                raise NoSuchDocument(f"no document {number}")
        return self.document(number)

    def remove_document(self, number: str) -> None:
        with self.db.transaction():
            row = self.db.one("SELECT file FROM document WHERE number = ?", (str(number),))
            if row is None:
                raise NoSuchDocument(f"no document {number}")
            self.db.execute("DELETE FROM document WHERE number = ?", (number,))
        self._document_file(row[0]).unlink(missing_ok=True)

    def document(self, number: str) -> FaxDocument:
        row = self.db.one(f"SELECT {_DOC} FROM document WHERE number = ?", (str(number),))
        if row is None:
            raise NoSuchDocument(f"no document {number}")
        return self._document(row)

    def documents(self) -> list[FaxDocument]:
        rows = self.db.read(f"SELECT {_DOC} FROM document "
                            "ORDER BY CAST(number AS BIGINT), number")
        return [self._document(r) for r in rows]

    def check_access(self, number: str, pin: str | None) -> FaxDocument:
        """The document if it is public or ``pin`` opens it.  Wrong PINs in a
        row lock it for a while: four digits fall to a patient caller."""
        doc = self.document(number)
        pin_hash, failures, locked_until = self.db.one(
            "SELECT pin_hash, failures, locked_until FROM document WHERE number = ?",
            (doc.number,))
        if pin_hash is None:
            return doc
        now = self._clock()
        if locked_until > now:
            raise FaxAccessDenied(f"document {number} is locked after too many wrong PINs")
        if pin is None:
            raise FaxAccessDenied(f"document {number} needs its PIN")
        if verify_pin(pin, pin_hash):
            if failures:
                with self.db.transaction():
                    self.db.execute("UPDATE document SET failures = 0 WHERE number = ?",
                                    (number,))
            return doc
        with self.db.transaction():
            failures = self.db.execute("UPDATE document SET failures = failures + 1 WHERE "
                                       "number = ? RETURNING failures", (number,)).fetchone()
            if failures and failures[0] >= self.pin_attempts:
                self.db.execute("UPDATE document SET failures = 0, locked_until = ? "
                                "WHERE number = ?", (now + self.lockout, number))
        raise FaxAccessDenied(f"wrong PIN for document {number}")

    def compose(self, numbers: Sequence[str], dst: Path | str) -> int:
        """The documents' pages joined in order into ``dst``; the page count."""
        if not numbers:
            raise FaxStoreError("no documents to send")
        # Under the lock: a replacement must not unlink a file tiffcp reads.
        with self.db.lock:
            paths = [self.document(n).path for n in numbers]
            try:
                return join_tiffs(paths, Path(dst))
            except DocumentError as exc:
                raise FaxStoreError(str(exc)) from None

    def upload_path(self) -> Path:
        """A hidden name for an upload on its way to :meth:`add_document`
        (swept at start if a crash leaves it)."""
        return self.documents_dir / f".upload-{uuid.uuid4().hex}.tmp"

    def _render(self, number: str, source: Path) -> tuple[Path, int]:
        """``source`` as a complete TIFF-F under a new name; nothing is left
        behind when it is refused."""
        final = self.documents_dir / f"{number}-{uuid.uuid4().hex}.tif"
        try:
            return final, to_fax_document(source, final, paper=self.paper,
                                          max_pages=self.max_pages)
        except DocumentError as exc:
            raise DocumentRejected(str(exc)) from None

    def _document(self, row) -> FaxDocument:
        number, title, pages, pin_hash, file, size, added, updated = row
        return FaxDocument(number, title, pages, pin_hash is not None,
                           self._document_file(file), size, added, updated)

    def _document_file(self, name: str) -> Path:
        return _inside(self.documents_dir, name)

    # -- faxes (results) ---------------------------------------------------------------
    def new_fax_id(self) -> str:
        return uuid.uuid4().hex

    def received_paths(self, fax_id: str) -> tuple[Path, Path, Path]:
        """(hidden temporary TIFF the modem writes, final TIFF, final PDF)."""
        check_id(fax_id, FaxStoreError)
        d = self.received_dir
        return d / f".{fax_id}.tmp.tif", d / f"{fax_id}.tif", d / f"{fax_id}.pdf"

    def file_received(self, fax_id: str) -> tuple[Path, Path]:
        """The modem's finished TIFF put in place, and its PDF beside it."""
        tmp, tiff, pdf = self.received_paths(fax_id)
        try:
            if not tiff_pages(tmp):
                raise DocumentError("no pages")
        except (DocumentError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise DocumentRejected(f"the received fax is unreadable: {exc}") from None
        publish(tmp, tiff)
        try:
            to_pdf(tiff, pdf)
        except DocumentError as exc:
            raise DocumentRejected(f"the received fax could not be made a PDF: {exc}") from None
        return tiff, pdf

    def record_fax(self, fax_id: str, direction: str, result: dict, *, call_id: str,
                   remote: str, started: float, documents: Sequence[str] = (),
                   job_id: str | None = None, tiff: Path | None = None,
                   pdf: Path | None = None, emails: Sequence[str] = (),
                   webhook: str | None = None) -> FaxRecord:
        """One transfer's outcome, with the notifications it owes in the
        same transaction (a recorded fax always has them)."""
        check_id(fax_id, FaxStoreError)
        if direction not in ("send", "receive"):
            raise FaxStoreError(f"direction: send or receive, not {direction!r}")
        r = result or {}
        row = (fax_id, direction, int(bool(r.get("ok"))), int(r.get("status", -1)),
               str(r.get("status_text", "")), int(r.get("pages", 0)), int(r.get("bit_rate", 0)),
               str(r.get("resolution", "")), int(bool(r.get("ecm"))),
               str(r.get("remote_ident", "")), float(r.get("line_seconds", 0.0)), call_id,
               remote, json.dumps(list(documents)), job_id, self._received_name(tiff),
               self._received_name(pdf), started, self._clock())
        with self.db.transaction():
            if self.db.one("SELECT 1 FROM fax WHERE id = ?", (fax_id,)):
                raise FaxStoreError(f"fax {fax_id} is recorded already")
            self.db.execute(f"INSERT INTO fax ({_FAX}, seq) VALUES "
                            f"({', '.join('?' * len(row))}, {NEXT_SEQ.format(table='fax')})",
                            row)
            self.outbox.queue(fax_id, "fax", emails, webhook)
        return self.fax(fax_id)

    def fax(self, fax_id: str) -> FaxRecord:
        row = self.db.one(f"SELECT {_FAX} FROM fax WHERE id = ?", (str(fax_id),))
        if row is None:
            raise NoSuchFax(f"no fax {fax_id}")
        (fid, direction, ok, status, text, pages, rate, res, ecm, ident, seconds, call_id,
         remote, documents, job_id, tiff, pdf, started, ended) = row
        return FaxRecord(fid, direction, bool(ok), status, text, pages, rate, res, bool(ecm),
                         ident, seconds, call_id, remote, tuple(json.loads(documents)), job_id,
                         _inside(self.received_dir, tiff) if tiff else None,
                         _inside(self.received_dir, pdf) if pdf else None, started, ended)

    def faxes(self, direction: str | None = None, *, limit: int = 100) -> list[FaxRecord]:
        """Newest first."""
        if direction not in (None, "send", "receive"):
            raise FaxStoreError(f"direction: send or receive, not {direction!r}")
        where, args = ("", ()) if direction is None else ("WHERE direction = ? ", (direction,))
        rows = self.db.read(f"SELECT id FROM fax {where}ORDER BY ended DESC, seq DESC LIMIT ?",
                            (*args, max(0, limit)))
        return [self.fax(r[0]) for r in rows]

    def _received_name(self, path: Path | None) -> str | None:
        if path is None:
            return None
        name = Path(path).name
        if _inside(self.received_dir, name) != Path(path).resolve():
            raise FaxStoreError(f"{path} is not in {self.received_dir}")
        return name

    # -- files -------------------------------------------------------------------------
    def clean_strays(self) -> int:
        """Remove temporary files and files no row names; returns how many.
        Does nothing (0) while another store has the folder open: its
        unfinished files look just like strays."""
        with self.db.lock:
            if not self._sole_user():
                return 0
            try:
                return self._remove_strays()
            finally:
                fcntl.flock(self._folder_lock, fcntl.LOCK_SH)

    def _remove_strays(self) -> int:
        names = self.db.read("SELECT file FROM document")
        known = {self.documents_dir: {r[0] for r in names},
                 self.received_dir: {n for r in self.db.read("SELECT tiff, pdf FROM fax")
                                     for n in r if n},
                 self.jobs_dir: {f"{r[0]}.tif" for r in self.db.read(
                     "SELECT id FROM job WHERE state IN ('queued', 'sending')")}}
        removed = 0
        # A shared folder (PostgreSQL): a young file may be another node's
        # work under way, whatever the folder lock says on that file system.
        oldest = time.time() - SHARED_STRAY_AGE if self.shared else float("inf")
        for folder, names in known.items():
            for entry in os.scandir(folder):
                if (not entry.is_dir(follow_symlinks=False) and entry.name not in names
                        and _mtime(entry) < oldest):
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    def _sole_user(self) -> bool:
        """Take the folder lock exclusively if no other store holds it;
        otherwise hold it shared (the caller goes back to shared after)."""
        try:
            fcntl.flock(self._folder_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            fcntl.flock(self._folder_lock, fcntl.LOCK_SH)
            return False


def _mtime(entry: os.DirEntry) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("inf")


def _document_number(number: str) -> str:
    if not isinstance(number, str) or not DOCUMENT_NUMBER.fullmatch(number):
        raise FaxStoreError(f"a document number is 1 to 10 digits, not {number!r}")
    return number


def _title(title: str) -> str:
    if not isinstance(title, str) or len(title) > MAX_TITLE or not title.isprintable():
        raise FaxStoreError(f"a title is at most {MAX_TITLE} printable characters")
    return title.strip()


def _pin(pin: str) -> str:
    try:
        return check_pin_format(pin if isinstance(pin, str) else "")
    except ValueError as exc:
        raise FaxStoreError(str(exc)) from None


def _inside(folder: Path, name: str) -> Path:
    """``folder/name``, refused if the name (from a row) leads elsewhere."""
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise FaxStoreError(f"{name!r} is not a file in {folder}")
    return path
