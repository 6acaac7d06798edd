"""Call operations over real SIP on 127.0.0.1, judged by what each phone
hears.  Every phone plays its own tone and records: the caller 440 Hz, the
agents 1000 and 1500 Hz, the supervisor 2000 Hz, and the queue's music on
hold is a 300 Hz tone, so a recording says who was heard when.

* hold from the agent's phone (re-INVITE sendonly) and from the API: the
  caller hears the music, not the agent; after each resume the two hear
  each other again; hold rows and metrics agree;
* blind transfer by the API into another queue: the first agent goes to
  wrap-up at once, the caller hears the second agent; the log has the
  TRANSFER row and the second CONNECT under the same call id;
* blind transfer from the agent's phone (REFER);
* monitor: listen (nobody hears the supervisor), whisper (only the agent),
  barge (everyone), switched by the supervisor's keypad, and ended cleanly
  when the caller hangs up.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import pytest

from engine_proc import Engine
from simphones.tones import read_wav, tone_levels, write_tone
from sipua import UA
from test_queue_behaviour import api, agent_state, config, wait_until

from sipagent.store.eventlog import event_log_path

pytestmark = pytest.mark.sip

CALLER, ALICE, BOB, BOSS, MUSIC = 440.0, 1000.0, 1500.0, 2000.0, 300.0


def rows(engine, call_id: str | None = None) -> list[tuple]:
    conn = sqlite3.connect(event_log_path(engine.workdir / "data").resolve().as_uri()
                           + "?mode=ro", uri=True)
    try:
        sql = "SELECT kind, queue, agent, reason, wait, data FROM event"
        if call_id:
            return conn.execute(sql + " WHERE call_id = ? ORDER BY id", (call_id,)).fetchall()
        return conn.execute(sql + " ORDER BY id").fetchall()
    finally:
        conn.close()


def level(path, freq: float, start: float, t0: float, t1: float) -> float:
    """Median level of ``freq`` in the recording between monotonic t0 and t1."""
    samples, rate = read_wav(path)
    levels = tone_levels(samples, freq, rate)
    return float(np.median(levels[int((t0 - start) * 100):int((t1 - start) * 100)]))


def hears(path, start: float, t0: float, t1: float, *freqs: float) -> dict[float, bool]:
    """Which of ``freqs`` are heard (clearly above the floor) between t0 and t1."""
    return {f: level(path, f, start, t0, t1) > 0.05 for f in freqs}


def setup(ports, workdir, prompts_dir, phones, **extra):
    music = workdir / "music.wav"
    write_tone(music, MUSIC, 2.0)
    agents = {"alice": {"uri": phones.uri("alice"), "queues": ["support"]},
              "bob": {"uri": phones.uri("bob"), "queues": ["sales"]}}
    queues = {"support": {"moh": str(music), "wrap_up": 30},
              "sales": {"moh": str(music), "wrap_up": 30}}
    cfg = config(ports, workdir, prompts_dir, agents, queues, **extra)
    tokens = cfg["http"]["tokens"]
    tokens["boss"] = {**tokens["boss"], "phone": phones.uri("boss")}
    return cfg


class Scene(NamedTuple):
    phones: UA           # the agents' (and other parties') phones, one process
    caller: UA
    engine: Engine
    call_id: str         # the connected call
    start: float         # when the caller's recording began (monotonic)
    alice: str           # alice's call on her phone
    rec: str             # the caller's recording


@contextmanager
def scene(ports, workdir, prompts_dir, answers: dict[str, dict], *, consult: bool = False,
          configure=None):
    """Phones answering as ``answers`` says (user -> auto_answer options,
    after 0.3 s unless given), an engine (``configure(cfg)`` may change its
    config first) and the caller connected to alice."""
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        for user, rule in answers.items():
            phones.request("auto_answer", user=user, **{"after": 0.3, **rule})
        cfg = (consult_setup if consult else setup)(ports, workdir, prompts_dir, phones)
        if configure is not None:
            configure(cfg)
        rec = str(workdir / "caller.wav")
        with Engine(workdir, cfg) as engine:
            call_id, start, alice = connect(caller, phones, engine, rec)
            yield Scene(phones, caller, engine, call_id, start, alice, rec)
            # Once the test hung its calls up: no leg, entry, offer or
            # recording left over, and no agent busy or ringing.
            if engine.proc.poll() is None:
                engine.assert_settled()


def caller_reaches_bob(phones, caller, call_id: str, rec: str, start: float) -> None:
    """After a transfer to sales: bob's phone rings with the same call id,
    answers, and the caller hears bob (not alice); then the caller hangs up."""
    inc = phones.wait_event({"ev": "incoming", "user": "bob"})
    assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
    confirmed = phones.wait_state(inc["call"], "CONFIRMED")["at"]
    time.sleep(1.5)
    caller.request("hangup", call="c1")
    caller.wait_event({"ev": "recorded", "call": "c1"})
    after = hears(rec, start, confirmed + 0.3, confirmed + 1.4, BOB, ALICE)
    assert after == {BOB: True, ALICE: False}, after


def talk_then_hang_up(phones, caller, target: str) -> float:
    """The caller talks to ``target`` for 1.5 s, then hangs up; the engine
    ends the target's call too.  Returns when the talk began (monotonic)."""
    began = time.monotonic()
    time.sleep(1.5)
    caller.request("hangup", call="c1")
    phones.wait_state(target, "DISCONNECTED", timeout=5)
    caller.wait_event({"ev": "recorded", "call": "c1"})
    return began


