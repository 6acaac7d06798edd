"""Received-fax notifications against real servers on 127.0.0.1: an aiosmtpd
SMTP server and an aiohttp webhook receiver, with a real FaxStore whose
received fax was filed the way the engine files one (modem's temp TIFF,
file_received, record_fax queueing the notifications)."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from faxkit import make_document
from notifykit import Clock, one_pass, smtp_server, webhook_receiver

from sipagent.fax.notify import FaxNotifier
from sipagent.fax.store import FaxStore
from sipagent.config.voicemail import VoicemailSection
from sipagent.store.database import StorePlace

pytestmark = pytest.mark.skipif(shutil.which("gs") is None or shutil.which("tiff2pdf") is None,
                                reason="ghostscript and libtiff-tools are needed for fax pages")

RESULT = {"ok": True, "status": 0, "status_text": "OK", "pages": 2, "bit_rate": 14400,
          "ecm": True, "resolution": "R8/FINE", "remote_ident": "ACME SALES",
          "line_seconds": 75.0}

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL


@pytest.fixture
def clock():
    return Clock()


class Notified:
    def __init__(self):
        self.results: list[tuple[str, str]] = []

    def __call__(self, channel: str, result: str) -> None:
        self.results.append((channel, result))


def make(where, clock, **settings):
    """``where``: a test's tmp_path (SQLite), or a ``store_place``."""
    store = FaxStore(where if isinstance(where, StorePlace) else where / "data", clock=clock)
    cfg = VoicemailSection.model_validate({"smtp_from": "fax@example.com", "retry_base": 30.0,
                                           "retry_max": 300.0, **settings})
    notified = Notified()
    notifier = FaxNotifier(store, cfg, download_base="http://127.0.0.1:8080",
                           on_result=notified, clock=clock)
    return store, notifier, notified


def receive(store, tmp_path, clock, *, webhook=None, result=RESULT,
            emails=("faxes@example.com", "boss@example.com")) -> str:
    """A fax received and filed as the engine does it; its id."""
    fax_id = store.new_fax_id()
    tiff = pdf = None
    if result["pages"]:
        modem_tiff, _, _ = store.received_paths(fax_id)
        shutil.copyfile(make_document(tmp_path / f"pages-{fax_id}.tif", pages=result["pages"]),
                        modem_tiff)
        tiff, pdf = store.file_received(fax_id)
    store.record_fax(fax_id, "receive", dict(result), call_id="call-1@pbx", remote="+15550123",
                     started=clock.now - 80, tiff=tiff, pdf=pdf, emails=emails, webhook=webhook)
    return fax_id


def test_the_mail_carries_the_pdf_and_the_webhook_the_record(tmp_path, clock, ports, store_place):
    smtp, http = ports(), ports()

    async def scenario():
        async with webhook_receiver(http) as hooks:
            return await one_pass(notifier), hooks

    with smtp_server(smtp) as inbox:
        store, notifier, notified = make(store_place, clock, smtp_host="127.0.0.1", smtp_port=smtp)
        fax_id = receive(store, tmp_path, clock, webhook=f"http://127.0.0.1:{http}/hook")
        stored = store.fax(fax_id).pdf.read_bytes()
        sent, hooks = asyncio.run(scenario())
    assert sent == 2 and store.outbox.pending() == 0
    assert sorted(notified.results) == [("email", "sent"), ("webhook", "sent")]

    [mail] = inbox.mails
    assert sorted(inbox.envelopes[0].rcpt_tos) == ["boss@example.com", "faxes@example.com"]
    assert mail["Subject"] == "Fax from ACME SALES (+15550123): 2 pages"
    assert mail["From"] == "fax@example.com"
    body = mail.get_body(("plain",)).get_content()
    for line in ("Pages:     2", "Result:    received in full", "Number:    +15550123",
                 "Line time: 1:15 at 14400 bit/s"):
        assert line in body
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"fax-{fax_id}.pdf"
    assert attachment.get_content() == stored and stored.startswith(b"%PDF")

    [hook] = hooks
    assert hook["event"] == "fax.received"
    assert hook["pdf_url"] == f"http://127.0.0.1:8080/api/fax/log/{fax_id}/pdf"
    assert hook["tiff_url"] == f"http://127.0.0.1:8080/api/fax/log/{fax_id}/tiff"
    fax = hook["fax"]
    assert (fax["id"], fax["direction"], fax["ok"], fax["pages"]) == (fax_id, "receive", True, 2)
    assert (fax["remote"], fax["remote_ident"], fax["call_id"]) == \
        ("+15550123", "ACME SALES", "call-1@pbx")
    assert fax["bit_rate"] == 14400 and fax["seconds"] == pytest.approx(75.0)
    # Links, never paths on our disk.
    assert (fax["pdf"], fax["tiff"]) == (hook["pdf_url"], hook["tiff_url"])


