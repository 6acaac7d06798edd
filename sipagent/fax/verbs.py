"""The fax verbs of :class:`ivrflows.Call` on a SIP call.

``SipCall`` mixes this in.  Library lookups, PIN checks and two-call jobs
touch no media and never raise :class:`ivrflows.CallerHangup`; sending and
receiving run the modem on the call through the call's fax service
(:class:`sipagent.fax.service.FaxService`).

The call keeps the protected documents its caller unlocked with a PIN; a
protected document that was not unlocked is refused by every verb that
would send it, so a flow cannot leak one by mistake.

Needs from the class it is mixed into: ``_services`` (a
:class:`sipagent.calls.services.CallServices`: ``fax_service()``), ``leg``,
``call_id``, ``caller``, ``answered``, ``answer()``, ``_alive()``, ``log``.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from ivrflows.fax_types import FaxDocumentInfo, FaxRefused, FaxResult, FaxUnavailable


def fax_result(record) -> FaxResult:
    return FaxResult(record.ok, record.status, record.status_text, record.pages,
                     record.bit_rate, record.resolution, record.ecm, record.remote_ident,
                     record.seconds, record.id)


class FaxVerbs:
    _services: object

    def _fax(self):
        return self._services.fax_service()   # LookupError without fax

    def _fax_unlocked(self) -> dict[str, str]:
        """Document number -> the PIN that unlocked it (a two-call job is
        checked again by the store when it is created)."""
        return self.__dict__.setdefault("_fax_unlocked_documents", {})

    async def _fax_granted(self, documents: Sequence[str]) -> None:
        from sipagent.fax.store import FaxAccessDenied, NoSuchDocument

        if not documents:
            raise ValueError("no documents to fax")
        store = self._fax().store
        for number in documents:
            try:
                await asyncio.to_thread(store.check_access, number, None)
            except NoSuchDocument:
                raise FaxRefused(number, "unknown") from None
            except FaxAccessDenied:
                if number not in self._fax_unlocked():
                    self.log.warning("fax document refused: not unlocked", document=number)
                    raise FaxRefused(number, "pin") from None

    async def fax_document(self, number: str) -> FaxDocumentInfo | None:
        from sipagent.fax.store import NoSuchDocument

        try:
            doc = await asyncio.to_thread(self._fax().store.document, number)
        except NoSuchDocument:
            return None
        return FaxDocumentInfo(doc.number, doc.title, doc.pages, doc.protected)

    async def fax_unlock(self, number: str, pin: str) -> bool:
        from sipagent.fax.store import FaxAccessDenied, NoSuchDocument

        try:
            await asyncio.to_thread(self._fax().store.check_access, number, pin)
        except (NoSuchDocument, FaxAccessDenied):
            self.log.info("fax document PIN refused", document=number)
            return False
        self._fax_unlocked()[number] = pin
        return True

    async def send_fax(self, documents: Sequence[str]) -> FaxResult:
        await self._fax_granted(documents)
        self._alive()
        if not self.answered:
            await self.answer()
        self.leg.digit_buffer.clear()   # keys left over from the menus mean nothing now
        record = await self._fax().send(self.leg, list(documents), call_id=self.call_id,
                                        remote=self.caller, log=self.log)
        return fax_result(record)

    async def receive_fax(self) -> FaxResult:
        self._alive()
        if not self.answered:
            await self.answer()
        record = await self._fax().receive(self.leg, call_id=self.call_id, remote=self.caller,
                                           log=self.log)
        return fax_result(record)

    async def queue_fax(self, number: str, documents: Sequence[str]) -> str:
        from sipagent.fax.store import FAX_NUMBER

        fax = self._fax()
        if fax.dialer is None:
            raise FaxUnavailable("two-call fax-on-demand needs [fax] dial in the config")
        if not FAX_NUMBER.fullmatch(number):
            raise ValueError(f"not a fax number: {number!r}")
        await self._fax_granted(documents)
        unlocked = self._fax_unlocked()
        job = await asyncio.to_thread(fax.store.create_job, number, list(documents),
                                      pins={n: unlocked[n] for n in documents if n in unlocked},
                                      call_id=self.call_id)
        fax.dialer.wake()
        self.log.info("fax job queued", job=job.id, number=number, documents=list(documents))
        return job.id
