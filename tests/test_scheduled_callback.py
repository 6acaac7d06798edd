"""Scheduled, durable and caller-first callbacks over real SIP on 127.0.0.1:
a waiting caller picks a time slot by keypad; an API callback with a time
is dialled only when due; a pending callback survives an engine restart
with one outcome; caller-first rings the customer, then the agent."""
from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from engine_proc import Engine
from simphones.tones import dominant_frequency
from sipua import UA
from test_callback_accounting import outcomes_of, press_callback_key
from test_queue_behaviour import AGENT_TOKEN, api, config, logged, wait_until

pytestmark = pytest.mark.sip

ALWAYS = {"always": {"timezone": "UTC", "hours": {"daily": "00:00-24:00"}}}


def setup(alice, customer, *, auto_login=False, **queue):
    agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"],
                        "auto_login": auto_login}}
    uri = f"sip:{{number}}@127.0.0.1:{customer.port}"
    return agents, {"support": {"callback_uri": uri, **queue}}


def callbacks_table(workdir) -> list[tuple]:
    db = sqlite3.connect(workdir / "data" / "callbacks.sqlite3")
    try:
        return db.execute("SELECT call_id, number, due, scheduled, status, result"
                          " FROM callback ORDER BY entered").fetchall()
    finally:
        db.close()


def events_db(workdir) -> sqlite3.Connection:
    return sqlite3.connect(workdir / "data" / "events.sqlite3")


def pending(engine) -> list[dict]:
    status, body = api(engine, "GET", "/api/callbacks")
    assert status == 200, body
    return body["callbacks"]