def connect(caller, phones, engine, record) -> tuple[str, float, str]:
    """Caller in, alice answers: (sip call id, recording start, alice's call)."""
    caller.request("call", call="c1", to=engine.number("100"), tone=CALLER, record=record)
    media = caller.wait_event({"ev": "media", "call": "c1"})
    inc = phones.wait_event({"ev": "incoming", "user": "alice"})
    phones.wait_state(inc["call"], "CONFIRMED")
    call_id = inc["headers"]["X-Sipacd-Call-Id"]
    wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"], 5, "the conversation")
    return call_id, media["at"], inc["call"]


def test_hold_from_the_phone_and_the_api(ports, workdir, prompts_dir):
    answers = {"alice": dict(tone=ALICE)}
    with scene(ports, workdir, prompts_dir, answers) as \
            (phones, caller, engine, call_id, start, alice, rec):
        marks = [time.monotonic()]
        time.sleep(1.0)
        phones.request("hold", call=alice)                      # the phone holds
        wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"]
                   == "held", 5, "held by the phone")
        marks.append(time.monotonic())
        time.sleep(1.5)
        phones.request("unhold", call=alice)
        wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"]
                   == "talking", 5, "resumed by the phone")
        marks.append(time.monotonic())
        time.sleep(1.0)
        assert api(engine, "POST", f"/api/calls/{call_id}/hold")[0] == 200
        marks.append(time.monotonic())
        time.sleep(1.5)
        status, body = api(engine, "POST", f"/api/calls/{call_id}/hold")
        assert status == 200 and body["phase"] == "held"        # holding twice is harmless
        assert api(engine, "POST", f"/api/calls/{call_id}/resume")[0] == 200
        marks.append(time.monotonic())
        time.sleep(1.0)
        marks.append(time.monotonic())
        caller.request("hangup", call="c1")
        caller.wait_event({"ev": "recorded", "call": "c1"})
        wait_until(lambda: agent_state(engine, "alice") == "wrap_up", 5, "wrap-up")
        heard = [hears(rec, start, a + 0.3, b - 0.1, ALICE, MUSIC)
                 for a, b in zip(marks, marks[1:])]
        assert heard == [{ALICE: True, MUSIC: False}, {ALICE: False, MUSIC: True},
                         {ALICE: True, MUSIC: False}, {ALICE: False, MUSIC: True},
                         {ALICE: True, MUSIC: False}], heard
        log = rows(engine, call_id)
        kinds = [r[0] for r in log]
        assert kinds.count("HOLD") == 2 and kinds.count("UNHOLD") == 2, kinds
        held = sum(r[4] for r in log if r[0] == "UNHOLD")
        assert 2.5 < held < 5.0, held
        assert engine.metric("sipacd_queue_holds_total", queue="support") == 2
        assert abs(engine.metric("sipacd_queue_hold_seconds_total", queue="support")
                   - held) < 0.01


