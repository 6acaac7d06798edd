"""Two-call fax-on-demand: sending the stored fax jobs by calls of our own.

Theory of operation
-------------------
Jobs live in the fax store (SQLite), so they survive a restart: a job that
was being sent when the process died is found ``sending`` at open and put
back in the queue.  This loop, on the engine's asyncio loop:

- waits while the delivery schedule (``[fax] delivery_schedule``) is
  closed, until it next opens;
- claims due jobs, up to ``max_concurrent`` calls at once, and dials
  ``[fax] dial`` with the job's number, the leg carrying fax media from the
  start (the stream is created when the answer arrives);
- sends the job's file from its first page not yet confirmed, T.30 calling
  (the far machine answers);
- files the attempt: ``done`` once every page is confirmed; otherwise the
  confirmed pages are added up and the job is retried after
  ``retry_base`` seconds, doubling up to ``retry_max``, until
  ``max_attempts`` calls were made (``failed``).

A wake-up (a new job) makes the loop look at once; otherwise it sleeps
until the next job is due.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Callable

import structlog

from ivrflows.schedule import Schedule, is_open, next_opening
from sipagent.sip.leg import LegEnded, dial

log = structlog.get_logger("sipagent.fax.dialer")

# The longest the loop sleeps without looking at the store.
IDLE = 30.0
MEDIA_TIMEOUT = 5.0


class FaxDialer:
    def __init__(self, service, settings, *, account: Callable[[], object],
                 track_leg: Callable[[object], None], schedule: Schedule | None = None,
                 clock: Callable[[], float] = time.time):
        self.service, self.store, self.settings = service, service.store, settings
        self._account, self._track = account, track_leg
        self._schedule, self._clock = schedule, clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._active: set[asyncio.Task] = set()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fax-dialer")

    def wake(self) -> None:
        self._wake.set()

    def delivering(self, now: float) -> bool:
        """Whether the delivery schedule allows calls at ``now``."""
        return self._schedule is None or is_open(
            self._schedule, datetime.fromtimestamp(now, timezone.utc))

    def overdue(self, now: float) -> float:
        """Seconds the oldest due job has waited, while delivering (else 0)."""
        due = self.store.oldest_due(now) if self.delivering(now) else None
        return 0.0 if due is None else max(0.0, now - due)

    def halt(self) -> None:
        """Claim no more jobs (the engine is shutting down)."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; attempts under way see their calls end (the engine
        hangs up every leg) and file themselves for a retry.  One still
        running after ``grace`` is cancelled: its job stays ``sending`` and
        the store puts it back in the queue at the next start."""
        self.halt()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._active:
            _, pending = await asyncio.wait(self._active, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._active, return_exceptions=True)

    # -- the loop ---------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fax dialer pass failed")
                delay = IDLE
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def _pass(self) -> float:
        """Start what is due; returns how long to sleep."""
        now = self._clock()
        if not self.delivering(now):
            opens = next_opening(self._schedule, datetime.fromtimestamp(now, timezone.utc))
            return IDLE if opens is None else min(IDLE, max(0.5, opens.timestamp() - now))
        while len(self._active) < self.settings.max_concurrent and not self._stopping:
            job = await asyncio.to_thread(self.store.claim_due_job, now)
            if job is None:
                break
            task = asyncio.get_running_loop().create_task(self._attempt(job),
                                                          name=f"fax-job-{job.id[:8]}")
            self._active.add(task)
            task.add_done_callback(self._done)
        due = await asyncio.to_thread(self.store.next_due)
        return IDLE if due is None else min(IDLE, max(0.05, due - self._clock()))

    def _done(self, task: asyncio.Task) -> None:
        self._active.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fax job attempt failed", error=repr(task.exception()))
        self._wake.set()       # a slot is free

    # -- one call -----------------------------------------------------------------------
    async def _attempt(self, job) -> None:
        jlog = log.bind(fax_job=job.id, number=job.number, attempt=job.attempts)
        uri = self.settings.dial.format(number=job.number)
        jlog.info("fax job dialling", uri=uri, first_page=job.pages_confirmed + 1,
                  pages=job.pages_total)
        record, why = None, ""
        leg = None
        try:
            leg = dial(self._account(), uri, label=f"fax-job-{job.id[:8]}",
                       headers={"X-Sipacd-Fax-Job": job.id})
            leg.use_fax_media(self.service.jitter_policy())
            self._track(leg)
            await leg.until_answered(self.settings.ring_timeout)
            await asyncio.wait_for(leg.media_ready.wait(), MEDIA_TIMEOUT)
            record = await self.service.send(leg, job.documents, job=job, remote=job.number,
                                             call_id=leg.sip_call_id or leg.label, log=jlog)
            why = record.status_text
        except LegEnded as exc:
            why = f"not answered: {exc}"
        except TimeoutError:
            why = "not answered in time"
        except Exception as exc:                  # e.g. a bad URI: pjsua2 refuses to dial
            jlog.exception("fax job call failed")
            why = f"call failed: {exc}"
        finally:
            if leg is not None:
                leg.end()
        await self._file(job, record, why, jlog)

    async def _file(self, job, record, why: str, jlog) -> None:
        confirmed = min(job.pages_total, job.pages_confirmed + (record.pages if record else 0))
        if record is not None and record.ok and confirmed >= job.pages_total:
            state, next_at = "done", None
        elif job.attempts >= self.settings.max_attempts:
            state, next_at = "failed", None
        else:
            s = self.settings
            state = "queued"
            next_at = self._clock() + min(s.retry_max, s.retry_base * 2 ** (job.attempts - 1))
        await asyncio.to_thread(self.store.finish_attempt, job.id, pages_confirmed=confirmed,
                                state=state, next_attempt=next_at, status=why)
        (jlog.info if state == "done" else jlog.warning)(
            "fax job attempt over", state=state, status=why, pages_confirmed=confirmed,
            pages=job.pages_total,
            retry_in=None if next_at is None else round(next_at - self._clock(), 1))
