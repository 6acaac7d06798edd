"""A blind transfer from a third-party agent phone: baresip (Debian's 1.0.0)
answers the engine's offer as alice's phone and transfers the caller with
its own REFER (ctrl_tcp ``transfer``) to the sales queue; the caller, a
simulated phone, then hears bob's tone, not alice's.

Our simulated phones share pjsip with the engine, so they would not show a
REFER the engine reads differently from another stack's (Refer-To forms,
the implicit subscription, when the referrer hangs up)."""
from __future__ import annotations

import time

import pytest

import baresip as baresip_mod
from engine_proc import Engine
from sipua import UA
from test_call_operations import ALICE, BOB, rows, setup
from test_call_races import Scene, caller_hears_bob
from test_queue_behaviour import wait_until

pytestmark = [pytest.mark.sip, pytest.mark.skipif(
    not baresip_mod.available(), reason="baresip is not installed (Debian baresip-core)")]


def test_baresip_agent_transfers_the_caller_to_another_queue(ports, workdir, prompts_dir):
    sip_port = ports.block(2)          # baresip takes sip_port + 1 for SIP/TLS
    ctrl_port = ports()
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller, \
            baresip_mod.Baresip(workdir / "baresip", sip_port, ctrl_port, user="alice",
                                tone=ALICE, lifetime=60, auto_answer=True) as alice:
        alice.start()
        phones.request("auto_answer", user="bob", after=0.3, tone=BOB)
        cfg = setup(ports, workdir, prompts_dir, phones)
        cfg["agents"]["alice"]["uri"] = f"sip:alice@127.0.0.1:{sip_port}"
        rec = str(workdir / "caller.wav")
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"), tone=440.0, record=rec)
            start = caller.wait_event({"ev": "media", "call": "c1"})["at"]
            alice.wait_event("CALL_ESTABLISHED", 15)
            calls = wait_until(lambda: [c for c in engine_calls(engine)
                                        if c["agent"] == "alice"], 5, "the conversation")
            call_id = calls[0]["call_id"]
            time.sleep(1.0)
            alice.transfer(f"sip:sales@127.0.0.1:{engine.sip_port}")
            alice.wait_event("CALL_CLOSED", 10)      # baresip hangs up after the NOTIFY
            caller_hears_bob(Scene(phones, caller, engine, call_id, start, "", rec))
            wait_until(lambda: ("TRANSFER", "alice", "blind") in
                       [(k, a, r) for k, _, a, r, _, _ in rows(engine, call_id)], 5,
                       "the TRANSFER row")
            assert engine.metric("sipacd_transfers_total", kind="blind", target="queue",
                                 result="done") == 1
            engine.assert_settled()


def engine_calls(engine) -> list[dict]:
    from test_queue_behaviour import api
    status, body = api(engine, "GET", "/api/calls")
    return body["calls"] if status == 200 else []
