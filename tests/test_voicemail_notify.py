"""Voicemail notifications against real servers on 127.0.0.1: an aiosmtpd
SMTP server (plain, with login, with STARTTLS) and an aiohttp webhook
receiver.  A dead server means retries with backoff, a failure metric and a
notification kept in the outbox, delivered once the server is back."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from aiosmtpd.smtp import AuthResult
from prometheus_client import CollectorRegistry

from notifykit import Clock, one_pass, sample, smtp_server, webhook_receiver

from sipagent.config.voicemail import VoicemailSection
from sipagent.voicemail.metrics import VoicemailMetrics
from sipagent.voicemail.notify import VoicemailNotifier
from sipagent.voicemail.store import Mailbox, VoicemailStore
from sipagent.store.database import StorePlace
from sipagent.store.outbox import CLAIM_LEASE

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL


def tone(path: Path, seconds: float, freq: float) -> Path:
    t = np.arange(int(8000 * seconds)) / 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((9000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes())
    return path


@pytest.fixture
def clock():
    return Clock()


def make(where, clock, *, webhook=None, **settings):
    """``where``: a test's tmp_path (SQLite), or a ``store_place``."""
    registry = CollectorRegistry()
    metrics = VoicemailMetrics(registry)
    box = Mailbox("200", owner="person:Desk", emails=("desk@example.com", "boss@example.com"),
                  webhook=webhook, min_length=0)
    place = where if isinstance(where, StorePlace) else where / "data"
    store = VoicemailStore(place, {"200": box}, events=metrics.store_event,
                           clock=clock)
    cfg = VoicemailSection.model_validate({"smtp_from": "vm@example.com", "retry_base": 30.0,
                                           "retry_max": 300.0, **settings})
    notifier = VoicemailNotifier(store, cfg, download_base="http://127.0.0.1:8080",
                                 on_result=metrics.notification, clock=clock)
    metrics.watch_usage(lambda: store)
    return store, notifier, registry


def deposit(store, tmp_path, seconds=3.0, freq=697.0) -> str:
    return store.deposit("200", tone(tmp_path / f"rec-{freq}.wav", seconds, freq), "+15550100",
                         "200", caller_name="Ann Caller")


def test_the_mail_arrives_with_the_recording_attached(tmp_path, clock, ports):
    port = ports()
    with smtp_server(port) as inbox:
        store, notifier, registry = make(tmp_path, clock, smtp_host="127.0.0.1",
                                         smtp_port=port)
        mid = deposit(store, tmp_path, 4.0)
        stored = Path(store.get("200", mid).path).read_bytes()
        assert asyncio.run(one_pass(notifier)) == 1
    [mail] = inbox.mails
    assert sorted(inbox.envelopes[0].rcpt_tos) == ["boss@example.com", "desk@example.com"]
    assert "New voicemail from Ann Caller <+15550100> in box 200" == mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    for line in ("Caller:   Ann Caller <+15550100>", "Duration: 0:04", "Box:      200"):
        assert line in body
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_content() == stored
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="email",
                  result="sent") == 1
    assert store.outbox.pending() == 0


def test_a_dead_server_means_retries_with_backoff_then_delivery(tmp_path, clock, ports,
                                                                 store_place):
    port = ports()      # reserved, and nothing listens on it yet
    store, notifier, registry = make(store_place, clock, smtp_host="127.0.0.1", smtp_port=port,
                                     smtp_timeout=2.0)
    mid = deposit(store, tmp_path)
    start = clock.now

    async def attempts(n_rounds):
        await notifier.start(background=False)
        try:
            sent = []
            for _ in range(n_rounds):
                sent.append(await notifier.run_due())
                next_at = store.outbox.next_at()
                clock.now = max(clock.now, next_at or clock.now)
            return sent
        finally:
            await notifier.stop()

    assert asyncio.run(attempts(3)) == [0, 0, 0]
    [(_, message_id, channel, tries, error)] = store.outbox.rows("pending")
    assert (message_id, channel, tries) == (mid, "email", 3) and "Connection" in error
    # 30 s, then 60, then 120: doubling from retry_base.
    assert store.outbox.next_at() == pytest.approx(start + 30 + 60 + 120)
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="email",
                  result="failed") == 3
    assert sample(registry, "sipacd_voicemail_notifications_pending") == 1
    assert [m.id for m in store.list("200")] == [mid]          # the message is safe

    # Nothing is due before the backoff ends, even with the server up.
    with smtp_server(port) as inbox:
        clock.now = store.outbox.next_at() - 1
        assert asyncio.run(attempts(1)) == [0] and inbox.mails == []
        clock.now += 1
        assert asyncio.run(attempts(1)) == [1]
    assert len(inbox.mails) == 1 and store.outbox.pending() == 0
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="email",
                  result="sent") == 1


