"""Two-call fax jobs in the fax store: a fax owed to a number, sent later by
a call of the engine's own (``sipagent/fax/dialer.py``) and retried until
every page is confirmed.

A mixin of :class:`sipagent.fax.store.FaxStore` (its database, lock and
folders), kept apart because jobs have a life of their own: ``queued`` ->
``sending`` (claimed by the dialer) -> ``queued`` again for a retry, or
``done``/``failed``; ``cancelled`` from ``queued`` only.  A job found
``sending`` when the store opens was cut short by a crash and is queued
again at once; with PostgreSQL (several nodes) only once its claim is an
hour old, since until then it may be another node's call under way.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Mapping, Sequence

from sipagent.fax.records import (FAX_NUMBER, JOB_STATES, FaxJob, FaxStoreError, JobBusy,
                                  NoSuchJob, check_id)
from sipagent.store.database import Database

_JOB = ("id, number, documents, state, attempts, pages_total, pages_confirmed, next_attempt, "
        "last_status, call_id, created, updated")
# A new row's place in the order rows were added (under the store's write lock).
NEXT_SEQ = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM {table})"
# With PostgreSQL several nodes share the jobs: one found ``sending`` may be
# another node's call under way.  Only a claim this old (no fax call lasts
# an hour) is taken for a dead node's and queued again.
SHARED_SENDING_STALE = 3600.0
_REQUEUE = ("UPDATE job SET state = 'queued', next_attempt = ?, updated = ? "
            "WHERE state = 'sending'")


class FaxJobBook:
    # From FaxStore: its index, folder, clock and document checks.
    db: Database
    jobs_dir: Path
    shared: bool            # PostgreSQL: other nodes use the same jobs

    def create_job(self, number: str, documents: Sequence[str], *,
                   pins: Mapping[str, str] | None = None, call_id: str | None = None,
                   not_before: float | None = None) -> FaxJob:
        """Check the number and every document's PIN, join the documents into
        the job's own TIFF, then queue it."""
        if not isinstance(number, str) or not FAX_NUMBER.fullmatch(number):
            raise FaxStoreError(f"{number!r} is not a fax number (2 to 32 digits, "
                                "optionally a leading +)")
        documents = tuple(documents)
        if not documents:
            raise FaxStoreError("a fax job needs at least one document")
        for doc in dict.fromkeys(documents):
            self.check_access(doc, (pins or {}).get(doc))
        job_id = uuid.uuid4().hex
        path = self._job_file(job_id)
        pages = self.compose(documents, path)
        now = self._clock()
        try:
            with self.db.transaction():
                self.db.execute(f"INSERT INTO job ({_JOB}, seq) VALUES "
                                "(?, ?, ?, 'queued', 0, ?, 0, ?, '', ?, ?, ?, "
                                f"{NEXT_SEQ.format(table='job')})",
                                (job_id, number, json.dumps(documents), pages,
                                 now if not_before is None else not_before, call_id, now, now))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self.job(job_id)

    def claim_due_job(self, now: float) -> FaxJob | None:
        """The oldest queued job that is due, now ``sending``."""
        with self.db.transaction():
            if self.shared:      # a dead node's claims go back in the queue
                self.db.execute(_REQUEUE + " AND updated < ?",
                                (now, now, now - SHARED_SENDING_STALE))
            row = self.db.one("SELECT id FROM job WHERE state = 'queued' AND next_attempt <= ? "
                              "ORDER BY created, id LIMIT 1", (now,))
            if row is None:
                return None
            self.db.execute("UPDATE job SET state = 'sending', attempts = attempts + 1, "
                            "updated = ? WHERE id = ?", (now, row[0]))
        return self.job(row[0])

    def finish_attempt(self, job_id: str, *, pages_confirmed: int, state: str,
                       next_attempt: float | None, status: str) -> FaxJob:
        """The outcome of a claimed job's call: ``queued`` (retry at
        ``next_attempt``), ``done`` or ``failed``."""
        if state not in ("queued", "done", "failed"):
            raise FaxStoreError(f"an attempt ends queued, done or failed, not {state!r}")
        now = self._clock()
        due = (now if next_attempt is None else next_attempt) if state == "queued" else None
        with self.db.transaction():
            current = self._job_state(job_id)
            if current != "sending":
                raise JobBusy(f"job {job_id} is {current}, not being sent")
            self.db.execute("UPDATE job SET state = ?, pages_confirmed = ?, next_attempt = ?, "
                            "last_status = ?, updated = ? WHERE id = ?",
                            (state, pages_confirmed, due, status, now, job_id))
        if state != "queued":
            self._job_file(job_id).unlink(missing_ok=True)
        return self.job(job_id)

    def cancel_job(self, job_id: str) -> FaxJob:
        with self.db.transaction():
            current = self._job_state(job_id)
            if current != "queued":
                raise JobBusy(f"job {job_id} is {current}: only a queued job can be cancelled")
            self.db.execute("UPDATE job SET state = 'cancelled', next_attempt = NULL, "
                            "updated = ? WHERE id = ?", (self._clock(), job_id))
        self._job_file(job_id).unlink(missing_ok=True)
        return self.job(job_id)

    def job(self, job_id: str) -> FaxJob:
        row = self.db.one(f"SELECT {_JOB} FROM job WHERE id = ?", (str(job_id),))
        if row is None:
            raise NoSuchJob(f"no fax job {job_id}")
        jid, number, documents, *rest = row
        return FaxJob(jid, number, tuple(json.loads(documents)), *rest, self._job_file(jid))

    def jobs(self, state: str | None = None, *, limit: int = 100) -> list[FaxJob]:
        """Newest first."""
        if state is not None and state not in JOB_STATES:
            raise FaxStoreError(f"state: one of {', '.join(JOB_STATES)}, not {state!r}")
        where, args = ("", ()) if state is None else ("WHERE state = ? ", (state,))
        rows = self.db.read(f"SELECT id FROM job {where}ORDER BY created DESC, seq DESC LIMIT ?",
                            (*args, max(0, limit)))
        return [self.job(r[0]) for r in rows]

    def job_counts(self) -> dict[str, int]:
        """Jobs per state, every state present (the metrics' gauge)."""
        got = dict(self.db.read("SELECT state, count(*) FROM job GROUP BY state"))
        return {state: got.get(state, 0) for state in JOB_STATES}

    def oldest_due(self, now: float) -> float | None:
        """When the longest-waiting due queued job became due (None: none is)."""
        return self.db.one("SELECT min(next_attempt) FROM job WHERE state = 'queued' "
                           "AND next_attempt <= ?", (now,))[0]

    def next_due(self) -> float | None:
        return self.db.one("SELECT min(next_attempt) FROM job WHERE state = 'queued'")[0]

    def _job_state(self, job_id: str) -> str:
        row = self.db.one("SELECT state FROM job WHERE id = ?", (str(job_id),))
        if row is None:
            raise NoSuchJob(f"no fax job {job_id}")
        return row[0]

    def _job_file(self, job_id: str) -> Path:
        check_id(job_id, NoSuchJob)
        return self.jobs_dir / f"{job_id}.tif"

    def _resume_jobs(self) -> int:
        """Jobs a crash left ``sending`` queued again (with a shared store,
        only claims too old to be another node's call under way)."""
        now = self._clock()
        with self.db.transaction():
            if self.shared:
                return self.db.execute(_REQUEUE + " AND updated < ?",
                                       (now, now, now - SHARED_SENDING_STALE)).rowcount
            return self.db.execute(_REQUEUE, (now, now)).rowcount
