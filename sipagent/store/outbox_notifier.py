"""Draining an outbox of owed notifications: e-mail and webhooks.

Theory of operation
-------------------
A store commits the notifications an item owes (a voicemail message, a
received fax) to its outbox in the same transaction as the item, so an item
is never filed without the notifications it owes, and a restart resumes
whatever was pending.  An :class:`OutboxNotifier` drains one outbox on the
engine's loop:

- e-mail: stdlib ``smtplib`` (STARTTLS and login when configured) in a
  worker thread (``asyncio.to_thread``), because a slow or dead mail server
  must never stall the loop that carries the calls;
- webhook: an aiohttp POST of a JSON body.

A failed attempt is retried after ``retry_base`` seconds, doubling up to
``retry_max``; after ``notify_attempts`` the row stays in the outbox as
``failed`` for an operator to see.  Every attempt is logged and counted
through ``on_result(channel, result)`` with result ``sent``, ``failed``
(this attempt) or ``gave_up``.  The item itself is never at risk: it was
filed before any notification was tried.

What is announced, and how it reads, is the subclass's: :meth:`load` finds
the item a row is about in :attr:`store`, :meth:`email_for` and
:meth:`webhook_body` say it.  ``settings`` are the mail server and retry
settings of the ``[voicemail]`` section (``smtp_*``, ``webhook_timeout``,
``public_url``, ``notify_attempts``, ``retry_base``, ``retry_max``): one mail
server serves voicemail and fax.
"""
from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any, Callable

import aiohttp
import structlog

from sipagent.store.outbox import Notification, Outbox
from sipagent.tasks import cancel_and_wait

# The longest the loop sleeps without looking at the outbox; a new item wakes
# it at once, this only bounds how late a retry can be after a clock jump.
IDLE = 30.0


class OutboxNotifier:
    kind = "outbox"     # what is announced, in log lines and the task's name

    def __init__(self, store: Any, settings, *, download_base: str | None = None,
                 on_result: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time):
        """``store`` is what the items are in; its ``outbox`` is drained."""
        self.store, self.settings = store, settings
        self.outbox: Outbox = store.outbox
        self._base = (settings.public_url or download_base or "").rstrip("/")
        self._on_result = on_result or (lambda channel, result: None)
        self._clock = clock
        # Named after the subclass's module, so each notifier's lines say whose they are.
        self._log = structlog.get_logger(type(self).__module__)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._pass = asyncio.Lock()          # one pass at a time: no mail sent twice
        self._http: aiohttp.ClientSession | None = None

    # -- what the subclass says --------------------------------------------------------
    def load(self, note: Notification) -> Any | None:
        """The item ``note`` is about, or None if it is gone.  Blocking: runs
        in a worker thread."""
        raise NotImplementedError

    def email_for(self, item: Any, to: list[str]) -> EmailMessage:
        """The mail announcing ``item``.  Blocking (it may read an attachment):
        runs in a worker thread."""
        raise NotImplementedError

    def webhook_body(self, item: Any) -> dict:
        raise NotImplementedError

    def log_fields(self, note: Notification) -> dict:
        """What a log line says the notification is about."""
        return {"scope": note.scope, "item": note.item_id}

    # -- running -----------------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        """Open the HTTP session and (unless ``background`` is false, for
        driving :meth:`run_due` by hand) start draining the outbox."""
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout))
        if background:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"{self.kind}-notify")

    async def stop(self, grace: float = 5.0) -> None:
        """Let an attempt under way finish (cancelled mid-send, a mail that
        went out would stay pending and go out again after a restart)."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except (TimeoutError, asyncio.CancelledError):
                await cancel_and_wait(self._task)
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def wake(self) -> None:
        """Something was filed: look at the outbox now, not at the next tick."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_due()
                next_at = await asyncio.to_thread(self.outbox.next_at)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception(f"{self.kind} notifier pass failed")
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
            due = await asyncio.to_thread(self.outbox.due, self._clock())
            for note in due:
                if self._stopping:
                    break
                sent += await self._attempt(note)
            return sent

    async def _attempt(self, note: Notification) -> int:
        if not await asyncio.to_thread(self.outbox.claim, note.id, self._clock()):
            return 0            # another node (same database) is sending it
        item = await asyncio.to_thread(self.load, note)
        if item is None:
            # Deleted before anyone was told: nothing left to announce.
            await asyncio.to_thread(self.outbox.done, note.id)
            return 0
        try:
            if note.channel == "email":
                await self.send_email(item, json.loads(note.target))
            elif note.channel == "webhook":
                await self.send_webhook(item, note.target)
            else:
                raise ValueError(f"unknown channel {note.channel!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(note, f"{type(exc).__name__}: {exc}")
            return 0
        await asyncio.to_thread(self.outbox.done, note.id)
        self._on_result(note.channel, "sent")
        self._log.info(f"{self.kind} notification sent", channel=note.channel,
                       attempts=note.attempts + 1, **self.log_fields(note))
        return 1

    async def _failed(self, note: Notification, error: str) -> None:
        attempts = note.attempts + 1
        self._on_result(note.channel, "failed")
        if attempts >= self.settings.notify_attempts:
            await asyncio.to_thread(self.outbox.gave_up, note.id, error)
            self._on_result(note.channel, "gave_up")
            self._log.error(f"{self.kind} notification given up", channel=note.channel,
                            attempts=attempts, error=error, **self.log_fields(note))
            return
        delay = self.retry_delay(note.attempts)
        await asyncio.to_thread(self.outbox.retry, note.id, self._clock() + delay, error)
        self._log.warning(f"{self.kind} notification failed; will retry", channel=note.channel,
                          attempts=attempts, retry_in=round(delay, 1), error=error,
                          **self.log_fields(note))

    def retry_delay(self, attempts_before: int) -> float:
        return min(self.settings.retry_max, self.settings.retry_base * 2 ** attempts_before)

    # -- e-mail ------------------------------------------------------------------------
    async def send_email(self, item: Any, to: list[str]) -> None:
        if not self.settings.smtp_host:
            raise RuntimeError("voicemail.smtp_host is not configured")
        mail = await asyncio.to_thread(self.email_for, item, to)
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
            self._log.warning(f"{self.kind} e-mail refused for some recipients",
                              refused=sorted(refused))

    # -- webhook -----------------------------------------------------------------------
    async def send_webhook(self, item: Any, url: str) -> None:
        if self._http is None:
            raise RuntimeError("notifier not started")
        async with self._http.post(url, json=self.webhook_body(item)) as response:
            if response.status // 100 != 2:
                raise RuntimeError(f"webhook answered {response.status}")
