"""Voicemail over real SIP on 127.0.0.1: a caller's tone deposited as a
message (WAV header, duration, frequency) and mailed to an aiosmtpd server
with the same bytes attached; too short and full boxes; the owner's line
with PIN, save/delete and a greeting recorded by phone; PIN lockout; and an
engine killed while recording: after the restart nothing half done is
listed and the box takes the next message.

The voicemail prompts are short tones written into the prompt folder, so
the moment the recording starts is known without waiting for speech."""
from __future__ import annotations

import json
import time
import urllib.request
import wave
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from engine_proc import Engine, base_config
from ivrflows import voicemail, voicemail_retrieval
from simphones import tones
from sipagent.media.prompts import CATALOGUE
from sipagent.voicemail.verbs import VoicemailVerbs
from sipagent.store.pin import hash_pin
from sipagent.voicemail.store import Mailbox, VoicemailStore
from sipua import UA

try:
    from sipagent.calls.sip_call import SipCall
    WIRED = issubclass(SipCall, VoicemailVerbs)
except ImportError:     # no pjsua2: the sip marker skips these anyway
    WIRED = False

pytestmark = [pytest.mark.sip,
              pytest.mark.skipif(not WIRED, reason="voicemail verbs not wired into SipCall yet")]

ADMIN = "admin-token-0123456789"


@pytest.fixture(scope="module")
def vm_prompts(tmp_path_factory):
    """Every prompt these flows play, as a 0.3 s tone: no speech to wait for."""
    d = tmp_path_factory.mktemp("vm-prompts")
    (d / "en").mkdir()
    names = {*CATALOGUE["en"], *voicemail.PROMPTS["en"], *voicemail_retrieval.PROMPTS["en"]}
    for name in names:
        tones.write_tone(d / "en" / f"{name}.wav", 300.0, 0.3)
    return d


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        import email
        import email.policy
        self.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def vm_engine(ports, workdir, prompts, *, smtp_port=None, **box) -> Engine:
    cfg = base_config(
        ports, workdir, prompts,
        http={"tokens": {"ops": {"role": "admin", "token": ADMIN}}},
        routes=[{"number": "200", "flow": "voicemail",
                 "vars": {"mailbox": "200", "voicemail_greeting": "vm-unavailable"}},
                {"number": "300", "flow": "voicemail_retrieval"}],
        voicemail={"smtp_host": "127.0.0.1", "smtp_port": smtp_port or ports(),
                   "retry_base": 0.5, "pin_attempts": 3, "lockout": 600},
        mailboxes={"200": {"owner": "person:Front desk", "pin": "1234",
                           "email": ["desk@example.com"], **box}})
    return Engine(workdir, cfg)