def test_blind_transfer_by_api_into_another_queue(ports, workdir, prompts_dir):
    t0 = datetime.now(timezone.utc)
    answers = {"alice": dict(tone=ALICE), "bob": dict(tone=BOB)}
    with scene(ports, workdir, prompts_dir, answers) as \
            (phones, caller, engine, call_id, start, alice, rec):
        assert api(engine, "POST", f"/api/calls/{call_id}/hold")[0] == 200
        time.sleep(1.0)
        assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                   {"target": "queue:nowhere"})[0] == 400
        assert api(engine, "POST", f"/api/calls/{call_id}/transfer", {"goal": "x"})[0] == 400
        status, body = api(engine, "POST", f"/api/calls/{call_id}/transfer",
                           {"target": "queue:sales"})
        assert status == 202, body
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        assert agent_state(engine, "alice") == "wrap_up"
        caller_reaches_bob(phones, caller, call_id, rec, start)
        wait_until(lambda: agent_state(engine, "bob") == "wrap_up", 5, "bob's wrap-up")
        log = [(k, q, a, r) for k, q, a, r, _, _ in rows(engine, call_id)]
        assert ("TRANSFER", "support", "alice", "blind") in log
        assert [r[:3] for r in log if r[0] in ("ENTER", "CONNECT")] == [
            ("ENTER", "support", None), ("CONNECT", "support", "alice"),
            ("ENTER", "sales", None), ("CONNECT", "sales", "bob")]
        assert engine.metric("sipacd_transfers_total", kind="blind", target="queue",
                             result="done") == 1
        # The transfer ended the hold: its time is counted once, in both.
        metrics = {(name, q): engine.metric(name, queue=q) for q in ("support", "sales")
                   for name in ("sipacd_queue_holds_total", "sipacd_queue_hold_seconds_total",
                                "sipacd_queue_talk_seconds_total")}
        assert engine.stop() == 0           # flushes the log
        report = report_rows(engine, t0)
        assert report["support"]["transfers"] == 1 and report["sales"]["transfers"] == 0
        for q in ("support", "sales"):
            assert report[q]["handled"] == 1
            assert report[q]["holds"] == metrics[("sipacd_queue_holds_total", q)]
            assert report[q]["hold_seconds"] == pytest.approx(
                metrics[("sipacd_queue_hold_seconds_total", q)], abs=0.01)
        assert report["support"]["holds"] == 1 and report["support"]["hold_seconds"] > 0.9
        # AHT = talk (hold included) + wrap-up; the wrap-up is still running
        # at the report's end, so AHT here is at least the talk.
        assert report["support"]["aht"] >= metrics[("sipacd_queue_talk_seconds_total",
                                                     "support")] - 0.01


def report_rows(engine, t0) -> dict[str, dict]:
    t1 = datetime.now(timezone.utc)
    res = subprocess.run([sys.executable, "-m", "sipagent", "report", "-c",
                          str(engine.config_path), "--from", t0.isoformat(), "--to",
                          t1.isoformat(), "--format", "json"],
                         capture_output=True, text=True, timeout=60, cwd=engine.workdir)
    assert res.returncode == 0, res.stderr
    return {r["queue"]: r for r in json.loads(res.stdout)}


