"""Supervisors over real SIP on 127.0.0.1, judged by what each phone hears
(the tones of test_call_operations: caller 440 Hz, alice 1000 Hz, the
supervisor 2000 Hz):

* from another phone, the supervisor dials the monitor feature number,
  keys supervisor number, PIN and the agent's number: their own call
  hears caller and agent; 2 whispers to the agent only; the caller's
  hang-up hangs up the supervisor; the event log names the supervisor and
  says the session came by keypad;
* a supervisor limited to queue ``sales`` is refused a ``support`` call by
  the API (403 naming the queue) and on the phone (a spoken refusal); an
  agent with no call is said to be on none; a token naming an unlimited
  supervisor rings that supervisor's phone and the rows carry its id;
* wrong PINs lock the supervisor's keypad identification.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engine_proc import Engine
from simphones.tones import read_wav
from sipua import UA
from test_call_operations import ALICE, BOSS, CALLER, connect, hears, rows, setup
from test_queue_behaviour import api, wait_until

pytestmark = pytest.mark.sip

PIN = "4242"
SAM_TOKEN = "sam-token-0123456789abcdef"
ANN_TOKEN = "ann-token-0123456789abcdef"
FEATURES = {"pin_attempts": 3, "lockout": 600, "digit_timeout": 4}


def sup_config(ports, workdir, prompts_dir, phones: UA, sam_phone: UA, **sam):
    cfg = setup(ports, workdir, prompts_dir, phones, features=FEATURES)
    cfg["agents"]["alice"]["number"] = "1001"
    cfg["agents"]["bob"]["number"] = "1002"
    cfg["supervisors"] = {
        "sam": {"phone": sam_phone.uri("sam"), "number": "900", "pin": PIN, **sam},
        "ann": {"phone": sam_phone.uri("ann"), "number": "901", "pin": "5555"}}
    cfg["http"]["tokens"]["sam-console"] = {"role": "supervisor", "token": SAM_TOKEN,
                                            "supervisor": "sam"}
    cfg["http"]["tokens"]["ann-console"] = {"role": "supervisor", "token": ANN_TOKEN,
                                            "supervisor": "ann"}
    return cfg


def monitor_of(engine) -> str | None:
    calls = api(engine, "GET", "/api/calls")[1]["calls"]
    return calls[0]["monitor"] if calls else None


def monitor_rows(engine, call_id: str) -> list[tuple]:
    return [(k, a, r, json.loads(d), w) for k, _, a, r, w, d in rows(engine, call_id)
            if k.startswith("MONITOR")]


def keypad_results(engine) -> list[str]:
    return [e["result"] for e in engine.log_events()
            if e.get("event") == "supervisor keypad monitor"]


def dial_monitor(phone: UA, engine, call: str, digits: str, from_user: str,
                 record: str | None = None) -> float:
    """Dial the monitor number and key ``digits`` ahead of the prompts;
    returns when the phone's recording started."""
    phone.request("call", call=call, to=engine.number("*77"), from_user=from_user,
                  tone=BOSS, record=record)
    start = phone.wait_event({"ev": "media", "call": call})["at"]
    phone.wait_state(call, "CONFIRMED")
    time.sleep(0.5)
    phone.request("dtmf", call=call, digits=digits)
    return start


def test_monitor_by_keypad_from_another_phone(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller, \
            UA(ports(), log_dir=workdir, name="desk") as desk:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE,
                       record=str(workdir / "alice.wav"))
        rec, desk_rec = str(workdir / "caller.wav"), str(workdir / "desk.wav")
        with Engine(workdir, sup_config(ports, workdir, prompts_dir, phones, desk)) as engine:
            call_id, start, alice = connect(caller, phones, engine, rec)
            alice_start = phones.wait_event({"ev": "media", "call": alice})["at"]
            desk_start = dial_monitor(desk, engine, "s1", f"900#{PIN}#1001#", "desk", desk_rec)
            wait_until(lambda: monitor_of(engine) == "listen", 10, "the session, listening")
            assert desk.events({"ev": "incoming"}) == []       # no second call: the same leg
            listen = (time.monotonic() + 0.3, time.monotonic() + 1.8)
            time.sleep(1.9)
            desk.request("dtmf", call="s1", digits="2")             # whisper
            wait_until(lambda: monitor_of(engine) == "whisper", 5, "whisper")
            whisper = (time.monotonic() + 0.3, time.monotonic() + 1.8)
            time.sleep(1.9)
            caller.request("hangup", call="c1")
            # The monitored call's end hangs up the supervisor's own call.
            desk.wait_state("s1", "DISCONNECTED", timeout=5)
            for ua, call in ((caller, "c1"), (desk, "s1"), (phones, alice)):
                ua.wait_event({"ev": "recorded", "call": call})
            by_desk = [hears(desk_rec, desk_start, *span, CALLER, ALICE)
                       for span in (listen, whisper)]
            assert by_desk == [{CALLER: True, ALICE: True}] * 2, by_desk
            by_agent = [hears(str(workdir / "alice.wav"), alice_start, *span, BOSS)[BOSS]
                        for span in (listen, whisper)]
            by_caller = [hears(rec, start, *span, BOSS)[BOSS] for span in (listen, whisper)]
            assert by_agent == [False, True], by_agent
            assert by_caller == [False, False], by_caller
            got = wait_until(lambda: len(monitor_rows(engine, call_id)) == 3
                             and monitor_rows(engine, call_id), 3, "the session's rows")
            sam_keypad = {"supervisor": "sam", "via": "keypad"}
            assert [r[:4] for r in got] == [
                ("MONITOR_START", "alice", "listen", sam_keypad),
                ("MONITOR_MODE", "alice", "whisper", sam_keypad),
                ("MONITOR_END", "alice", "whisper", sam_keypad)], got
            assert 3.0 < got[-1][4] < 15.0, got                  # how long it lasted
            assert keypad_results(engine) == ["ok"]


