"""How callbacks and abandons are accounted, over real SIP: one offered call
and one outcome per customer request through its retries, one call record
with the customer's number and the last attempt's result, agent events in
the order they happened, and the hang-up side of an abandon."""
from __future__ import annotations

import sqlite3
import time

import pytest

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import api, config

pytestmark = pytest.mark.sip

OUTCOMES = ("CONNECT", "ABANDON", "EXIT")


def event_log(workdir) -> sqlite3.Connection:
    return sqlite3.connect(workdir / "data" / "events.sqlite3")


def outcomes_of(db, call_id: str) -> list[tuple]:
    return db.execute("SELECT kind, reason FROM event WHERE call_id = ? AND kind IN"
                      " ('CONNECT', 'ABANDON', 'EXIT') ORDER BY id", (call_id,)).fetchall()


def assert_wrap_ups_pair(db, agent: str) -> None:
    """Each WRAPUP_END of the agent closes a WRAPUP_START before it."""
    open_ = 0
    for (kind,) in db.execute("SELECT kind FROM event WHERE agent = ? AND kind IN"
                              " ('WRAPUP_START', 'WRAPUP_END') ORDER BY id", (agent,)):
        open_ += 1 if kind == "WRAPUP_START" else -1
        assert open_ in (0, 1), f"{agent}: WRAPUP_END without WRAPUP_START"


def callback_setup(alice, customer, **queue):
    """Agent alice (logged out until the test logs her in) and a queue that
    calls back at the customer UA."""
    agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"], "auto_login": False}}
    uri = f"sip:{{number}}@127.0.0.1:{customer.port}"
    return agents, {"support": {"callback_uri": uri, **queue}}


def press_callback_key(customer, engine, number: str) -> None:
    """The customer calls, waits in line, presses 5 and is let go."""
    customer.request("call", call="c1", to=engine.number("100"), from_user=number)
    customer.wait_state("c1", "CONFIRMED")
    engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
    customer.request("dtmf", call="c1", digits="5")
    customer.wait_state("c1", "DISCONNECTED", timeout=20)


def test_web_callback_retried_is_one_request(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        customer.request("auto_answer", user="*", code=486)      # busy the first time
        alice.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        agents, queues = callback_setup(alice, customer, wrap_up=1, callback_retry_delay=1,
                                        callback_attempts=3)
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            status, body = api(engine, "POST", "/api/callbacks",
                               {"number": "5550199", "queue": "support"})
            assert status == 202, body
            request = body["callback"]
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            # The agent logs in with the request waiting: it is offered at once.
            assert api(engine, "POST", "/api/agents/alice/login")[0] == 200
            customer.wait_event({"ev": "incoming", "user": "5550199"}, timeout=15)
            customer.request("auto_answer", user="*", after=0.2, code=200, tone=440)
            back = customer.wait_event({"ev": "incoming", "user": "5550199"}, timeout=20)
            customer.wait_state(back["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="connected") == 1
            time.sleep(0.5)
            customer.request("hangup", call=back["call"])
            engine.wait_metric("sipacd_queue_handle_time_seconds_count", 1, queue="support")
            time.sleep(1.5)                                      # the 1 s wrap-up ends
            offered = engine.metric("sipacd_queue_offered_total", queue="support")
            answered = engine.metric("sipacd_queue_answered_total", queue="support")
            assert engine.stop() == 0
    assert (offered, answered) == (1, 1)                         # one customer, one call
    db = event_log(workdir)
    assert db.execute("SELECT call_id, caller, outcome FROM call_record").fetchall() == [
        (request, "5550199", "answered")]
    assert db.execute("SELECT COUNT(*) FROM event WHERE kind = 'ENTER'").fetchone() == (1,)
    assert [k for k, _ in outcomes_of(db, request)] == ["CONNECT"]
    assert db.execute("SELECT COUNT(*) FROM event WHERE kind = 'CALLBACK_NO_ANSWER'"
                      " AND call_id = ?", (request,)).fetchone() == (1,)
    login, offer = (db.execute("SELECT MIN(id) FROM event WHERE agent = 'alice' AND kind = ?",
                               (kind,)).fetchone()[0] for kind in ("LOGIN", "OFFER"))
    assert login < offer, "the agent's OFFER was logged before its LOGIN"
    assert_wrap_ups_pair(db, "alice")


def test_callback_key_counts_one_outcome(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        customer.request("auto_answer", user="*", after=0.3, code=200, tone=440)
        alice.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        agents, queues = callback_setup(alice, customer, callback_key="5")
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            press_callback_key(customer, engine, "5550123")
            api(engine, "POST", "/api/agents/alice/login")
            back = customer.wait_event({"ev": "incoming", "user": "5550123"}, timeout=15)
            customer.wait_state(back["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="connected") == 1
            counts = {name: engine.metric(f"sipacd_queue_{name}_total", queue="support")
                      for name in ("offered", "answered", "abandoned")}
            exited = engine.metric("sipacd_queue_exited_total", queue="support",
                                   reason="callback")
            assert engine.stop() == 0
    # The key press is the request's outcome (KPI.md: exited, callback requested).
    assert counts == {"offered": 1, "answered": 0, "abandoned": 0} and exited == 1
    db = event_log(workdir)
    [(call_id, caller, outcome)] = db.execute(
        "SELECT call_id, caller, outcome FROM call_record").fetchall()
    assert (caller, outcome) == ("5550123", "answered")        # the last attempt's result
    assert outcomes_of(db, call_id) == [("EXIT", "callback")]


def test_an_abandon_records_the_caller_hung_up(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="caller") as caller:
        with Engine(workdir, config(ports, workdir, prompts_dir, {}, {"support": {}})) as engine:
            caller.request("call", call="c1", to=engine.number("100"), from_user="5550111")
            caller.wait_state("c1", "CONFIRMED")
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            time.sleep(1.0)
            caller.request("hangup", call="c1")
            assert engine.wait_metric("sipacd_queue_abandoned_total", 1, queue="support") == 1
            assert engine.stop() == 0
    db = event_log(workdir)
    assert db.execute("SELECT caller, outcome, hangup_side FROM call_record").fetchall() == [
        ("5550111", "abandoned", "caller")]