def test_monitor_listen_whisper_barge(ports, workdir, prompts_dir):
    answers = {"alice": dict(tone=ALICE, record=str(workdir / "alice.wav")),
               "boss": dict(tone=BOSS, record=str(workdir / "boss.wav"))}
    with scene(ports, workdir, prompts_dir, answers) as \
            (phones, caller, engine, call_id, start, alice, rec):
        alice_start = phones.wait_event({"ev": "media", "call": alice})["at"]
        status, body = api(engine, "POST", f"/api/calls/{call_id}/monitor",
                           {"mode": "eavesdrop"})
        assert status == 400, body
        assert api(engine, "POST", f"/api/calls/{call_id}/monitor",
                   {"mode": "listen"})[0] == 202
        boss = phones.wait_event({"ev": "incoming", "user": "boss"})["call"]
        boss_start = phones.wait_event({"ev": "media", "call": boss})["at"]
        assert api(engine, "POST", f"/api/calls/{call_id}/monitor",
                   {"mode": "listen"})[0] == 409            # one session at a time
        marks = [time.monotonic() + 0.3]
        time.sleep(1.5)
        phones.request("dtmf", call=boss, digits="2")          # whisper
        time.sleep(0.3)
        marks.append(time.monotonic())
        time.sleep(1.5)
        phones.request("dtmf", call=boss, digits="3")          # barge
        time.sleep(0.3)
        marks.append(time.monotonic())
        time.sleep(1.5)
        marks.append(time.monotonic())
        caller.request("hangup", call="c1")
        phones.wait_state(boss, "DISCONNECTED", timeout=5)     # the session ends with the call
        caller.wait_event({"ev": "recorded", "call": "c1"})
        phones.wait_event({"ev": "recorded", "call": boss})
        phones.wait_event({"ev": "recorded", "call": alice})
        spans = list(zip(marks, marks[1:]))
        by_caller = [hears(rec, start, a, b, BOSS)[BOSS] for a, b in spans]
        by_agent = [hears(str(workdir / "alice.wav"), alice_start, a, b, BOSS)[BOSS]
                    for a, b in spans]
        by_boss = [hears(str(workdir / "boss.wav"), boss_start, a, b, CALLER, ALICE)
                   for a, b in spans]
        assert by_caller == [False, False, True], by_caller
        assert by_agent == [False, True, True], by_agent
        assert all(h == {CALLER: True, ALICE: True} for h in by_boss), by_boss
        def monitor_rows():
            return [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)
                    if k.startswith("MONITOR")]
        log = wait_until(lambda: len(monitor_rows()) == 4 and monitor_rows(), 3,
                         "the session's rows")
        assert log == [("MONITOR_START", "alice", "listen"),
                       ("MONITOR_MODE", "alice", "whisper"),
                       ("MONITOR_MODE", "alice", "barge"),
                       ("MONITOR_END", "alice", "barge")], log


def test_blind_transfer_from_the_phone_by_refer(ports, workdir, prompts_dir):
    """The agent's phone sends REFER to the queue's name: the engine takes
    it (202, NOTIFY 200), the phone hangs up, the caller reaches bob."""
    answers = {"alice": dict(tone=ALICE),
               "bob": dict(tone=BOB)}
    with scene(ports, workdir, prompts_dir, answers) as \
            (phones, caller, engine, call_id, start, alice, rec):
        time.sleep(0.5)
        phones.request("xfer", call=alice, to=f"sip:sales@127.0.0.1:{engine.sip_port}")
        status = phones.wait_event({"ev": "xfer_status", "call": alice, "final": True})
        assert status["code"] == 200, status
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        caller_reaches_bob(phones, caller, call_id, rec, start)
        wait_until(lambda: ("TRANSFER", "alice", "blind") in
                   [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)], 3,
                   "the TRANSFER row")
        assert engine.metric("sipacd_transfers_total", kind="blind", target="queue",
                             result="done") == 1


def test_refer_to_nowhere_and_from_a_caller_are_refused(ports, workdir, prompts_dir):
    answers = {"alice": dict(tone=ALICE)}
    with scene(ports, workdir, prompts_dir, answers) as \
            (phones, caller, engine, call_id, start, alice, rec):
        # No queue, agent or extension "nowhere", and numbers are not dialled out.
        phones.request("xfer", call=alice, to=f"sip:nowhere@127.0.0.1:{engine.sip_port}")
        status = phones.wait_event({"ev": "xfer_status", "call": alice})
        assert status["code"] >= 400, status
        # A caller cannot transfer itself anywhere.
        caller.request("xfer", call="c1", to=f"sip:sales@127.0.0.1:{engine.sip_port}")
        status = caller.wait_event({"ev": "xfer_status", "call": "c1"})
        assert status["code"] >= 400, status
        time.sleep(0.5)
        calls = api(engine, "GET", "/api/calls")[1]["calls"]
        assert [(c["call_id"], c["agent"], c["phase"]) for c in calls] == [
            (call_id, "alice", "talking")]
        caller.request("hangup", call="c1")
        caller.wait_state("c1", "DISCONNECTED")