def test_a_failed_fax_without_pages_is_reported_without_attachment(tmp_path, clock, ports):
    smtp, http = ports(), ports()
    failed = dict(RESULT, ok=False, status=48, status_text="Far end disconnected",
                  pages=0, bit_rate=0, line_seconds=20.0)

    async def scenario():
        async with webhook_receiver(http) as hooks:
            return await one_pass(notifier), hooks

    with smtp_server(smtp) as inbox:
        store, notifier, _ = make(tmp_path, clock, smtp_host="127.0.0.1", smtp_port=smtp)
        fax_id = receive(store, tmp_path, clock, result=failed,
                         webhook=f"http://127.0.0.1:{http}/hook")
        sent, hooks = asyncio.run(scenario())
    assert sent == 2
    [mail] = inbox.mails
    assert mail["Subject"] == "Fax from ACME SALES (+15550123): 0 pages (incomplete)"
    body = mail.get_body(("plain",)).get_content()
    assert "Result:    failed: Far end disconnected (code 48)" in body
    assert list(mail.iter_attachments()) == []
    [hook] = hooks
    assert hook["fax"]["id"] == fax_id and hook["fax"]["ok"] is False
    assert hook["pdf_url"] is None and hook["tiff_url"] is None


def test_a_dead_mail_server_means_a_retry_then_delivery(tmp_path, clock, ports, store_place):
    port = ports()      # reserved, and nothing listens on it yet
    store, notifier, notified = make(store_place, clock, smtp_host="127.0.0.1", smtp_port=port,
                                     smtp_timeout=2.0)
    fax_id = receive(store, tmp_path, clock)
    start = clock.now
    assert asyncio.run(one_pass(notifier)) == 0
    [(_, message_id, channel, tries, error)] = store.outbox.rows("pending")
    assert (message_id, channel, tries) == (fax_id, "email", 1) and "Connection" in error
    assert store.outbox.next_at() == pytest.approx(start + 30)

    with smtp_server(port) as inbox:
        clock.now = start + 29          # not due yet
        assert asyncio.run(one_pass(notifier)) == 0 and inbox.mails == []
        clock.now = start + 30
        assert asyncio.run(one_pass(notifier)) == 1
    [mail] = inbox.mails
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content() == store.fax(fax_id).pdf.read_bytes()
    assert notified.results == [("email", "failed"), ("email", "sent")]
    assert store.outbox.pending() == 0


def test_giving_up_after_notify_attempts_keeps_the_row(tmp_path, clock, ports, store_place):
    store, notifier, notified = make(store_place, clock, smtp_host="127.0.0.1",
                                     smtp_port=ports(), notify_attempts=2, smtp_timeout=2.0)
    fax_id = receive(store, tmp_path, clock)
    asyncio.run(one_pass(notifier))
    clock.now += 1000
    asyncio.run(one_pass(notifier))
    clock.now += 1000
    assert asyncio.run(one_pass(notifier)) == 0         # nothing is tried a third time
    assert store.outbox.pending() == 0
    [(_, message_id, channel, tries, error)] = store.outbox.rows("failed")
    assert (message_id, channel, tries) == (fax_id, "email", 2) and error
    assert notified.results == [("email", "failed"), ("email", "failed"), ("email", "gave_up")]
    assert store.fax(fax_id).pdf.exists()               # the fax itself is safe


def test_the_running_notifier_is_woken_by_a_new_fax(tmp_path, clock, ports):
    port = ports()

    async def scenario():
        await notifier.start()          # the real loop; idle: nothing is queued
        try:
            await asyncio.sleep(0.1)
            await asyncio.to_thread(receive, store, tmp_path, clock)
            notifier.wake()
            for _ in range(250):
                if store.outbox.pending() == 0:
                    return True
                await asyncio.sleep(0.02)
            return False
        finally:
            await notifier.stop()

    with smtp_server(port) as inbox:
        store, notifier, _ = make(tmp_path, clock, smtp_host="127.0.0.1", smtp_port=port)
        assert asyncio.run(scenario())
    assert len(inbox.mails) == 1