def test_the_outbox_survives_a_restart_and_the_loop_delivers(tmp_path, clock, ports, store_place):
    port = ports()
    store, notifier, _ = make(store_place, clock, smtp_host="127.0.0.1", smtp_port=port,
                              smtp_timeout=2.0)
    deposit(store, tmp_path)
    asyncio.run(one_pass(notifier))
    store.close()
    assert len(VoicemailStore(store_place, {}).outbox.rows("pending")) == 1

    with smtp_server(port) as inbox:
        clock.now += 10_000
        store, notifier, registry = make(store_place, clock, smtp_host="127.0.0.1",
                                         smtp_port=port)

        async def run_loop():
            await notifier.start()      # the real loop, woken at start
            try:
                for _ in range(200):
                    if store.outbox.pending() == 0:
                        return
                    await asyncio.sleep(0.02)
            finally:
                await notifier.stop()

        asyncio.run(run_loop())
    assert len(inbox.mails) == 1 and store.outbox.pending() == 0


def test_giving_up_keeps_the_row_as_failed(tmp_path, clock, ports, store_place):
    store, notifier, registry = make(store_place, clock, smtp_host="127.0.0.1",
                                     smtp_port=ports(), notify_attempts=2, smtp_timeout=2.0)
    deposit(store, tmp_path)
    asyncio.run(one_pass(notifier))
    clock.now += 1000
    asyncio.run(one_pass(notifier))
    assert store.outbox.pending() == 0 and len(store.outbox.rows("failed")) == 1
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="email",
                  result="gave_up") == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # 127.0.0.1 only
def test_smtp_login_is_used_when_configured(tmp_path, clock, ports):
    port = ports()
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    with smtp_server(port, authenticator=authenticator, auth_required=True,
                     auth_require_tls=False) as inbox:
        store, notifier, _ = make(tmp_path, clock, smtp_host="127.0.0.1", smtp_port=port,
                                  smtp_user="sipacd", smtp_password="s3cret")
        deposit(store, tmp_path)
        assert asyncio.run(one_pass(notifier)) == 1
    assert logins == [(b"sipacd", b"s3cret")] and len(inbox.mails) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI needed for a cert")
def test_starttls_with_a_private_ca(tmp_path, clock, ports):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = ports()
    with smtp_server(port, tls_context=context, require_starttls=True) as inbox:
        store, notifier, _ = make(tmp_path, clock, smtp_host="127.0.0.1", smtp_port=port,
                                  smtp_starttls=True, smtp_ca_file=str(cert))
        deposit(store, tmp_path)
        assert asyncio.run(one_pass(notifier)) == 1
        # Without STARTTLS this server refuses the mail: the option is really used.
        store2, plain, registry = make(tmp_path / "b", clock, smtp_host="127.0.0.1",
                                       smtp_port=port)
        deposit(store2, tmp_path)
        assert asyncio.run(one_pass(plain)) == 0
    assert len(inbox.mails) == 1