def test_talk_time_limit_beeps_to_the_agent_then_ends_the_call(ports, workdir, prompts_dir):
    """talk_limit 3 s, warning 1.5 s: the agent (not the caller) hears the
    1 kHz beep about 1.5 s in; at 3 s the engine ends the call."""
    def configure(cfg):
        cfg["queues"]["support"].update(talk_limit=3.0, talk_limit_warning=1.5)

    answers = {"alice": dict(tone=BOB, record=str(workdir / "alice.wav"))}
    with scene(ports, workdir, prompts_dir, answers, configure=configure) as \
            (phones, caller, engine, call_id, start, alice, rec):
        alice_start = phones.wait_event({"ev": "media", "call": alice})["at"]
        bridged = phones.events({"ev": "state", "call": alice, "state": "CONFIRMED"})[0]["at"]
        ended = caller.wait_state("c1", "DISCONNECTED", timeout=8)["at"]
        assert 2.7 < ended - bridged < 4.0, ended - bridged
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        caller.wait_event({"ev": "recorded", "call": "c1"})
        phones.wait_event({"ev": "recorded", "call": alice})
        beep = 1000.0
        # The beep lasts 0.35 s from about 1.5 s after the bridge.
        assert hears(str(workdir / "alice.wav"), alice_start, bridged + 1.55,
                     bridged + 1.8, beep)[beep]
        assert not hears(str(workdir / "alice.wav"), alice_start, bridged + 0.5,
                         bridged + 1.3, beep)[beep]
        assert not hears(rec, start, bridged + 1.4, bridged + 2.0, beep)[beep]
        wait_until(lambda: engine.metric("sipacd_queue_talk_seconds_total",
                                         queue="support") > 2.5, 3, "the talk counted")


def test_recording_follows_the_call_across_a_transfer(ports, workdir, prompts_dir):
    """recording = 100 with a consent prompt: one recording id, a segment per
    agent, the caller left and the agent right, a paused span silent."""
    def configure(cfg):
        cfg["queues"]["support"].update(recording=100, recording_consent="recording-notice")

    answers = {"alice": dict(tone=ALICE),
               "bob": dict(tone=BOB)}
    with scene(ports, workdir, prompts_dir, answers, configure=configure) as \
            (phones, caller, engine, call_id, start, alice, rec):
        time.sleep(1.0)
        status, body = api(engine, "POST", f"/api/calls/{call_id}/recording",
                           {"action": "pause"})
        assert status == 200 and body["state"] == "paused", body
        assert api(engine, "POST", f"/api/calls/{call_id}/recording",
                   {"action": "pause"})[0] == 409           # paused already
        assert api(engine, "POST", f"/api/calls/{call_id}/recording",
                   {"action": "rewind"})[0] == 400
        time.sleep(1.0)
        assert api(engine, "POST", f"/api/calls/{call_id}/recording",
                   {"action": "resume"})[0] == 200
        time.sleep(1.0)
        assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                   {"target": "queue:sales"})[0] == 202
        inc = phones.wait_event({"ev": "incoming", "user": "bob"})
        phones.wait_state(inc["call"], "CONFIRMED")
        time.sleep(1.5)
        caller.request("hangup", call="c1")
        caller.wait_state("c1", "DISCONNECTED")

        def record():
            starts = [json.loads(d) for k, _, _, _, _, d in rows(engine, call_id)
                      if k == "RECORDING_START"]
            if not starts:
                return None
            status, meta = api(engine, "GET", f"/api/recordings/{starts[0]['recording']}")
            return meta if status == 200 else None
        meta = wait_until(record, 5, "the recording's record")
        assert meta["call_id"] == call_id and meta["agents"] == ["alice", "bob"]
        assert [s["agent"].split("->")[-1] for s in meta["segments"]] == ["alice", "bob"]
        (paused,) = meta["segments"][0]["paused"]
        assert 0.8 < paused["end"] - paused["start"] < 1.3, paused
        # The row follows the record (written first) through the log's writer.
        kinds = wait_until(lambda: (k := [k for k, *_ in rows(engine, call_id)
                                          if k.startswith("RECORDING")])[-1:]
                           == ["RECORDING_STOP"] and k, 3, "the RECORDING_STOP row")
        assert kinds == ["RECORDING_START", "RECORDING_PAUSE", "RECORDING_RESUME",
                         "RECORDING_STOP"], kinds
        for n, agent_hz in ((1, ALICE), (2, BOB)):
            path = workdir / f"segment{n}.wav"
            url = f"/api/recordings/{meta['recording_id']}/segments/{n}"
            path.write_bytes(fetch(engine, url))
            check_stereo(path, agent_hz, meta["segments"][n - 1]["paused"])
        assert api(engine, "GET", f"/api/recordings/{meta['recording_id']}/segments/3")[0] \
            == 404
        assert engine.metric("sipacd_recordings_total", queue="support",
                             trigger="policy") == 1


