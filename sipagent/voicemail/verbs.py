"""The mailbox verbs of :class:`ivrflows.Call` on a SIP call.

``SipCall`` mixes this in.  The verbs touch no media: they move files and
rows through :class:`sipagent.voicemail.store.VoicemailStore`, always in a
worker thread (SQLite commits, fsync, scrypt), and never raise
:class:`ivrflows.CallerHangup`, so a message is filed even after the caller
hung up.  Media verbs used by the flows (play, record, gather) stay SipCall's.

The call keeps the set of boxes its caller opened with a PIN; the message
verbs refuse any other box, so a flow file cannot read a box by mistake.

Needs from the class it is mixed into: ``_services`` (a
:class:`sipagent.calls.services.CallServices`: ``voicemail_store()`` and
``voicemail_notifier``), ``caller``, ``called``, ``headers``, ``log``.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from ivrflows.call import (GreetingKind, LoginResult, MailboxFull, MarkAs, MessageTooShort,
                           Recording, VoicemailBox, VoicemailFolder, VoicemailMessage)
from sipagent.sip.message import display_name


class VoicemailVerbs:
    _services: object

    def _vm_store(self):
        return self._services.voicemail_store()   # LookupError without voicemail

    def _vm_opened(self) -> set[str]:
        opened = self.__dict__.get("_vm_opened_boxes")
        if opened is None:
            opened = self.__dict__["_vm_opened_boxes"] = set()
        return opened

    async def _vm_run(self, fn, *args, **kw):
        # Blocking store work (SQLite, fsync, scrypt) stays off the loop.
        return await asyncio.to_thread(fn, *args, **kw)

    def _vm_need_login(self, box: str, verb: str) -> None:
        if box not in self._vm_opened():
            raise PermissionError(f"{verb}({box!r}) before a successful voicemail_login")

    async def leave_voicemail(self, recording: Recording, *, mailbox: str,
                              urgent: bool = False) -> str:
        store = self._vm_store()
        try:
            message_id = await self._vm_run(
                store.deposit, mailbox, recording.path, self.caller, self.called,
                caller_name=display_name(self.headers), urgent=urgent)
        except (MailboxFull, MessageTooShort) as exc:
            # Refused: the recording has nowhere to go.
            Path(recording.path).unlink(missing_ok=True)
            self.log.info("voicemail refused", mailbox=mailbox, reason=type(exc).__name__,
                          seconds=round(recording.duration, 1))
            raise
        notifier = self._services.voicemail_notifier
        if notifier is not None:
            notifier.wake()
        self.log.info("voicemail filed", mailbox=mailbox, message=message_id,
                      seconds=round(recording.duration, 1), urgent=urgent)
        return message_id

    async def voicemail(self, box: str, *, greeting: str | None = None) -> str | None:
        from ivrflows.voicemail import deposit

        return await deposit(self, box, greeting=greeting)

    async def voicemail_box(self, box: str) -> VoicemailBox:
        return await self._vm_run(self._vm_store().info, box)

    async def voicemail_login(self, box: str, pin: str) -> LoginResult:
        result = await self._vm_run(self._vm_store().login, box, pin)
        if result == "ok":
            self._vm_opened().add(box)
        # Never log the PIN, not even a wrong one: it is often a near miss.
        self.log.info("voicemail login", mailbox=box, result=result)
        return result

    async def voicemail_messages(self, box: str, folder: VoicemailFolder = "new"
                                 ) -> list[VoicemailMessage]:
        self._vm_need_login(box, "voicemail_messages")
        return await self._vm_run(self._vm_store().list, box, folder)

    async def voicemail_mark(self, box: str, message_id: str, folder: MarkAs) -> None:
        self._vm_need_login(box, "voicemail_mark")
        await self._vm_run(self._vm_store().mark, box, message_id, folder)
        self.log.info("voicemail message moved", mailbox=box, message=message_id, to=folder)

    async def voicemail_set_greeting(self, box: str, kind: GreetingKind,
                                     recording: Recording | None) -> None:
        self._vm_need_login(box, "voicemail_set_greeting")
        store = self._vm_store()
        if recording is None:
            await self._vm_run(store.delete_greeting, box, kind)
        else:
            await self._vm_run(store.set_greeting, box, kind, Path(recording.path))
        self.log.info("voicemail greeting", mailbox=box, kind=kind,
                      action="removed" if recording is None else "recorded")

    async def voicemail_set_pin(self, box: str, pin: str) -> None:
        self._vm_need_login(box, "voicemail_set_pin")
        await self._vm_run(self._vm_store().set_pin, box, pin)
        self.log.info("voicemail PIN changed", mailbox=box)
