"""Running a fax on a call leg, and filing its result.

Theory of operation
-------------------
A :class:`FaxSession` (spandsp in C, ``sipagent/mediaports/fax.pyx``) is
attached to the leg's conference slot; from then on the bridge's clock
thread feeds the modem without Python.  This coroutine only waits: for
T.30's phase E (the session's eventfd), the call's end, or the time limit.
When the call ends first, the session is terminated so that T.30 still
reports how far it got (``The call dropped prematurely`` and the pages the
far end confirmed); a two-call retry resumes from there.

Filing follows the store's rule (a row points only to complete files): a
received fax is written by the modem under a hidden temporary name, renamed
and converted to PDF, and only then recorded, together with the
notifications it owes (one transaction), and the notifier is woken.

Fax needs media that neither loses nor invents samples (see
``sipagent/sip/fax_media.py``): the leg should carry the fax jitter policy from
before its media existed (a route with ``fax = true``, or an outbound fax
call).  A fax on any other leg is tried anyway, with a warning.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from sipagent.sip import fax_media
from sipagent.fax.metrics import FaxMetrics
from sipagent.mediaports.fax import FaxSession
from sipagent.tasks import cancel_and_wait

# After phase E the last T.30 frames (MCF, DCN) are still in flight through
# RTP and the far jitter buffer; hanging up at once can cut them off.
LINGER = 2.0


def dropped(why: str) -> dict:
    """A result for a fax that never reached T.30 at all."""
    return {"ok": False, "status": -1, "status_text": why, "pages": 0, "bit_rate": 0,
            "ecm": False, "resolution": "", "remote_ident": "", "line_seconds": 0.0}


class FaxService:
    def __init__(self, store, settings, metrics: FaxMetrics, *, data_dir: Path,
                 wake_notifier: Callable[[], None] = lambda: None):
        self.store, self.settings, self.metrics = store, settings, metrics
        self.scratch = Path(data_dir) / "fax" / "jobs"
        self._wake_notifier = wake_notifier
        self.dialer = None      # FaxDialer when two-call is configured

    def jitter_policy(self) -> fax_media.JitterPolicy:
        return fax_media.JitterPolicy(fixed_ms=self.settings.jitter_ms)

    def session(self, mode: str, tiff: Path, *, calling: bool, start_page: int = 0) -> FaxSession:
        s = self.settings
        return FaxSession(mode, str(tiff), calling=calling, ident=s.ident, ecm=s.ecm,
                          header=s.header, v17=s.v17, start_page=start_page)

    async def run(self, leg, session: FaxSession, log) -> dict:
        """Attach ``session`` to ``leg`` and wait for its result; always
        closes the session.  Call once the leg's media is up."""
        if leg.media_policy is None:
            log.warning("fax on a call without fax media settings (set fax = true on its "
                        "route): the jitter buffer may drop frames and break the fax")
        try:
            slot = fax_media.audio_slot(leg) if not leg.is_ended else None
            if slot is None:
                return dropped("no audio on the call")
            session.attach(slot)
            waiter = asyncio.ensure_future(session.wait())
            done, _ = await asyncio.wait([waiter, leg.ended], timeout=self.settings.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                result = waiter.result()
                # Let the last frames drain unless the far end hangs up first.
                await asyncio.wait([leg.ended], timeout=LINGER)
                return result
            await cancel_and_wait(waiter)
            progress = session.progress()
            session.terminate()
            result = session.poll() or dropped("call ended before T.30 finished")
            if not done:
                result = {**result, "status_text": f"timed out after {self.settings.timeout:g} s"}
                log.warning("fax timed out", progress=progress)
            return result
        finally:
            session.close()

    async def send(self, leg, documents: Sequence[str], *, call_id: str, remote: str, log,
                   calling: bool = True, job=None):
        """Transmit library documents (or a two-call ``job``'s file, from its
        first unconfirmed page) on ``leg``; returns the filed FaxRecord."""
        started = time.time()
        if job is not None:
            tiff, start_page, scratch = job.path, job.pages_confirmed, None
        else:
            self.scratch.mkdir(parents=True, exist_ok=True)
            # Joined under a hidden name: a crash leaves a stray the store sweeps.
            scratch = tiff = self.scratch / f".send-{uuid.uuid4().hex}.tif"
            start_page = 0
            await asyncio.to_thread(self.store.compose, list(documents), tiff)
        try:
            log.info("fax sending", documents=list(documents), start_page=start_page)
            result = await self.run(leg, self.session("send", tiff, calling=calling,
                                                      start_page=start_page), log)
        finally:
            if scratch is not None:
                scratch.unlink(missing_ok=True)
        return await self._file("send", result, call_id=call_id, remote=remote, started=started,
                                documents=documents, job_id=job.id if job else None, log=log)

    async def receive(self, leg, *, call_id: str, remote: str, log):
        """Receive on ``leg`` (T.30 answering role); returns the filed FaxRecord."""
        started = time.time()
        fax_id = self.store.new_fax_id()
        tmp, _, _ = self.store.received_paths(fax_id)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        log.info("fax receiving", fax_id=fax_id)
        result = await self.run(leg, self.session("receive", tmp, calling=False), log)
        tiff = pdf = None
        if result.get("pages"):
            try:
                tiff, pdf = await asyncio.to_thread(self.store.file_received, fax_id)
            except Exception as exc:        # keep the record: the result still counts
                log.error("received fax could not be filed", error=str(exc))
                result = {**result, "ok": False, "status_text": f"not filed: {exc}"}
        tmp.unlink(missing_ok=True)
        s = self.settings
        return await self._file("receive", result, call_id=call_id, remote=remote,
                                started=started, fax_id=fax_id, tiff=tiff, pdf=pdf,
                                emails=s.receive_email, webhook=s.receive_webhook, log=log)

    async def _file(self, direction: str, result: dict, *, log, fax_id: str | None = None,
                    **record):
        fax_id = fax_id or self.store.new_fax_id()
        self.metrics.fax_done(direction, result)
        rec = await asyncio.to_thread(self.store.record_fax, fax_id, direction, result, **record)
        (log.info if rec.ok else log.warning)(
            "fax finished", fax_id=fax_id, direction=direction, ok=rec.ok, status=rec.status,
            status_text=rec.status_text, pages=rec.pages, bit_rate=rec.bit_rate,
            seconds=round(rec.seconds, 1), remote_ident=rec.remote_ident)
        if direction == "receive":
            self._wake_notifier()
        return rec