def fetch(engine, path: str) -> bytes:
    import urllib.request
    from test_queue_behaviour import TOKEN
    req = urllib.request.Request(f"http://127.0.0.1:{engine.http_port}{path}",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def check_stereo(path, agent_hz: float, paused: list[dict]) -> None:
    """Left carries the caller's tone, right the agent's; paused spans are silent."""
    import wave
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
    left, right = frames[:, 0].astype(float) / 32768, frames[:, 1].astype(float) / 32768
    quiet = np.zeros(len(frames), bool)
    for span in paused:
        quiet[int(span["start"] * 8000):int(span["end"] * 8000)] = True
        inner = slice(int(span["start"] * 8000) + 400, int(span["end"] * 8000) - 400)
        assert np.abs(frames[inner]).max() == 0, "a paused span has sound"
    talk = ~quiet
    talk[:4000] = False                       # the first half second: media settling
    for channel, want, other in ((left, CALLER, agent_hz), (right, agent_hz, CALLER)):
        # 100 ms windows: fine enough in frequency that one tone does not
        # leak into the other's bin.
        levels = tone_levels(channel[talk], want, 8000, frame_ms=100)
        others = tone_levels(channel[talk], other, 8000, frame_ms=100)
        assert np.median(levels) > 0.05 and np.median(others) < 0.02, (want, other)


CAROL = 700.0


def consult_setup(ports, workdir, prompts_dir, phones):
    cfg = setup(ports, workdir, prompts_dir, phones)
    cfg["transfer"] = {"number_uri": "sip:{number}@" + phones.uri("x").split("@", 1)[1],
                       "ring_timeout": 3}
    return cfg


def test_attended_transfer_conference_then_the_agent_leaves(ports, workdir, prompts_dir):
    answers = {"alice": dict(tone=ALICE, record=str(workdir / "alice.wav")),
               "5550100": dict(after=0.5, tone=CAROL, record=str(workdir / "carol.wav"))}
    with scene(ports, workdir, prompts_dir, answers, consult=True) as \
            (phones, caller, engine, call_id, start, alice, rec):
        alice_start = phones.wait_event({"ev": "media", "call": alice})["at"]
        assert api(engine, "POST", f"/api/calls/{call_id}/consult",
                   {"target": "queue:sales"})[0] == 400     # queues take a blind transfer
        assert api(engine, "POST", f"/api/calls/{call_id}/consult",
                   {"target": "number:5550100"})[0] == 202
        carol = phones.wait_event({"ev": "incoming", "user": "5550100"})["call"]
        carol_start = phones.wait_event({"ev": "media", "call": carol})["at"]
        wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"]
                   == "consulting", 5, "consulting")
        marks = [time.monotonic()]
        time.sleep(1.5)
        assert api(engine, "POST", f"/api/calls/{call_id}/conference")[1]["phase"] \
            == "conference"
        marks.append(time.monotonic())
        time.sleep(1.5)
        phones.request("hangup", call=alice)                  # the agent leaves
        phones.wait_state(alice, "DISCONNECTED")
        marks.append(time.monotonic())
        time.sleep(1.5)
        marks.append(time.monotonic())
        assert agent_state(engine, "alice") == "wrap_up"
        caller.request("hangup", call="c1")
        phones.wait_state(carol, "DISCONNECTED", timeout=5)   # the engine ends the other side
        for ua, call in ((caller, "c1"), (phones, carol), (phones, alice)):
            ua.wait_event({"ev": "recorded", "call": call})
        consulting, conference, after = [(a + 0.4, b - 0.1) for a, b in
                                         zip(marks, marks[1:])]
        assert hears(rec, start, *consulting, MUSIC, ALICE, CAROL) == {
            MUSIC: True, ALICE: False, CAROL: False}
        assert hears(str(workdir / "carol.wav"), carol_start, *consulting, ALICE, CALLER) \
            == {ALICE: True, CALLER: False}
        assert hears(rec, start, *conference, ALICE, CAROL) == {ALICE: True, CAROL: True}
        assert hears(str(workdir / "alice.wav"), alice_start, *conference, CALLER, CAROL) \
            == {CALLER: True, CAROL: True}
        assert hears(rec, start, *after, CAROL, ALICE, MUSIC) == {
            CAROL: True, ALICE: False, MUSIC: False}
        log = [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)]
        assert ("TRANSFER", "alice", "conference") in log
        assert engine.metric("sipacd_transfers_total", kind="conference", target="number",
                             result="done") == 1


