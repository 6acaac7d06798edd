"""Test helpers shared by the notification tests (voicemail, fax): a real
SMTP server (aiosmtpd) and webhook receiver (aiohttp) on 127.0.0.1, a
settable clock, and one pass of a notifier."""
from __future__ import annotations

import contextlib
import email
import email.policy
from typing import AsyncIterator, Iterator

from aiohttp import web
from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler that keeps every mail, parsed, and its envelope."""

    def __init__(self):
        self.mails: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@contextlib.contextmanager
def smtp_server(port: int, **options) -> Iterator[Inbox]:
    """A plain SMTP server on 127.0.0.1:`port` for the with-block."""
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    server.start()
    try:
        yield inbox
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def webhook_receiver(port: int, answers: list[int] | None = None
                           ) -> AsyncIterator[list[dict]]:
    """POST /hook on 127.0.0.1:`port`; yields the JSON bodies received.  Each
    request is answered with the next status of `answers` (200 once they
    run out)."""
    received: list[dict] = []
    answers = list(answers or [])

    async def hook(request):
        received.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield received
    finally:
        await runner.cleanup()


class Clock:
    """Notifier time, moved by hand: backoff is tested without waiting."""

    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


async def one_pass(notifier) -> int:
    """Start without the background loop, try what is due once, stop."""
    await notifier.start(background=False)
    try:
        return await notifier.run_due()
    finally:
        await notifier.stop()