def test_webhook_posts_metadata_and_a_download_url_and_retries(tmp_path, clock, ports, store_place):
    port = ports()

    async def scenario():
        async with webhook_receiver(port, answers=[500, 200]) as received:
            store, notifier, registry = make(store_place, clock,
                                             webhook=f"http://127.0.0.1:{port}/hook")
            mid = deposit(store, tmp_path, 5.0)
            await notifier.start(background=False)
            try:
                first = await notifier.run_due()      # e-mail fails (no smtp_host), hook 500
                clock.now += 30
                second = await notifier.run_due()
            finally:
                await notifier.stop()
        return received, mid, first, second, registry, store

    received, mid, first, second, registry, store = asyncio.run(scenario())
    assert (first, second) == (0, 1) and len(received) == 2
    body = received[-1]
    assert body["event"] == "voicemail.deposited" and body["box"] == "200"
    assert body["message"]["id"] == mid and body["message"]["caller"] == "+15550100"
    assert body["message"]["duration"] == pytest.approx(5.0)
    assert body["download_url"] == f"http://127.0.0.1:8080/api/voicemail/200/messages/{mid}/audio"
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="webhook",
                  result="failed") == 1
    assert sample(registry, "sipacd_voicemail_notifications_total", channel="webhook",
                  result="sent") == 1
    assert [n[2] for n in store.outbox.rows("pending")] == ["email"]


def test_the_smtp_send_does_not_block_the_loop(tmp_path, clock, ports):
    # A server that accepts the connection and then says nothing: the send
    # waits for its timeout in a worker thread while the loop keeps ticking.
    port = ports()

    async def scenario():
        async def silent(reader, writer):
            await asyncio.sleep(5)
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", port)
        store, notifier, _ = make(tmp_path, clock, smtp_host="127.0.0.1", smtp_port=port,
                                  smtp_timeout=1.0)
        deposit(store, tmp_path)
        await notifier.start(background=False)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.get_running_loop().create_task(ticker())
        sent = await notifier.run_due()
        t.cancel()
        await notifier.stop()
        server.close()
        return sent, ticks

    sent, ticks = asyncio.run(scenario())
    assert sent == 0 and ticks >= 10


def test_usage_gauges(tmp_path, clock, store_place):
    store, _, registry = make(store_place, clock)
    a = deposit(store, tmp_path)
    deposit(store, tmp_path, freq=770.0)
    store.mark_saved("200", a)
    assert sample(registry, "sipacd_voicemail_messages", folder="new") == 1
    assert sample(registry, "sipacd_voicemail_messages", folder="saved") == 1
    assert sample(registry, "sipacd_voicemail_audio_bytes") > 2 * 3 * 16000
    assert sample(registry, "sipacd_voicemail_mailbox_fill_ratio_max") == pytest.approx(0.02)
    assert sample(registry, "sipacd_voicemail_deposits_total", result="deposited") == 2


@pytest.mark.postgres
def test_two_nodes_on_one_database_send_a_notification_once(tmp_path, clock, ports, pg_place):
    port = ports()
    with smtp_server(port) as inbox:
        node_a = make(pg_place, clock, smtp_host="127.0.0.1", smtp_port=port)
        node_b = make(pg_place, clock, smtp_host="127.0.0.1", smtp_port=port)
        deposit(node_a[0], tmp_path)
        deposit(node_b[0], tmp_path, freq=770.0)

        async def both():
            return await asyncio.gather(one_pass(node_a[1]), one_pass(node_b[1]))

        sent = asyncio.run(both())
        assert sum(sent) == 2 and len(inbox.mails) == 2      # each message's mail once
        assert node_a[0].outbox.pending() == 0
        # A node that died holding a claim: its row comes due again after the lease.
        deposit(node_a[0], tmp_path, freq=852.0)
        [note] = node_a[0].outbox.due(clock.now)
        assert node_a[0].outbox.claim(note.id, clock.now)
        assert not node_b[0].outbox.claim(note.id, clock.now)
        assert asyncio.run(one_pass(node_b[1])) == 0
        clock.now += CLAIM_LEASE
        assert asyncio.run(one_pass(node_b[1])) == 1
    assert len(inbox.mails) == 3
    for store, _, _ in (node_a, node_b):
        store.close()
