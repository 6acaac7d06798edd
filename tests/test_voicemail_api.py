"""The voicemail HTTP API (roles, filters, audio, greetings, PIN, settings)
and SipCall's mailbox verbs (sipagent.voicemail.verbs) on the real store,
driven by the shipped flows over the kit's fake media."""
from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivrflows import voicemail, voicemail_retrieval
from ivrflows.kit.fakecall import FakeCall
from ivrflows.testing import DEFAULT_START, VirtualLoop, hangup, speak
from sipagent.api.voicemail import add_voicemail_routes
from sipagent.sip.message import display_name
from sipagent.voicemail.verbs import VoicemailVerbs
from sipagent.store.pin import hash_pin
from sipagent.voicemail.store import Mailbox, VoicemailStore

TOKENS = {"admin-token": ("admin", None), "sup-token": ("supervisor", None),
          "alice-token": ("agent", "alice"), "bob-token": ("agent", "bob"),
          "cb-token": ("callback", None)}


def authenticate(request: web.Request, roles: set[str]):
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise web.HTTPUnauthorized()
    role, agent = TOKENS[token]
    if role not in roles:
        raise web.HTTPForbidden()
    return SimpleNamespace(role=role, agent=agent)


def wav_bytes(seconds: float, rate: int = 8000, freq: float = 500.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((7000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def pin_hash():
    return hash_pin("1234")


@pytest.fixture
def store(tmp_path, pin_hash):
    s = VoicemailStore(tmp_path / "data", {
        "200": Mailbox("200", owner="agent:alice", pin_hash=pin_hash, min_length=1.0),
        "300": Mailbox("300", owner="queue:support", pin_hash=pin_hash, min_length=1.0)},
        pin_attempts=3, lockout=600)
    yield s
    s.close()


def deposit(store, tmp_path, box="200", seconds=3.0, caller="+15550100", **kw) -> str:
    path = tmp_path / f"in-{box}-{caller}-{seconds}.wav"
    path.write_bytes(wav_bytes(seconds))
    return store.deposit(box, path, caller, box, **kw)


def api(store, ports, scenario):
    async def go():
        app = web.Application()
        add_voicemail_routes(app, store, authenticate)
        async with TestClient(TestServer(app, host="127.0.0.1", port=ports())) as client:
            return await scenario(client)
    return asyncio.run(go())


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_roles_see_their_boxes(store, ports):
    async def scenario(c):
        admin = await (await c.get("/api/voicemail", headers=auth("admin-token"))).json()
        alice = await (await c.get("/api/voicemail", headers=auth("alice-token"))).json()
        bob = await (await c.get("/api/voicemail", headers=auth("bob-token"))).json()
        other = await c.get("/api/voicemail/300/messages", headers=auth("alice-token"))
        cb = await c.get("/api/voicemail", headers=auth("cb-token"))
        anon = await c.get("/api/voicemail")
        return admin, alice, bob, other.status, cb.status, anon.status

    admin, alice, bob, other, cb, anon = api(store, ports, scenario)
    assert [b["box"] for b in admin["mailboxes"]] == ["200", "300"]
    assert [b["box"] for b in alice["mailboxes"]] == ["200"] and bob["mailboxes"] == []
    assert (other, cb, anon) == (404, 403, 401)


def test_list_filter_download_save_delete(store, ports, tmp_path):
    a = deposit(store, tmp_path, caller="+1111", received=1_700_000_000)
    b = deposit(store, tmp_path, caller="+2222", seconds=2.0, urgent=True)
    stored = Path(store.get("200", a).path).read_bytes()

    async def scenario(c):
        h = auth("alice-token")
        everything = await (await c.get("/api/voicemail/200/messages", headers=h)).json()
        by_caller = await (await c.get("/api/voicemail/200/messages?caller=%2B1111",
                                       headers=h)).json()
        urgent = await (await c.get("/api/voicemail/200/messages?urgent=true", headers=h)).json()
        old = await (await c.get("/api/voicemail/200/messages?until=2024-01-01T00:00:00%2B00:00",
                                 headers=h)).json()
        audio = await c.get(f"/api/voicemail/200/messages/{a}/audio", headers=h)
        body = await audio.read()
        saved = await c.patch(f"/api/voicemail/200/messages/{a}", json={"folder": "saved"},
                              headers=h)
        bad_folder = await c.patch(f"/api/voicemail/200/messages/{a}", json={"folder": "x"},
                                   headers=h)
        deleted = await c.delete(f"/api/voicemail/200/messages/{b}", headers=h)
        again = await c.delete(f"/api/voicemail/200/messages/{b}", headers=h)
        traversal = await c.get("/api/voicemail/200/messages/..%2F..%2Fvoicemail.sqlite3/audio",
                                headers=h)
        return (everything, by_caller, urgent, old, audio.status, audio.content_type, body,
                (await saved.json())["folder"], bad_folder.status, deleted.status, again.status,
                traversal.status)

    (everything, by_caller, urgent, old, status, ctype, body, folder, bad_folder, deleted, again,
     traversal) = api(store, ports, scenario)
    assert [m["id"] for m in everything["messages"]] == [b, a]        # urgent first
    assert [m["id"] for m in by_caller["messages"]] == [a]
    assert [m["id"] for m in urgent["messages"]] == [b]
    assert [m["id"] for m in old["messages"]] == [a]
    assert (status, ctype, body) == (200, "audio/wav", stored)
    assert folder == "saved" and store.counts("200") == (0, 1)
    assert (bad_folder, deleted, again, traversal) == (400, 204, 404, 404)


def test_greeting_upload_and_pin_and_settings(store, ports):
    async def scenario(c):
        h = auth("alice-token")
        up = await c.put("/api/voicemail/200/greetings/busy", data=wav_bytes(2, 16000), headers=h)
        got = await c.get("/api/voicemail/200/greetings/busy", headers=h)
        body = await got.read()
        junk = await c.put("/api/voicemail/200/greetings/busy", data=b"junk", headers=h)
        bad_kind = await c.put("/api/voicemail/200/greetings/evil", data=wav_bytes(1), headers=h)
        gone = await c.delete("/api/voicemail/200/greetings/busy", headers=h)
        pin = await c.put("/api/voicemail/200/pin", json={"pin": "8642"}, headers=h)
        short_pin = await c.put("/api/voicemail/200/pin", json={"pin": "1"}, headers=h)
        by_agent = await c.patch("/api/voicemail/200", json={"max_messages": 5}, headers=h)
        by_admin = await c.patch("/api/voicemail/200", json={"max_messages": 5,
                                                             "emails": ["a@example.com"]},
                                 headers=auth("admin-token"))
        bad = await c.patch("/api/voicemail/200", json={"pin_hash": "x"},
                            headers=auth("admin-token"))
        return (up.status, got.status, body, junk.status, bad_kind.status, gone.status,
                pin.status, short_pin.status, by_agent.status, await by_admin.json(), bad.status)

    (up, got, body, junk, bad_kind, gone, pin, short_pin, by_agent, by_admin,
     bad) = api(store, ports, scenario)
    assert (up, got, junk, bad_kind, gone) == (201, 200, 400, 404, 204)
    with wave.open(io.BytesIO(body)) as w:
        assert (w.getframerate(), w.getnframes()) == (8000, 16000)
    assert (pin, short_pin) == (200, 400) and store.login("200", "8642") == "ok"
    assert by_agent == 403 and bad == 400
    assert by_admin["max_messages"] == 5 and by_admin["emails"] == ["a@example.com"]


# -- SipCall's verbs on the real store ---------------------------------------------------

class StoreBackedCall(VoicemailVerbs, FakeCall):
    """The kit's fake media with the engine's mailbox verbs."""

    def __init__(self, store, script, **kw):
        super().__init__(script, **kw)
        self._services = SimpleNamespace(voicemail_store=lambda: store, voicemail_notifier=None)
        self.log = structlog.get_logger("test")

    async def _vm_run(self, fn, *args, **kw):
        return fn(*args, **kw)   # the kit's virtual clock cannot wait for threads


def run_on_store(flow, script, store, tmp_path, **kw):
    loop = VirtualLoop(limit=3600)
    try:
        call = StoreBackedCall(store, script, caller="+15550100", called="200",
                               headers={"From": '"Ann Caller" <sip:+15550100@pbx>;tag=1'},
                               vars=kw.pop("vars", {}), language="en", now=DEFAULT_START,
                               open=None, schedules={}, route_schedule=None, queues={},
                               known_queues=None, transfers={}, flows=None, prompt_seconds=2.0,
                               record_dir=tmp_path / "rec")
        return loop.run_until_complete(call.run(flow, True))
    finally:
        loop.close()


def test_deposit_flow_files_into_the_store(store, tmp_path):
    run = run_on_store(voicemail.flow, [speak(6, then="#"), "4"], store, tmp_path)
    [m] = store.list("200")
    assert m.urgent and m.caller_name == "Ann Caller" and m.duration == pytest.approx(6.0)
    assert run.vars["voicemail"] == m.id
    assert not Path(run.recordings[0].path).exists()        # moved in, not copied
    too_short = run_on_store(voicemail.flow, [speak(0.5, then="#")], store, tmp_path)
    assert len(store.list("200")) == 1 and too_short.prompts[-1] == "vm-too-short"


def test_retrieval_flow_changes_the_index(store, tmp_path):
    first = deposit(store, tmp_path, caller="+1111")
    second = deposit(store, tmp_path, caller="+2222", seconds=4.0)
    run = run_on_store(voicemail_retrieval.flow, ["200", "1234", "1", "9", "7", "9"], store,
                       tmp_path)
    assert run.said[0] == "You have two new and zero saved messages."
    assert [(m.id, m.folder) for m in store.list("200")] == [(first, "saved")]
    assert not Path(store.message_path("200", second)).exists()


def test_greeting_recorded_by_phone_is_played_to_callers(store, tmp_path):
    run_on_store(voicemail_retrieval.flow, ["200", "1234", "3", "4", speak(3, then="#"), "3",
                                            "*", "9"], store, tmp_path)
    path = store.greeting_path("200", "temporary")
    assert path is not None
    run = run_on_store(voicemail.flow, [speak(3, then="#"), "3"], store, tmp_path)
    assert run.prompts[0] == str(path)


def test_lockout_on_the_phone_is_the_stores(store, tmp_path):
    run = run_on_store(voicemail_retrieval.flow, ["200", "1", "200", "2", "200", "3"], store,
                       tmp_path)
    assert run.prompts.count("vm-login-incorrect") == 3 and store.lock_state("200")[1] > 0
    again = run_on_store(voicemail_retrieval.flow, ["200", "1234"], store, tmp_path)
    assert "vm-locked" in again.prompts and "vm-main-menu" not in again.prompts


def test_message_verbs_need_a_login_on_the_engine_too(store, tmp_path):
    async def sneaky(call):
        await call.answer()
        await call.voicemail_messages("200")

    with pytest.raises(PermissionError):
        run_on_store(sneaky, [], store, tmp_path)


def test_a_caller_hanging_up_while_recording_keeps_the_message(store, tmp_path):
    run = run_on_store(voicemail.flow, [hangup(after=8)], store, tmp_path)
    assert run.ended == "caller hung up" and len(store.list("200")) == 1


@pytest.mark.parametrize("header, name", [
    ('"Ann Caller" <sip:1@x>;tag=1', "Ann Caller"), ("Bob <sip:2@x>", "Bob"),
    ("<sip:3@x>", ""), ("sip:4@x", ""), ('"Q \\"Z\\"" <sip:5@x>', 'Q "Z"'),
    ('"<script>alert(1)</script>" <sip:6@x>', "<script>alert(1)</script>"),
])
def test_caller_name_from_the_from_header(header, name):
    assert display_name({"From": header}) == name
