"""Telling owners about new voicemail: e-mail with the WAV, and webhooks.

A deposit queues the notifications in the voicemail outbox in the same
transaction as the message; :class:`sipagent.store.outbox_notifier.OutboxNotifier`
drains it (retries, backoff, giving up).  This file only says what a
voicemail notification is: the mail with the recording attached, and the
webhook body with a download URL.
"""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from ivrflows.call import VoicemailMessage
from sipagent.store.outbox_notifier import OutboxNotifier
from sipagent.store.outbox import Notification
from sipagent.voicemail.store import NoSuchMessage, VoicemailStore


class VoicemailNotifier(OutboxNotifier):
    """``VoicemailNotifier(store, settings, ...)``: the :class:`OutboxNotifier`
    of a :class:`VoicemailStore`."""
    kind = "voicemail"
    store: VoicemailStore

    def load(self, note: Notification) -> VoicemailMessage | None:
        try:
            return self.store.get(note.scope, note.item_id)
        except NoSuchMessage:
            return None

    def log_fields(self, note: Notification) -> dict:
        return {"box": note.scope, "message": note.item_id}

    def email_for(self, message: VoicemailMessage, to: list[str]) -> EmailMessage:
        return compose_email(message, Path(message.path).read_bytes(),
                             sender=self.settings.smtp_from, to=to)

    def webhook_body(self, message: VoicemailMessage) -> dict:
        return {"event": "voicemail.deposited", "box": message.box,
                "message": message_json(message),
                "download_url": f"{self._base}/api/voicemail/{message.box}/messages/"
                                f"{message.id}/audio"}


def message_json(message: VoicemailMessage) -> dict:
    return {"id": message.id, "box": message.box, "folder": message.folder,
            "caller": message.caller, "caller_name": message.caller_name,
            "called": message.called, "received": message.received.isoformat(),
            "duration": message.duration, "urgent": message.urgent}


def compose_email(message: VoicemailMessage, audio: bytes, *, sender: str,
                  to: list[str]) -> EmailMessage:
    who = f"{message.caller_name} <{message.caller}>" if message.caller_name else \
        (message.caller or "an unknown caller")
    minutes, seconds = divmod(round(message.duration), 60)
    mail = EmailMessage()
    mail["Subject"] = (f"{'URGENT ' if message.urgent else ''}New voicemail from {who} "
                       f"in box {message.box}")
    mail["From"], mail["To"] = sender, ", ".join(to)
    mail["Date"] = formatdate(message.received.timestamp(), localtime=True)
    mail["Message-ID"] = make_msgid("voicemail")
    mail.set_content("\n".join([
        f"A new voicemail message is waiting in box {message.box}.",
        "",
        f"Caller:   {who}",
        f"Called:   {message.called}",
        f"Time:     {message.received.astimezone():%Y-%m-%d %H:%M:%S %Z}",
        f"Duration: {minutes}:{seconds:02d}",
        f"Box:      {message.box}",
        f"Urgent:   {'yes' if message.urgent else 'no'}",
        "",
        "The recording is attached.",
    ]) + "\n")
    mail.add_attachment(audio, maintype="audio", subtype="wav",
                        filename=f"voicemail-{message.box}-"
                                 f"{message.received:%Y%m%d-%H%M%S}.wav")
    return mail