def spoken_after_keys(path: str, start: float, keyed: float) -> float:
    """RMS of what the phone heard from 1.5 s after the keys to the end (a
    prompt the engine played once the agent number was in)."""
    samples, rate = read_wav(path)
    tail = samples[int((keyed + 1.5 - start) * rate):].astype(np.float64)
    return float(np.sqrt(np.mean(tail ** 2))) if len(tail) else 0.0


def test_queue_scope_refusals_and_a_token_naming_a_supervisor(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller, \
            UA(ports(), log_dir=workdir, name="sup") as sup:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        sup.request("auto_answer", user="ann", after=0.3, tone=BOSS)
        cfg = sup_config(ports, workdir, prompts_dir, phones, sup, queues=["sales"])
        with Engine(workdir, cfg) as engine:
            call_id, _, _ = connect(caller, phones, engine, str(workdir / "caller.wav"))
            status, body = api(engine, "POST", f"/api/calls/{call_id}/monitor",
                               {"mode": "listen"}, token=SAM_TOKEN)
            assert status == 403 and "'support'" in body and "'sam'" in body, (status, body)
            # The live calls sam sees are its queues' only; ann sees every queue's.
            assert api(engine, "GET", "/api/calls", token=SAM_TOKEN)[1]["calls"] == []
            assert [c["call_id"] for c in api(engine, "GET", "/api/calls",
                                              token=ANN_TOKEN)[1]["calls"]] == [call_id]
            # From sam's own phone: no number or PIN, just the agent's number.
            rec = str(workdir / "sam.wav")
            start = dial_monitor(sup, engine, "s1", "1001#", "sam", rec)
            keyed = time.monotonic()
            sup.wait_state("s1", "DISCONNECTED", timeout=20)
            sup.wait_event({"ev": "recorded", "call": "s1"})
            assert spoken_after_keys(rec, start, keyed) > 0.01, "no refusal was heard"
            dial_monitor(sup, engine, "s2", "1002#", "sam")     # bob has no call
            sup.wait_state("s2", "DISCONNECTED", timeout=20)
            assert keypad_results(engine) == ["refused", "not_on_call"]
            assert monitor_of(engine) is None and monitor_rows(engine, call_id) == []
            assert sup.events({"ev": "incoming"}) == []
            # ann's token: ann's phone rings, the rows name ann.
            assert api(engine, "POST", f"/api/calls/{call_id}/monitor", {"mode": "barge"},
                       token=ANN_TOKEN)[0] == 202
            inc = sup.wait_event({"ev": "incoming", "user": "ann"})
            assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
            wait_until(lambda: monitor_of(engine) == "barge", 5, "ann barging in")
            caller.request("hangup", call="c1")
            sup.wait_state(inc["call"], "DISCONNECTED", timeout=5)
            got = wait_until(lambda: len(monitor_rows(engine, call_id)) == 2
                             and monitor_rows(engine, call_id), 3, "ann's rows")
            assert [r[:4] for r in got] == [
                ("MONITOR_START", "alice", "barge", {"supervisor": "ann", "via": "api"}),
                ("MONITOR_END", "alice", "barge", {"supervisor": "ann", "via": "api"})], got


def test_wrong_pins_lock_the_supervisor_out(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller, \
            UA(ports(), log_dir=workdir, name="desk") as desk:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        with Engine(workdir, sup_config(ports, workdir, prompts_dir, phones, desk)) as engine:
            call_id, _, _ = connect(caller, phones, engine, str(workdir / "caller.wav"))
            dial_monitor(desk, engine, "k1", "900#1111#900#2222#900#3333#", "desk")
            desk.wait_state("k1", "DISCONNECTED", timeout=25)
            # The right PIN now: still locked, no session.
            dial_monitor(desk, engine, "k2", f"900#{PIN}#1001#", "desk")
            desk.wait_state("k2", "DISCONNECTED", timeout=20)
            assert keypad_results(engine) == ["locked", "locked"]
            assert monitor_of(engine) is None and monitor_rows(engine, call_id) == []
            # Another supervisor is not locked with sam.
            dial_monitor(desk, engine, "k3", "901#5555#1001#", "desk")
            wait_until(lambda: monitor_of(engine) == "listen", 10, "ann listening")
            desk.request("hangup", call="k3")
            wait_until(lambda: monitor_of(engine) is None, 5, "the session's end")
            got = wait_until(lambda: len(monitor_rows(engine, call_id)) == 2
                             and monitor_rows(engine, call_id), 3, "ann's rows")
            assert [(k, d["supervisor"]) for k, _, _, d, _ in got] == [
                ("MONITOR_START", "ann"), ("MONITOR_END", "ann")]