def api(engine: Engine, path: str):
    req = urllib.request.Request(f"http://127.0.0.1:{engine.http_port}{path}",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def messages(engine: Engine) -> list[dict]:
    return api(engine, "/api/voicemail/200/messages")["messages"]


def wait_for(check, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def leave_message(caller: UA, engine: Engine, call: str, talk: float, then: str = "3"):
    caller.request("call", call=call, to=engine.number("200"), tone=440)
    caller.wait_state(call, "CONFIRMED")
    time.sleep(1.2 + talk)       # greeting, instructions and beep take ~1 s
    caller.request("dtmf", call=call, digits="#")
    if then:
        time.sleep(1.0)
        caller.request("dtmf", call=call, digits=then)
    caller.wait_state(call, "DISCONNECTED", timeout=20)


def test_deposit_has_the_callers_tone_and_is_mailed(ports, workdir, vm_prompts):
    smtp_port = ports()
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    server.start()
    try:
        with UA(ports(), log_dir=workdir, name="caller") as caller, \
                vm_engine(ports, workdir, vm_prompts, smtp_port=smtp_port) as engine:
            leave_message(caller, engine, "c1", talk=4.0)
            [m] = wait_for(lambda: messages(engine), what="the message")
            wait_for(lambda: inbox.mails, what="the e-mail")
            assert engine.wait_metric("sipacd_voicemail_deposits_total", 1,
                                      result="deposited") == 1
            assert engine.wait_metric("sipacd_voicemail_notifications_total", 1,
                                      channel="email", result="sent") == 1
    finally:
        server.stop()
    path = workdir / "data" / "voicemail" / "200" / f"{m['id']}.wav"
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        frames = w.getnframes()
    assert path.stat().st_size == 44 + 2 * frames            # the header tells the truth
    assert m["duration"] == pytest.approx(frames / 8000, abs=0.01)
    assert 3.0 < m["duration"] < 5.0, m
    assert abs(tones.dominant_frequency(path) - 440) < 15
    [attachment] = list(inbox.mails[0].iter_attachments())
    assert attachment.get_content() == path.read_bytes()
    assert not list((workdir / "data" / "recordings").glob("*.wav"))   # moved, not copied


def test_too_short_is_discarded_and_a_full_box_says_so(ports, workdir, vm_prompts):
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            vm_engine(ports, workdir, vm_prompts, min_len=2.5, max_messages=1) as engine:
        leave_message(caller, engine, "c1", talk=0.5, then="")
        assert engine.wait_metric("sipacd_voicemail_deposits_total", 1, result="too_short") == 1
        assert messages(engine) == []
        assert not list((workdir / "data" / "recordings").glob("*.wav"))
        leave_message(caller, engine, "c2", talk=3.5)
        wait_for(lambda: messages(engine), what="the message")
        # Full now: the third caller is told so and nothing is recorded.
        caller.request("call", call="c3", to=engine.number("200"), tone=440)
        caller.wait_state("c3", "CONFIRMED")
        caller.wait_state("c3", "DISCONNECTED", timeout=10)
        assert len(messages(engine)) == 1
        assert not list((workdir / "data" / "recordings").glob("*.wav"))


def seed(workdir: Path, n: int) -> list[str]:
    """Messages filed before the engine starts (the engine opens the same store)."""
    store = VoicemailStore(workdir / "data", {"200": Mailbox("200", pin_hash=hash_pin("1234"),
                                                             min_length=0)})
    ids = []
    for i in range(n):
        rec = workdir / f"seed-{i}.wav"
        tones.write_tone(rec, 600.0 + 100 * i, 2.0)
        ids.append(store.deposit("200", rec, f"+1555000{i}", "200", received=1e9 + i))
    store.close()
    return ids


def test_the_owner_saves_deletes_and_records_a_greeting(ports, workdir, vm_prompts):
    first, second = seed(workdir, 2)
    with UA(ports(), log_dir=workdir, name="owner") as owner, \
            vm_engine(ports, workdir, vm_prompts) as engine:
        owner.request("call", call="o1", to=engine.number("300"), tone=500)
        owner.wait_state("o1", "CONFIRMED")
        time.sleep(0.5)
        # Keys typed ahead wait for the menu that takes them: box, PIN, new
        # messages, save the first, delete the second (the last: back to the
        # main menu by itself).
        owner.request("dtmf", call="o1", digits="200#1234#1")
        time.sleep(4.0)
        owner.request("dtmf", call="o1", digits="97")
        wait_for(lambda: len(messages(engine)) == 1, what="the delete")
        assert [(m["id"], m["folder"]) for m in messages(engine)] == [(first, "saved")]
        # Greetings, busy: record, end with #, keep it, back, end.
        time.sleep(4.0)      # the counts are spoken again first
        owner.request("dtmf", call="o1", digits="32")
        time.sleep(4.0)
        owner.request("dtmf", call="o1", digits="#")
        time.sleep(1.0)
        owner.request("dtmf", call="o1", digits="3*9")
        owner.wait_state("o1", "DISCONNECTED", timeout=30)
        assert "busy" in api(engine, "/api/voicemail/200")["greetings"]
    assert not (workdir / "data" / "voicemail" / "200" / f"{second}.wav").exists()
    greeting = workdir / "data" / "voicemail" / "200" / "greetings" / "busy.wav"
    assert tones.duration(greeting) > 1.0 and abs(tones.dominant_frequency(greeting) - 500) < 15


def test_wrong_pins_lock_the_box(ports, workdir, vm_prompts):
    with UA(ports(), log_dir=workdir, name="owner") as owner, \
            vm_engine(ports, workdir, vm_prompts) as engine:
        owner.request("call", call="o1", to=engine.number("300"))
        owner.wait_state("o1", "CONFIRMED")
        time.sleep(0.5)
        owner.request("dtmf", call="o1", digits="200#1111#200#2222#200#3333#")
        owner.wait_state("o1", "DISCONNECTED", timeout=30)
        assert engine.wait_metric("sipacd_voicemail_pin_failures_total", 3,
                                  reason="wrong_pin") == 3
        assert engine.wait_metric("sipacd_voicemail_lockouts_total", 1) == 1
        owner.request("call", call="o2", to=engine.number("300"))
        owner.wait_state("o2", "CONFIRMED")
        time.sleep(0.5)
        owner.request("dtmf", call="o2", digits="200#1234#")     # right, but locked
        owner.wait_state("o2", "DISCONNECTED", timeout=20)
        assert engine.wait_metric("sipacd_voicemail_pin_failures_total", 1, reason="locked") == 1


def test_engine_killed_while_recording_leaves_nothing_half_done(ports, workdir, vm_prompts):
    with UA(ports(), log_dir=workdir, name="caller") as caller:
        engine = vm_engine(ports, workdir, vm_prompts)
        cfg = engine.config
        try:
            caller.request("call", call="c1", to=engine.number("200"), tone=440)
            caller.wait_state("c1", "CONFIRMED")
            time.sleep(3.0)                           # recording for ~2 s
            assert list((workdir / "data" / "recordings").glob(".rec-*.tmp.wav"))
            engine.proc.kill()                        # SIGKILL: no clean-up at all
            engine.proc.wait(10)
        finally:
            engine.stop()
        caller.request("hangup_all")
        with Engine(workdir, cfg) as engine:
            assert messages(engine) == []
            assert not list((workdir / "data" / "recordings").glob(".rec-*"))
            leave_message(caller, engine, "c2", talk=3.0)
            [m] = wait_for(lambda: messages(engine), what="the message after the restart")
            assert 2.0 < m["duration"] < 4.5
