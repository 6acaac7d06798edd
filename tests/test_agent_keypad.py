"""Agents on the phone keypad, over real SIP on 127.0.0.1: a simulated phone
dials a feature number at the engine and keys in (RFC 2833) agent number,
PIN and reason code; the HTTP API, the event log and the metrics show
what the ACD did."""
from __future__ import annotations

import sqlite3
import time

import pytest

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import agent_state, api, config, wait_until

from sipagent.store.eventlog_schema import event_log_path

pytestmark = pytest.mark.sip

PIN = "4711"
FEATURES = {"pin_attempts": 3, "lockout": 600, "digit_timeout": 4,
            "pause_reasons": {"1": "lunch", "2": "training"}}


def keypad_config(ports, workdir, prompts_dir, alice: UA, **alice_keys):
    agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"], "number": "1001",
                        "pin": PIN, **alice_keys}}
    return config(ports, workdir, prompts_dir, agents, {"support": {"ring_timeout": 5}},
                  features=FEATURES)


def dial(phone: UA, engine: Engine, number: str, digits: str, call: str,
         from_user: str = "desk") -> None:
    """Dial a feature number, key ``digits`` ahead of the prompts, and wait
    until the engine has said its piece and hung up."""
    phone.request("call", call=call, to=engine.number(number), from_user=from_user)
    phone.wait_state(call, "CONFIRMED")
    if digits:
        time.sleep(0.5)
        phone.request("dtmf", call=call, digits=digits)
    phone.wait_state(call, "DISCONNECTED", timeout=20)


def agent_row(engine: Engine) -> dict:
    status, body = api(engine, "GET", "/api/agents")
    assert status == 200, body
    return next(a for a in body["agents"] if a["agent"] == "alice")


def agent_events(engine: Engine) -> list[tuple[str, str | None]]:
    """alice's rows in the engine's event log (written a moment after the fact)."""
    with sqlite3.connect(event_log_path(engine.workdir / "data")) as db:
        return db.execute("SELECT kind, reason FROM event WHERE agent = 'alice' "
                          "ORDER BY id").fetchall()


def keypad_count(engine: Engine, command: str, result: str) -> float:
    return engine.metric("sipacd_agent_keypad_commands_total", command=command, result=result)


def test_login_from_another_phone_then_a_queued_caller_rings_the_agent(ports, workdir,
                                                                       prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="desk") as desk, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        cfg = keypad_config(ports, workdir, prompts_dir, alice, auto_login=False)
        with Engine(workdir, cfg) as engine:
            assert agent_state(engine, "alice") == "logged_out"
            dial(desk, engine, "*71", f"1001#{PIN}#", "k1")
            assert agent_state(engine, "alice") == "available"
            assert keypad_count(engine, "login", "ok") == 1
            caller.request("call", call="c1", to=engine.number("100"))
            incoming = alice.wait_event({"ev": "incoming"}, timeout=15)
            assert incoming["user"] == "alice"
            wait_until(lambda: ("LOGIN", None) in agent_events(engine), 5, "the LOGIN row")


def test_pause_with_a_reason_ready_and_logout(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="desk") as desk:
        with Engine(workdir, keypad_config(ports, workdir, prompts_dir, alice)) as engine:
            assert agent_state(engine, "alice") == "available"
            # From alice's own phone: no number, no PIN; reason code 2.
            dial(alice, engine, "*73", "2", "p1", from_user="alice")
            row = agent_row(engine)
            assert (row["state"], row["pause_reason"]) == ("paused", "training")
            wait_until(lambda: ("PAUSE", "training") in agent_events(engine), 5, "the PAUSE row")
            dial(alice, engine, "*74", "", "r1", from_user="alice")
            assert agent_state(engine, "alice") == "available"
            wait_until(lambda: ("UNPAUSE", None) in agent_events(engine), 5, "the UNPAUSE row")
            # From another phone every command needs number and PIN.
            dial(desk, engine, "*72", f"1001#{PIN}#", "o1")
            assert agent_state(engine, "alice") == "logged_out"
            # Pause while logged out: explained, refused, nothing changes.
            dial(desk, engine, "*73", f"1001#{PIN}#1", "p2")
            row = agent_row(engine)
            assert (row["state"], row["pause_reason"]) == ("logged_out", None)
            assert keypad_count(engine, "pause", "refused") == 1
            assert keypad_count(engine, "pause", "ok") == 1
            assert [k for k, _ in agent_events(engine)][-1] == "LOGOUT"


def test_wrap_up_done_ends_the_wrap_up_early(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", after=0.2, code=200, hangup_after=1.0)
        cfg = keypad_config(ports, workdir, prompts_dir, alice, wrap_up=60)
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            first = alice.wait_event({"ev": "incoming"}, timeout=15)
            alice.wait_state(first["call"], "DISCONNECTED", timeout=10)
            wait_until(lambda: agent_state(engine, "alice") == "wrap_up", 3, "wrap-up")
            dial(alice, engine, "*75", "", "w1", from_user="alice")
            assert agent_state(engine, "alice") == "available"
            assert keypad_count(engine, "end_wrap_up", "ok") == 1
            wait_until(lambda: ("WRAPUP_END", None) in agent_events(engine), 5, "the row")


def test_wrong_pins_lock_the_keypad_login_across_a_restart(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="desk") as desk:
        cfg = keypad_config(ports, workdir, prompts_dir, alice, auto_login=False)
        with Engine(workdir, cfg) as engine:
            # The third wrong PIN locks: the call ends there.
            dial(desk, engine, "*71", "1001#1111#1001#2222#1001#3333#", "k1")
            assert keypad_count(engine, "login", "locked") == 1
            assert keypad_count(engine, "login", "wrong_pin") == 0
            assert agent_state(engine, "alice") == "logged_out"
        with Engine(workdir, cfg) as engine:
            # The right PIN, after a restart, from alice's own phone: still locked.
            dial(alice, engine, "*71", f"{PIN}#", "k2", from_user="alice")
            assert keypad_count(engine, "login", "locked") == 1
            assert keypad_count(engine, "login", "ok") == 0
            assert agent_state(engine, "alice") == "logged_out"
