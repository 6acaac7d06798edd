"""Telling owners about new voicemail: e-mail with the WAV, and webhooks.

Theory of operation
-------------------
A deposit commits its notifications to the store's outbox in the same
transaction as the message, so a message is never filed without the
notifications it owes, and a restart resumes whatever was pending.  This
notifier drains the outbox on the engine's loop:

- e-mail: stdlib ``smtplib`` (STARTTLS and login when configured) in a
  worker thread (``asyncio.to_thread``), because a slow or dead mail server
  must never stall the loop that carries the calls;
- webhook: an aiohttp POST of the message's metadata and a download URL.

A failed attempt is retried after ``retry_base`` seconds, doubling up to
``retry_max``; after ``notify_attempts`` the row stays in the outbox as
``failed`` for an operator to see.  Every attempt is logged and counted
through ``on_result(channel, result)`` with result ``sent``, ``failed``
(this attempt) or ``gave_up``.  The message itself is never at risk: it was
filed before any notification was tried.
"""
from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Callable

import aiohttp
import structlog

from ivrflows.call import VoicemailMessage
from sipagent.voicemail_outbox import Notification
from sipagent.voicemail_store import NoSuchMessage, VoicemailStore

log = structlog.get_logger("sipagent.voicemail_notify")

# The longest the loop sleeps without looking at the outbox; a deposit wakes
# it at once, this only bounds how late a retry can be after a clock jump.
IDLE = 30.0


class VoicemailNotifier:
    def __init__(self, store: VoicemailStore, settings, *, download_base: str | None = None,
                 on_result: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.settings = store, settings
        self._base = (settings.public_url or download_base or "").rstrip("/")
        self._on_result = on_result or (lambda channel, result: None)
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._pass = asyncio.Lock()          # one pass at a time: no mail sent twice
        self._http: aiohttp.ClientSession | None = None

    # -- running -----------------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        """Open the HTTP session and (unless ``background`` is false, for
        driving :meth:`run_due` by hand) start draining the outbox."""
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout))
        if background:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="vm-notify")

    async def stop(self, grace: float = 5.0) -> None:
        """Let an attempt under way finish (cancelled mid-send, a mail that
        went out would stay pending and go out again after a restart)."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def wake(self) -> None:
        """A deposit happened: look at the outbox now, not at the next tick."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_due()
                next_at = await asyncio.to_thread(self.store.outbox.next_at)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voicemail notifier pass failed")
                next_at = None
            if self._stopping:
                return
            delay = IDLE if next_at is None else min(IDLE, max(0.0, next_at - self._clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def run_due(self) -> int:
        """Try every notification that is due once; returns how many were sent."""
        async with self._pass:
            sent = 0
            due = await asyncio.to_thread(self.store.outbox.due, self._clock())
            for note in due:
                if self._stopping:
                    break
                sent += await self._attempt(note)
            return sent

    async def _attempt(self, note: Notification) -> int:
        try:
            message = await asyncio.to_thread(self.store.get, note.box, note.message_id)
        except NoSuchMessage:
            # Deleted before anyone was told: nothing left to announce.
            await asyncio.to_thread(self.store.outbox.done, note.id)
            return 0
        try:
            if note.channel == "email":
                await self.send_email(message, json.loads(note.target))
            elif note.channel == "webhook":
                await self.send_webhook(message, note.target)
            else:
                raise ValueError(f"unknown channel {note.channel!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(note, f"{type(exc).__name__}: {exc}")
            return 0
        await asyncio.to_thread(self.store.outbox.done, note.id)
        self._on_result(note.channel, "sent")
        log.info("voicemail notification sent", channel=note.channel, box=note.box,
                 message=note.message_id, attempts=note.attempts + 1)
        return 1

    async def _failed(self, note: Notification, error: str) -> None:
        attempts = note.attempts + 1
        self._on_result(note.channel, "failed")
        if attempts >= self.settings.notify_attempts:
            await asyncio.to_thread(self.store.outbox.gave_up, note.id, error)
            self._on_result(note.channel, "gave_up")
            log.error("voicemail notification given up", channel=note.channel, box=note.box,
                      message=note.message_id, attempts=attempts, error=error)
            return
        delay = self.retry_delay(note.attempts)
        await asyncio.to_thread(self.store.outbox.retry, note.id,
                                self._clock() + delay, error)
        log.warning("voicemail notification failed; will retry", channel=note.channel,
                    box=note.box, message=note.message_id, attempts=attempts,
                    retry_in=round(delay, 1), error=error)

    def retry_delay(self, attempts_before: int) -> float:
        return min(self.settings.retry_max, self.settings.retry_base * 2 ** attempts_before)

    # -- e-mail ------------------------------------------------------------------------
    async def send_email(self, message: VoicemailMessage, to: list[str]) -> None:
        if not self.settings.smtp_host:
            raise RuntimeError("voicemail.smtp_host is not configured")
        audio = await asyncio.to_thread(Path(message.path).read_bytes)
        mail = compose_email(message, audio, sender=self.settings.smtp_from, to=to)
        await asyncio.to_thread(self._smtp_send, mail)

    def _smtp_send(self, mail: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=s.smtp_ca_file))
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            refused = smtp.send_message(mail)
        if refused:
            # Some recipients took it: retrying would send them a second copy.
            log.warning("voicemail e-mail refused for some recipients", refused=sorted(refused))

    # -- webhook -----------------------------------------------------------------------
    async def send_webhook(self, message: VoicemailMessage, url: str) -> None:
        if self._http is None:
            raise RuntimeError("notifier not started")
        async with self._http.post(url, json=self.webhook_body(message)) as response:
            if response.status // 100 != 2:
                raise RuntimeError(f"webhook answered {response.status}")

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
