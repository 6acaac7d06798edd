"""The test callers/agents themselves: two phone processes (simphones.phone)
talking to each other, and baresip (a foreign SIP stack) calling a phone.

Everything else in the real-SIP suite trusts these UAs to hear and send the
right thing, so this file checks the audio itself (frequency of what each
side recorded), DTMF both ways of signalling it, and rejections.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

import baresip as baresip_mod
from simphones import tones
from sipua import UA, UAError

TOLERANCE_HZ = 15
# Long enough for a clean spectrum after skipping jitter-buffer fill.
TALK_SECONDS = 1.5


@pytest.fixture
def ua_pair(ports, workdir):
    # Start both before waiting: pjsua start-up is most of a UA's cost.
    with UA(ports(), log_dir=workdir, name="a", start_timeout=None) as a, \
            UA(ports(), log_dir=workdir, name="b", start_timeout=None) as b:
        a.wait_ready()
        b.wait_ready()
        yield a, b
        a.begin_close()
        b.begin_close()


def connect(a: UA, b: UA, workdir, **call_kw):
    """A calls B (B answers with 880 Hz, A plays 440 Hz, both record)."""
    b.request("auto_answer", user="*", after=0.1, tone=880, record=str(workdir / "b.wav"))
    a.request("call", call="c1", to=b.uri("100"), from_user="caller1", tone=440,
              record=str(workdir / "a.wav"), **call_kw)
    incoming = b.wait_event({"ev": "incoming"}, 5)
    a.wait_state("c1", "CONFIRMED", 5)
    a.wait_event({"ev": "media", "call": "c1"}, 5)
    b.wait_event({"ev": "media", "call": incoming["call"]}, 5)
    return incoming


def test_tone_file_measures_its_own_frequency(tmp_path):
    for hz in (440, 697, 880, 1633):
        p = tones.write_tone(tmp_path / f"{hz}.wav", hz, seconds=0.5)
        assert abs(tones.dominant_frequency(p, skip_seconds=0) - hz) < 1
    silent = tones.write_tone(tmp_path / "0.wav", 0, seconds=0.5)
    assert tones.dominant_frequency(silent) == 0.0
    assert tones.rms(silent) == 0.0
    assert 0.2 < tones.rms(tmp_path / "440.wav") < 0.22  # 0.3 amplitude / sqrt(2)


@pytest.mark.sip
def test_each_side_records_the_other_sides_tone(ua_pair, workdir):
    a, b = ua_pair
    incoming = connect(a, b, workdir, headers={"X-Queue": "sales", "X-Foo": "1"})
    assert incoming["user"] == "100"
    assert incoming["from_user"] == "caller1"
    assert incoming["headers"] == {"X-Queue": "sales", "X-Foo": "1"}
    b.wait_state(incoming["call"], "EARLY", 1, code=180)
    time.sleep(TALK_SECONDS)
    a.request("hangup", call="c1")
    a.wait_state("c1", "DISCONNECTED", 5)
    b.wait_state(incoming["call"], "DISCONNECTED", 5)
    rec_a = a.wait_event({"ev": "recorded", "call": "c1"}, 5)
    rec_b = b.wait_event({"ev": "recorded", "call": incoming["call"]}, 5)
    assert rec_a["seconds"] >= TALK_SECONDS * 0.8
    assert abs(tones.dominant_frequency(rec_a["path"]) - 880) <= TOLERANCE_HZ
    assert abs(tones.dominant_frequency(rec_b["path"]) - 440) <= TOLERANCE_HZ
    assert tones.rms(rec_b["path"], skip_seconds=0.3) > 0.05


@pytest.mark.sip
def test_a_burst_is_heard_once_after_it_was_sent(ua_pair, workdir):
    """The marker of benchmarks/mouth_to_ear.py: ``burst`` plays its tone
    once into the call, and the far end's recording has it after the
    phone's "burst" time, about as long as asked, and nothing before."""
    a, b = ua_pair
    b.request("auto_answer", user="*", after=0.1, record=str(workdir / "b.wav"))
    a.request("call", call="c1", to=b.uri("100"))
    incoming = b.wait_event({"ev": "incoming"}, 5)
    a.wait_event({"ev": "media", "call": "c1"}, 5)
    rec_start = b.wait_event({"ev": "media", "call": incoming["call"]}, 5)["at"]
    time.sleep(0.5)
    a.request("burst", call="c1", freq=1000, ms=60)
    sent = a.wait_event({"ev": "burst", "call": "c1"}, 2)["at"]
    time.sleep(0.8)
    a.request("hangup", call="c1")
    rec = b.wait_event({"ev": "recorded", "call": incoming["call"]}, 5)
    samples, rate = tones.read_wav(rec["path"])
    delay = tones.burst_onset(samples, rate, rec_start, sent, search=0.7)
    assert delay is not None and 0 <= delay < 0.5, delay
    before = samples[: int((sent - rec_start) * rate)]
    assert np.abs(before).max() < 0.05, "sound before the burst was sent"
    start = int((sent + delay - rec_start) * rate)
    loud = tones.tone_levels(samples[start:start + rate // 2], 1000, rate) > 0.1
    assert 4 <= loud.sum() <= 8, f"{10 * loud.sum()} ms of the 60 ms burst"


@pytest.mark.sip
def test_dtmf_rfc2833_and_sip_info_arrive_as_events(ua_pair, workdir):
    a, b = ua_pair
    incoming = connect(a, b, workdir)
    a.request("dtmf", call="c1", digits="12#", method="rfc2833")
    got = [b.wait_event({"ev": "dtmf", "call": incoming["call"]}, 5)["digit"] for _ in range(3)]
    assert got == list("12#")
    a.request("dtmf", call="c1", digits="5*", method="info")
    got = [b.wait_event({"ev": "dtmf", "call": incoming["call"]}, 5)["digit"] for _ in range(2)]
    assert got == list("5*")
    # and the other direction, from the answering side
    b.request("dtmf", call=incoming["call"], digits="9", method="info")
    assert a.wait_event({"ev": "dtmf", "call": "c1"}, 5)["digit"] == "9"


@pytest.mark.sip
def test_reject_486_shows_as_disconnected_486(ua_pair):
    a, b = ua_pair
    b.request("auto_answer", user="busy", code=486)
    a.request("call", call="c1", to=b.uri("busy"))
    assert b.wait_event({"ev": "incoming"}, 5)["user"] == "busy"
    ev = a.wait_state("c1", "DISCONNECTED", 5)
    assert ev["code"] == 486
    assert not a.events({"ev": "media"})


@pytest.mark.sip
def test_183_early_media_reaches_the_caller(ua_pair, workdir):
    a, b = ua_pair
    b.request("auto_answer", user="*", code=183, tone=880)
    a.request("call", call="c1", to=b.uri("ivr"), record=str(workdir / "early-{call}.wav"))
    a.wait_state("c1", "EARLY", 5, code=183)
    a.wait_event({"ev": "media", "call": "c1"}, 5)
    time.sleep(TALK_SECONDS)
    a.request("hangup", call="c1")
    rec = a.wait_event({"ev": "recorded", "call": "c1"}, 5)
    assert not a.events({"ev": "state", "state": "CONFIRMED"})
    assert abs(tones.dominant_frequency(rec["path"]) - 880) <= TOLERANCE_HZ


@pytest.mark.sip
def test_one_rule_records_each_call_to_its_own_file(ua_pair, workdir):
    a, b = ua_pair
    b.request("auto_answer", user="*", tone=880, record=str(workdir / "agent-{user}-{call}.wav"),
              hangup_after=0.5)
    for n, user in ((1, "sales"), (2, "support")):
        a.request("call", call=f"c{n}", to=b.uri(user), tone=440)
        a.wait_state(f"c{n}", "DISCONNECTED", 5)
        rec = b.wait_event({"ev": "recorded", "call": f"in{n}"}, 5)
        assert rec["path"] == str(workdir / f"agent-{user}-in{n}.wav")
        assert rec["seconds"] > 0.2


@pytest.mark.sip
def test_ring_forever_then_caller_cancels(ua_pair):
    a, b = ua_pair
    b.request("auto_answer", user="*", code=None)
    a.request("call", call="c1", to=b.uri("agent7"))
    a.wait_state("c1", "EARLY", 5, code=180)
    incoming = b.wait_event({"ev": "incoming"}, 5)
    a.request("hangup", call="c1")
    assert b.wait_state(incoming["call"], "DISCONNECTED", 5)["code"] == 487


@pytest.mark.sip
def test_quit_mid_call_still_finalizes_the_recording(ua_pair, workdir):
    a, b = ua_pair
    incoming = connect(a, b, workdir)
    time.sleep(0.5)
    assert b.close() == 0
    rec = b.events({"ev": "recorded", "call": incoming["call"]})
    assert rec, b.events()
    assert tones.duration(rec[0]["path"]) > 0.3  # header says the real length
    a.wait_state("c1", "DISCONNECTED", 5)


@pytest.mark.sip
def test_port_in_use_fails_fast_with_the_reason(ports, workdir):
    port = ports()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        with pytest.raises(UAError, match="Address already in use"):
            UA(port, log_dir=workdir)


@pytest.mark.sip
@pytest.mark.skipif(not baresip_mod.available(), reason="baresip is not installed (Debian baresip-core)")
def test_baresip_calls_a_ua(ports, workdir):
    ua_port, ctrl_port = ports.many(2)
    sip_port = ports.block(2)  # baresip takes sip_port + 1 for SIP/TLS
    with UA(ua_port, log_dir=workdir, name="ua") as ua, \
            baresip_mod.Baresip(workdir / "baresip", sip_port, ctrl_port, tone=600, lifetime=30) as bs:
        ua.request("auto_answer", user="*", tone=880, record=str(workdir / "ua.wav"))
        bs.start(ua.uri("200"))
        incoming = ua.wait_event({"ev": "incoming"}, 5)
        assert incoming["user"] == "200"
        ua.wait_event({"ev": "media", "call": incoming["call"]}, 5)
        bs.wait_event("CALL_ESTABLISHED", 5)
        time.sleep(TALK_SECONDS)
        bs.send_dtmf("4#")
        got = [ua.wait_event({"ev": "dtmf", "call": incoming["call"]}, 5)["digit"] for _ in range(2)]
        assert got == ["4", "#"]
        bs.hangup()
        ua.wait_state(incoming["call"], "DISCONNECTED", 5)
        rec = ua.wait_event({"ev": "recorded", "call": incoming["call"]}, 5)
        bs.wait_event("CALL_CLOSED", 5)
        assert abs(tones.dominant_frequency(rec["path"]) - 600) <= TOLERANCE_HZ
        heard = bs.received_wav()
    # after baresip has exited its dump is surely closed
    assert abs(tones.dominant_frequency(heard) - 880) <= TOLERANCE_HZ