def test_attended_transfer_busy_cancel_and_complete(ports, workdir, prompts_dir):
    answers = {"alice": dict(tone=ALICE),
               "5550199": dict(code=486),
               "5550100": dict(tone=CAROL)}
    with scene(ports, workdir, prompts_dir, answers, consult=True) as \
            (phones, caller, engine, call_id, start, alice, rec):

        def phase():
            return api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"]
        assert api(engine, "POST", f"/api/calls/{call_id}/consult",
                   {"target": "number:5550199"})[0] == 202
        wait_until(lambda: engine.metric("sipacd_transfers_total", kind="attended",
                                         target="number", result="busy") == 1, 5, "busy")
        wait_until(lambda: phase() == "talking", 3, "the caller back with the agent")
        back = time.monotonic()
        time.sleep(1.0)
        assert api(engine, "POST", f"/api/calls/{call_id}/consult",
                   {"target": "number:5550100"})[0] == 202
        carol = phones.wait_event({"ev": "incoming", "user": "5550100"})["call"]
        wait_until(lambda: phase() == "consulting", 5, "consulting")
        assert api(engine, "POST", f"/api/calls/{call_id}/consult/cancel")[0] == 200
        phones.wait_state(carol, "DISCONNECTED", timeout=5)
        assert phase() == "talking"
        assert api(engine, "POST", f"/api/calls/{call_id}/consult/complete")[0] == 409
        assert api(engine, "POST", f"/api/calls/{call_id}/consult",
                   {"target": "number:5550100"})[0] == 202
        carol = phones.wait_event({"ev": "incoming", "user": "5550100"})["call"]
        wait_until(lambda: phase() == "consulting", 5, "consulting again")
        status, body = api(engine, "POST", f"/api/calls/{call_id}/consult/complete")
        assert status == 200 and body["transfer"]["mode"] == "attended", body
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        handed = talk_then_hang_up(phones, caller, carol)
        assert hears(rec, start, back + 0.3, back + 0.9, ALICE)[ALICE]
        assert hears(rec, start, handed + 0.4, handed + 1.4, CAROL, ALICE) == {
            CAROL: True, ALICE: False}
        assert agent_state(engine, "alice") == "wrap_up"
        log = [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)]
        assert ("TRANSFER_FAILED", "alice", "busy") in log
        assert ("TRANSFER", "alice", "attended") in log


def test_attended_transfer_from_the_phone_with_replaces(ports, workdir, prompts_dir):
    """The agent's phone holds the caller, calls the target through the
    engine, then REFERs the caller with Replaces naming that consultation."""
    answers = {"alice": dict(tone=ALICE),
               "5550100": dict(tone=CAROL)}
    with scene(ports, workdir, prompts_dir, answers, consult=True) as \
            (phones, caller, engine, call_id, start, alice, rec):
        phones.request("hold", call=alice)
        wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"][0]["phase"]
                   == "held", 5, "held by the phone")
        phones.request("call", call="consult", from_user="alice", tone=ALICE,
                       to=f"sip:5550100@127.0.0.1:{engine.sip_port}")
        carol = phones.wait_event({"ev": "incoming", "user": "5550100"})["call"]
        phones.wait_state("consult", "CONFIRMED", timeout=10)
        time.sleep(0.5)
        phones.request("xfer_replaces", call=alice, other="consult")
        status = phones.wait_event({"ev": "xfer_status", "call": alice, "final": True})
        assert status["code"] == 200, status
        phones.wait_state("consult", "DISCONNECTED", timeout=5)
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        handed = talk_then_hang_up(phones, caller, carol)
        assert hears(rec, start, handed + 0.3, handed + 1.4, CAROL, ALICE, MUSIC) == {
            CAROL: True, ALICE: False, MUSIC: False}
        assert agent_state(engine, "alice") == "wrap_up"
        wait_until(lambda: ("TRANSFER", "alice", "attended") in
                   [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)], 3,
                   "the TRANSFER row")


