"""The test kit's fax: a library of documents and a fax machine on the
caller's side, in virtual time.  A mixin of :class:`ivrflows.kit.fakecall.FakeCall`
(kept apart: one concept per file), the twin of ``sipagent/fax/verbs.py``.

The fake is as strict as the engine: an unknown or locked document is
refused with :class:`FaxRefused` before anything is sent, a bad fax number
is a ValueError, and sending before the answer is a mistake.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from ivrflows.fax_types import FaxDocumentInfo, FaxRefused, FaxResult, FaxUnavailable

FAX_NUMBER = re.compile(r"\+?[0-9]{2,32}")


@dataclass(frozen=True)
class FakeFaxDocument:
    """A document of the fake library; ``pin`` set means protected."""
    title: str = ""
    pages: int = 1
    pin: str | None = None


@dataclass(frozen=True)
class FakeFaxMachine:
    """The caller's fax machine (one-call) or the one a fax call reaches.
    ``hangs_up_after`` pages cut the call mid-way (None: the fax completes);
    a transfer takes ``setup`` seconds plus ``page_seconds`` per page."""
    hangs_up_after: int | None = None
    setup: float = 12.0
    page_seconds: float = 10.0
    remote_ident: str = "CALLER FAX"


class FakeFaxVerbs:
    _fax_library: Mapping[str, FakeFaxDocument]
    _fax_machine: FakeFaxMachine
    _fax_two_call: bool
    _fax_unlocked: set[str]

    def _fax_grant(self, documents: Sequence[str]) -> int:
        unlocked = self._fax_unlocked
        pages = 0
        for number in documents:
            doc = self._fax_library.get(number)
            if doc is None or (doc.pin is not None and number not in unlocked):
                reason = "unknown" if doc is None else "pin"
                self._log("flow", "fax refused", f"{number}: {reason}")
                raise FaxRefused(number, reason)
            pages += doc.pages
        return pages

    async def fax_document(self, number: str) -> FaxDocumentInfo | None:
        doc = self._fax_library.get(number)
        self._log("flow", "fax document", f"{number}: {'found' if doc else 'unknown'}")
        return None if doc is None else FaxDocumentInfo(number, doc.title, doc.pages,
                                                        doc.pin is not None)

    async def fax_unlock(self, number: str, pin: str) -> bool:
        doc = self._fax_library.get(number)
        ok = doc is not None and doc.pin is not None and doc.pin == pin
        if ok:
            self._fax_unlocked.add(number)
        self._log("flow", "fax unlock", f"{number}: {'ok' if ok else 'wrong'}")
        return ok

    async def send_fax(self, documents: Sequence[str]) -> FaxResult:
        pages = self._fax_grant(documents)
        self._need_answer("send_fax")
        return await self._transfer("send fax", ",".join(documents), pages)

    async def receive_fax(self) -> FaxResult:
        self._need_answer("receive_fax")
        return await self._transfer("receive fax", "", 1)

    async def _transfer(self, verb: str, what: str, pages: int) -> FaxResult:
        machine = self._fax_machine
        done = pages if machine.hangs_up_after is None else min(pages, machine.hangs_up_after)
        self._log("flow", verb, what)
        await self._pause(machine.setup + machine.page_seconds * done)
        ok = done == pages
        fax_id = f"fax-{len(self._result.faxes) + 1}"
        result = FaxResult(ok, 0 if ok else 49, "OK" if ok else "The call dropped prematurely",
                           done, 14400, "R8/fine", True, machine.remote_ident,
                           machine.setup + machine.page_seconds * done, fax_id)
        self._result.faxes.append({"verb": verb, "documents": what, "result": result})
        self._log("flow", "fax result", f"{result.status_text}, {done} of {pages} pages")
        if not ok:
            self._log("caller", "hangup")
            self._end("caller hung up")
        return result

    async def queue_fax(self, number: str, documents: Sequence[str]) -> str:
        if not self._fax_two_call:
            raise FaxUnavailable("two-call fax-on-demand is off")
        if not FAX_NUMBER.fullmatch(number):
            raise ValueError(f"not a fax number: {number!r}")
        self._fax_grant(documents)
        job_id = f"fax-job-{len(self._result.fax_jobs) + 1}"
        self._result.fax_jobs.append({"id": job_id, "number": number,
                                      "documents": list(documents)})
        self._log("flow", "queue fax", f"{','.join(documents)} to {number} as {job_id}")
        return job_id
