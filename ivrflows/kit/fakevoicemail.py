"""The test kit's voicemail: mailboxes of the fake world, their PINs and
messages.  A mixin of :class:`ivrflows.kit.fakecall.FakeCall` (kept apart: one
concept per file), the twin of ``sipagent/voicemail/verbs.py``.

As strict as the engine: with known boxes an unknown one is a mistake, and
the message verbs refuse a box the caller did not open with its PIN.
"""
from __future__ import annotations

import re

from ivrflows.call import (GreetingKind, LoginResult, MailboxFull, MarkAs, MessageTooShort,
                           Recording, VoicemailBox, VoicemailFolder, VoicemailMessage)
from ivrflows.kit.mailbox import FakeMailbox
from ivrflows.kit.errors import FlowMistake


class FakeVoicemailVerbs:
    _strict_boxes: bool
    _opened: set[str]

    async def leave_voicemail(self, recording: Recording, *, mailbox: str,
                              urgent: bool = False) -> str:
        box = self._mailbox(mailbox)
        if len(box.messages) >= box.max_messages:
            self._log("flow", "voicemail", f"{mailbox}: full, not filed")
            raise MailboxFull(mailbox)
        if recording.duration < box.min_length:
            self._log("flow", "voicemail", f"{mailbox}: {recording.duration:g}s too short, "
                      "discarded")
            raise MessageTooShort(mailbox)
        message_id = f"vm-{len(self._result.voicemails) + 1}"
        self._result.voicemails.append({"mailbox": mailbox, "id": message_id,
                                       "recording": recording, "urgent": urgent})
        box.messages.append(VoicemailMessage(
            message_id, mailbox, "new", self.caller, self.headers.get("X-Caller-Name", ""),
            self.called, self.now(), recording.duration, urgent, recording.path))
        self._log("flow", "voicemail", f"{mailbox}: {recording.duration:g}s as {message_id}"
                  + (" (urgent)" if urgent else ""))
        return message_id

    def _mailbox(self, number: str) -> FakeMailbox:
        boxes = self._result.mailboxes
        if number not in boxes:
            if self._strict_boxes:
                raise FlowMistake(f"no mailbox {number!r} (known: "
                                  f"{', '.join(sorted(boxes)) or 'none'})")
            boxes[number] = FakeMailbox()
        return boxes[number]

    def _opened_box(self, number: str, verb: str) -> FakeMailbox:
        if number not in self._opened:
            # The engine refuses too: only a PIN opens a box to these verbs.
            raise FlowMistake(f"{verb}({number!r}) before a successful voicemail_login")
        return self._mailbox(number)

    async def voicemail(self, box: str, *, greeting: str | None = None) -> str | None:
        from ivrflows.voicemail import deposit

        return await deposit(self, box, greeting=greeting)

    async def voicemail_box(self, box: str) -> VoicemailBox:
        b = self._mailbox(box)
        return VoicemailBox(box, len(b.folder("new")), len(b.folder("saved")), b.max_messages,
                            b.max_length, b.min_length, b.silence, dict(b.greetings))

    async def voicemail_login(self, box: str, pin: str) -> LoginResult:
        boxes = self._result.mailboxes
        b = boxes.get(box) if self._strict_boxes else self._mailbox(box)
        if b is not None and b.locked:
            result: LoginResult = "locked"
        elif b is not None and pin == b.pin:
            b.failures, result = 0, "ok"
            self._opened.add(box)
        else:
            result = "wrong"
            if b is not None:
                b.failures += 1
                b.locked = b.failures >= b.pin_attempts
        self._log("flow", "login", f"{box}: {result}")
        return result

    async def voicemail_messages(self, box: str, folder: VoicemailFolder = "new"
                                 ) -> list[VoicemailMessage]:
        b = self._opened_box(box, "voicemail_messages")
        return sorted(b.folder(folder), key=lambda m: (not m.urgent, m.received))

    async def voicemail_mark(self, box: str, message_id: str, folder: MarkAs) -> None:
        b = self._opened_box(box, "voicemail_mark")
        if folder not in ("new", "saved", "deleted"):
            raise ValueError(f"no voicemail folder {folder!r}")
        for i, m in enumerate(b.messages):
            if m.id == message_id:
                if folder == "deleted":
                    del b.messages[i]
                else:
                    b.messages[i] = VoicemailMessage(m.id, m.box, folder, m.caller,  # type: ignore[arg-type]
                                                     m.caller_name, m.called, m.received,
                                                     m.duration, m.urgent, m.path)
                self._log("flow", "mark", f"{box}/{message_id}: {folder}")
                return
        raise LookupError(f"no message {message_id!r} in mailbox {box!r}")

    async def voicemail_set_greeting(self, box: str, kind: GreetingKind,
                                     recording: Recording | None) -> None:
        b = self._opened_box(box, "voicemail_set_greeting")
        if recording is None:
            b.greetings.pop(kind, None)
        else:
            b.greetings[kind] = recording.path
        self._log("flow", "greeting", f"{box} {kind}: "
                  + ("removed" if recording is None else f"{recording.duration:g}s"))

    async def voicemail_set_pin(self, box: str, pin: str) -> None:
        b = self._opened_box(box, "voicemail_set_pin")
        if not re.fullmatch(r"[0-9]{4,12}", pin):
            raise ValueError("a PIN is 4 to 12 digits")
        b.pin = pin
        self._log("flow", "pin", f"{box}: changed")