def test_call_keys_on_the_agents_phone(ports, workdir, prompts_dir):
    """*1 pauses the recording, ## 700 # transfers blind to extension 700
    (queue sales); the caller never receives the agent's keys."""
    def configure(cfg):
        cfg["queues"]["support"]["recording"] = 100
        cfg["transfer"] = {"extensions": {"700": "queue:sales"}}

    answers = {"alice": dict(tone=ALICE),
               "bob": dict(tone=BOB)}
    with scene(ports, workdir, prompts_dir, answers, configure=configure) as \
            (phones, caller, engine, call_id, start, alice, rec):
        time.sleep(0.5)
        phones.request("dtmf", call=alice, digits="*1")
        wait_until(lambda: "RECORDING_PAUSE" in [k for k, *_ in rows(engine, call_id)], 5,
                   "the recording paused by *1")
        phones.request("dtmf", call=alice, digits="##700#")
        inc = phones.wait_event({"ev": "incoming", "user": "bob"}, timeout=15)
        assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        phones.wait_state(inc["call"], "CONFIRMED")
        time.sleep(0.5)
        caller.request("hangup", call="c1")
        caller.wait_state("c1", "DISCONNECTED")
        assert caller.events({"ev": "dtmf"}) == []
        log = [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)]
        assert ("TRANSFER", "alice", "blind") in log
        wait_until(lambda: any(r[0] == "RECORDING_STOP" for r in rows(engine, call_id)), 5,
                   "the recording's end")


def test_transfer_priority_puts_a_transferred_caller_first(ports, workdir, prompts_dir):
    """sales has transfer_priority 10: a caller transferred there is taken
    before one who was already waiting (FIFO would take the other)."""
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="bob", after=0.3, tone=BOB)
        cfg = setup(ports, workdir, prompts_dir, phones)
        cfg["queues"]["sales"]["transfer_priority"] = 10
        cfg["routes"].append({"number": "200", "flow": "queue_now", "queue": "sales"})
        with Engine(workdir, cfg) as engine:
            assert api(engine, "POST", "/api/agents/bob/pause", {"reason": "test"})[0] == 200
            caller.request("call", call="early", to=engine.number("200"))
            caller.wait_state("early", "CONFIRMED")
            time.sleep(0.5)                            # "early" waits in sales
            call_id, start, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                       {"target": "queue:sales"})[0] == 202
            wait_until(lambda: engine.metric("sipacd_queue_offered_total", queue="sales") == 2,
                       5, "both callers in sales")
            assert api(engine, "POST", "/api/agents/bob/ready")[0] == 200
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
            caller.request("hangup_all")


def test_blind_transfer_to_a_busy_number_falls_back_then_to_a_flow(ports, workdir, prompts_dir):
    """A busy number sends the caller back into its queue (no dead line);
    then a transfer to a flow runs it on the same call."""
    def configure(cfg):
        cfg["queues"]["support"]["wrap_up"] = 0

    answers = {"alice": dict(tone=ALICE), "5550199": dict(code=486)}
    with scene(ports, workdir, prompts_dir, answers, consult=True, configure=configure) as \
            (phones, caller, engine, call_id, start, alice, rec):
        assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                   {"target": "number:5550199"})[0] == 202
        phones.wait_state(alice, "DISCONNECTED", timeout=5)
        again = phones.wait_event({"ev": "incoming", "user": "alice"}, timeout=10)
        assert again["headers"]["X-Sipacd-Call-Id"] == call_id
        phones.wait_state(again["call"], "CONFIRMED")
        assert engine.metric("sipacd_transfers_total", kind="blind", target="number",
                             result="busy") == 1
        wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"], 5, "connected again")
        assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                   {"target": "flow:goodbye_flow"})[0] == 202
        caller.wait_state("c1", "DISCONNECTED", timeout=15)     # the flow says goodbye
        log = [(k, q, a, r) for k, q, a, r, _, _ in rows(engine, call_id)]
        assert ("TRANSFER_FAILED", "support", "alice", "busy") in log
        assert [r for r in log if r[0] in ("ENTER", "CONNECT")] == [
            ("ENTER", "support", None, None), ("CONNECT", "support", "alice", None)] * 2
        assert engine.metric("sipacd_transfers_total", kind="blind", target="flow",
                             result="done") == 1