def test_caller_picks_a_slot_by_keypad(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        alice.request("auto_answer", user="*", code=200)
        agents, queues = setup(alice, customer, callback_key="5", callback_slots=3,
                               callback_slot_minutes=60, callback_slot_lead=15,
                               callback_schedule="always")
        cfg = config(ports, workdir, prompts_dir, agents, queues, schedules=ALWAYS)
        with Engine(workdir, cfg) as engine:
            customer.request("call", call="c1", to=engine.number("100"), from_user="5550123")
            customer.wait_state("c1", "CONFIRMED")
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            customer.request("dtmf", call="c1", digits="5")
            [menu] = wait_until(lambda: logged(engine, "callback time menu"), 15, "the menu")
            customer.request("dtmf", call="c1", digits="3")          # the second slot
            customer.wait_state("c1", "DISCONNECTED", timeout=20)    # confirmation, bye
            [chosen] = wait_until(lambda: logged(engine, "callback time chosen"), 5, "choice")
            # What the caller heard: 1 = as soon as possible, then three hourly slots.
            offered = [datetime.fromisoformat(s) for s in menu["slots"]]
            assert len(offered) == 3 and all(b - a == timedelta(hours=1)
                                             for a, b in zip(offered, offered[1:]))
            now = datetime.now(timezone.utc)
            assert timedelta(minutes=15) < offered[0] - now <= timedelta(minutes=76)
            assert offered[0].minute == 0 and chosen["key"] == "3"
            [job] = pending(engine)
            assert job["scheduled"] is True and job["number"] == "5550123"
            assert datetime.fromisoformat(job["at"]) == offered[1]
            assert job["stage"] == "scheduled"
            # Held out of the line until then: a ready agent is not rung for it.
            api(engine, "POST", "/api/agents/alice/login")
            time.sleep(1.5)
            assert alice.events({"ev": "incoming"}) == []
            assert engine.metric("sipacd_queue_waiting_calls", queue="support") == 0
            assert engine.stop() == 0
    [(call_id, number, due, scheduled, status, _)] = callbacks_table(workdir)
    assert (number, scheduled, status) == ("5550123", 1, "pending")
    assert due == offered[1].timestamp()
    assert outcomes_of(events_db(workdir), call_id) == [("EXIT", "callback")]


def test_api_callback_is_dialled_when_due(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        alice.request("auto_answer", user="*", after=0.2, code=200)
        customer.request("auto_answer", user="*", after=0.2, code=200)
        agents, queues = setup(alice, customer, auto_login=True)
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            due = datetime.fromtimestamp(int(time.time()) + 5, timezone.utc)
            status, body = api(engine, "POST", "/api/callbacks",
                               {"number": "5550188", "queue": "support",
                                "at": due.isoformat()})
            assert status == 202, body
            assert body["at"] == due.isoformat() and body["scheduled"] is True
            assert [j["callback"] for j in pending(engine)] == [body["callback"]]
            assert api(engine, "GET", "/api/callbacks", token=AGENT_TOKEN)[0] == 403
            rung = alice.wait_event({"ev": "incoming"}, timeout=15)
            rung_at = time.time()
            assert rung["headers"]["X-Sipacd-Call-Id"] == body["callback"]
            back = customer.wait_event({"ev": "incoming", "user": "5550188"}, timeout=15)
            customer.wait_state(back["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="connected") == 1
            assert pending(engine) == []
            assert engine.stop() == 0
    # Not before its time (the agent's INVITE is read here a little after it left).
    assert rung_at >= due.timestamp(), (rung_at, due.timestamp())
    [(_, _, _, _, status, result)] = callbacks_table(workdir)
    assert (status, result) == ("done", "answered")


def test_pending_callbacks_survive_a_restart(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        customer.request("auto_answer", user="*", after=0.2, code=200, hangup_after=1.0)
        alice.request("auto_answer", user="*", after=0.2, code=200)
        agents, queues = setup(alice, customer, callback_key="5")
        cfg = config(ports, workdir, prompts_dir, agents, queues)
        with Engine(workdir, cfg) as engine:
            # No agent logged in: the key-pressed request waits in line ...
            press_callback_key(customer, engine, "5550123")
            # ... and a web request is due only after the restart.
            due = datetime.fromtimestamp(int(time.time()) + 8, timezone.utc)
            status, web = api(engine, "POST", "/api/callbacks",
                              {"number": "5550177", "queue": "support", "at": due.isoformat()})
            assert status == 202, web
            assert {j["stage"] for j in pending(engine)} == {"waiting", "scheduled"}
            assert engine.stop() == 0
        assert [row[4] for row in callbacks_table(workdir)] == ["pending", "pending"]
        with Engine(workdir, cfg) as engine:
            assert len(pending(engine)) == 2
            api(engine, "POST", "/api/agents/alice/login")
            first = customer.wait_event({"ev": "incoming", "user": "5550123"}, timeout=15)
            customer.wait_state(first["call"], "CONFIRMED")
            second = customer.wait_event({"ev": "incoming", "user": "5550177"}, timeout=30)
            assert time.time() >= due.timestamp()
            customer.wait_state(second["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 2, queue="support",
                                      result="connected") == 2
            wait_until(lambda: pending(engine) == [], 10, "both callbacks done")
            assert engine.stop() == 0
    rows = callbacks_table(workdir)
    assert [(r[1], r[4], r[5]) for r in rows] == [("5550123", "done", "answered"),
                                                 ("5550177", "done", "answered")]
    db = events_db(workdir)
    key_id, web_id = rows[0][0], web["callback"]
    # One outcome each: the key press (EXIT callback, before the restart); the
    # web request joined after it (one ENTER) and was answered (CONNECT).
    assert outcomes_of(db, key_id) == [("EXIT", "callback")]
    assert outcomes_of(db, web_id) == [("CONNECT", None)]
    assert db.execute("SELECT COUNT(*) FROM event WHERE kind = 'ENTER' AND call_id = ?",
                      (web_id,)).fetchone() == (1,)


def test_caller_first_rings_the_customer_then_the_agent(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        alice.request("auto_answer", user="*", after=0.2, code=200, tone=880,
                      record=str(workdir / "alice-{call}.wav"))
        customer.request("auto_answer", user="*", after=0.3, code=200, tone=440)
        agents, queues = setup(alice, customer, auto_login=True, callback_mode="caller_first")
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            status, body = api(engine, "POST", "/api/callbacks",
                               {"number": "5550166", "queue": "support"})
            assert status == 202, body
            back = customer.wait_event({"ev": "incoming", "user": "5550166"}, timeout=15)
            assert alice.events({"ev": "incoming"}) == []          # the customer first
            customer.wait_state(back["call"], "CONFIRMED")
            rung = alice.wait_event({"ev": "incoming"}, timeout=30)
            assert rung["headers"]["X-Sipacd-Call-Id"] == body["callback"]
            assert rung["headers"]["X-Sipacd-Var-callback"] == "5550166"
            alice.wait_state(rung["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_answered_total", 1, queue="support") == 1
            time.sleep(1.5)                                 # the two talk
            customer.request("hangup", call=back["call"])
            alice.wait_state(rung["call"], "DISCONNECTED")
            recorded = alice.wait_event({"ev": "recorded", "call": rung["call"]}, timeout=10)
            # The agent heard the customer's 440 Hz: the two legs were bridged.
            assert abs(dominant_frequency(recorded["path"]) - 440) < 10
            assert engine.stop() == 0
    db = events_db(workdir)
    call_id = body["callback"]
    assert outcomes_of(db, call_id) == [("CONNECT", None)]
    kinds = [k for (k,) in db.execute("SELECT kind FROM event WHERE call_id = ? ORDER BY id",
                                      (call_id,))]
    assert kinds.index("CALLBACK_CONNECTED") < kinds.index("ENTER") < kinds.index("CONNECT")
    assert db.execute("SELECT agent FROM event WHERE kind = 'CONNECT' AND call_id = ?",
                      (call_id,)).fetchone() == ("alice",)
    [(_, _, _, _, status, result)] = callbacks_table(workdir)
    assert (status, result) == ("done", "answered")
