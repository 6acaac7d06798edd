"""Click-to-call over real SIP on 127.0.0.1: the engine rings the agent's
phone, then dials the number through the "trunk" (a simulated phone that
answers every number) with the configured caller id, and bridges the two.
Each phone plays its own tone and records (the agent 1000 Hz, the customer
1800 Hz), so a recording says who was heard.

* the agent's phone rings first, the customer's only once the agent
  answered, with the caller id in From; both hear each other; meanwhile a
  queued caller is not offered to the agent (busy), and after the hang-up
  the agent wraps up, then gets that caller; CDR, event rows, metric;
* call restrictions: 403 naming the rule, and no phone rings; an agent
  token dials only for its own agent;
* the agent does not answer: nothing is dialled, the agent is available;
* a paused agent dials a busy number: wrap-up, then paused again.
"""
from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from engine_proc import Engine
from simphones.tones import read_wav, tone_levels, write_tone
from sipua import UA
from test_queue_behaviour import AGENT_TOKEN, agent_state, api, config, wait_until

from sipagent.store.eventlog import event_log_path

pytestmark = pytest.mark.sip

ALICE, CUSTOMER, CALLER, MUSIC = 1000.0, 1800.0, 440.0, 300.0
CALLER_ID = "+4930123456"
NUMBER = "0301234567"


def setup(ports, workdir, prompts_dir, phones, trunk_port: int, **outbound):
    agents = {"alice": {"uri": phones.uri("alice"), "queues": ["support"]}}
    music = workdir / "music.wav"
    write_tone(music, MUSIC, 2.0)
    queues = {"support": {"wrap_up": 3, "moh": str(music)}}
    cfg = config(ports, workdir, prompts_dir, agents, queues)
    cfg["outbound"] = {"uri": f"sip:{{number}}@127.0.0.1:{trunk_port}",
                       "caller_id": CALLER_ID, "caller_name": "ACME Support",
                       "ring_timeout": 5, "agent_ring_timeout": 3,
                       "restrictions": {"no_premium": {"deny": ["^0900"]},
                                        "no_international": {"deny": ["^00", "^\\+"]}},
                       "apply": {"everyone": ["no_premium"],
                                 "roles": {"agent": ["no_international"]}},
                       **outbound}
    return cfg


def query(engine, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(event_log_path(engine.workdir / "data").resolve().as_uri()
                           + "?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def agent_rows(engine, call_id: str) -> list[tuple]:
    return query(engine, "SELECT kind, reason FROM event WHERE call_id = ? AND agent = 'alice'"
                 " ORDER BY id", call_id)


def heard(path: str, freq: float, start: float, t0: float, t1: float) -> float:
    """Median level of ``freq`` in the recording between monotonic t0 and t1."""
    samples, rate = read_wav(path)
    levels = tone_levels(samples, freq, rate)
    return float(np.median(levels[int((t0 - start) * 100):int((t1 - start) * 100)]))


def outbound_metric(engine, result: str) -> float:
    return engine.metric("sipacd_outbound_calls_total", result=result)


def test_agent_first_then_the_number_with_the_caller_id(ports, workdir, prompts_dir):
    trunk_port = ports()
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(trunk_port, log_dir=workdir, name="trunk") as trunk, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", after=0.5, tone=ALICE,
                       record=str(workdir / "alice-{call}.wav"))
        trunk.request("auto_answer", user=NUMBER, after=0.5, tone=CUSTOMER,
                      record=str(workdir / "customer.wav"))
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones, trunk_port)) as engine:
            status, body = api(engine, "POST", "/api/agents/alice/dial", {"number": NUMBER})
            assert status == 202, body
            call_id = body["call_id"]
            ring = phones.wait_event({"ev": "incoming", "user": "alice"})
            assert ring["headers"]["X-Sipacd-Outbound"] == NUMBER
            assert not trunk.events({"ev": "incoming"}), "the number rang before the agent"
            assert agent_state(engine, "alice") == "busy"      # from the first ring
            phones.wait_state(ring["call"], "CONFIRMED")
            out = trunk.wait_event({"ev": "incoming", "user": NUMBER})
            assert out["from_user"] == CALLER_ID and '"ACME Support"' in out["from"], out
            start = trunk.wait_event({"ev": "media", "call": out["call"]})["at"]
            agents = api(engine, "GET", "/api/agents")[1]["agents"]
            assert agents[0]["state"] == "busy"
            assert agents[0]["call"]["call_id"] == call_id
            assert agents[0]["call"]["direction"] == "outbound"

            # A caller queues meanwhile: alice is on the phone, nothing is offered.
            caller.request("call", call="c1", to=engine.number("100"), tone=CALLER)
            caller.wait_state("c1", "CONFIRMED")
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            time.sleep(2.5)
            assert len(phones.events({"ev": "incoming"})) == 1
            wait_until(lambda: api(engine, "GET", "/api/agents")[1]["agents"][0]["call"]
                       ["stage"] == "talking", 5, "talking")
            status, text = api(engine, "POST", "/api/agents/alice/dial", {"number": NUMBER})
            assert status == 409 and "busy" in text, (status, text)
            # Hold from the agent's phone: the customer hears the queue's music.
            marks = [time.monotonic()]
            phones.request("hold", call=ring["call"])
            time.sleep(2.0)
            marks.append(time.monotonic())
            phones.request("unhold", call=ring["call"])
            time.sleep(2.0)
            marks.append(time.monotonic())

            trunk.request("hangup", call=out["call"])
            trunk.wait_event({"ev": "recorded", "call": out["call"]})
            phones.wait_state(ring["call"], "DISCONNECTED")
            rec = phones.wait_event({"ev": "recorded", "call": ring["call"]})
            wait_until(lambda: agent_state(engine, "alice") == "wrap_up", 5, "wrap-up")
            customer = str(workdir / "customer.wav")
            spans = [(start + 0.5, marks[0]), (marks[0] + 0.5, marks[1]),
                     (marks[1] + 0.5, marks[2])]
            levels = [(heard(customer, ALICE, start, a, b) > 0.05,
                       heard(customer, MUSIC, start, a, b) > 0.05) for a, b in spans]
            assert levels == [(True, False), (False, True), (True, False)], levels
            agent_start = phones.events({"ev": "media", "call": ring["call"]})[0]["at"]
            assert heard(rec["path"], CUSTOMER, agent_start, start + 0.5, marks[0]) > 0.05
            # After the wrap-up (3 s) the waiting caller is offered to alice.
            second = phones.wait_event(lambda e: e.get("ev") == "incoming"
                                       and e["call"] != ring["call"], timeout=8)
            assert second["headers"]["X-Sipacd-Queue"] == "support"

            assert outbound_metric(engine, "answered") == 1
            assert agent_rows(engine, call_id) == [
                ("OUTBOUND_START", None), ("OUTBOUND_END", "answered"), ("WRAPUP_START", None)]
            # The core's wrap-up end is logged as after a queue call (no call id).
            def kinds():
                return [k for k, in query(engine, "SELECT kind FROM event WHERE agent = 'alice'"
                                          " AND (kind LIKE 'WRAPUP%' OR kind LIKE 'OUTBOUND%')"
                                          " ORDER BY id")]
            wait_until(lambda: len(kinds()) >= 4, 5, "the wrap-up's end logged")
            assert kinds()[:4] == ["OUTBOUND_START", "OUTBOUND_END", "WRAPUP_START",
                                   "WRAPUP_END"], kinds()
            cdr = query(engine, "SELECT caller, called, agent, queue, outcome, talk, wrap_up,"
                        " hangup_side FROM call_record WHERE call_id = ?", call_id)
            assert len(cdr) == 1, cdr
            caller_id, called, agent, queue, outcome, talk, wrap, side = cdr[0]
            assert (caller_id, called, agent, queue, outcome, wrap, side) == (
                CALLER_ID, NUMBER, "alice", None, "outbound", 3.0, "caller")
            assert talk > 2.0


def test_refused_numbers_and_an_agent_who_does_not_answer(ports, workdir, prompts_dir):
    trunk_port = ports()
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(trunk_port, log_dir=workdir, name="trunk") as trunk:
        phones.request("auto_answer", user="alice", code=None)        # rings forever
        trunk.request("auto_answer", user="*", after=0.2, tone=CUSTOMER)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones, trunk_port)) as engine:
            status, text = api(engine, "POST", "/api/agents/alice/dial", {"number": "09001234"})
            assert status == 403 and "'no_premium'" in text, (status, text)
            # The agent's own token: its role's rules apply too.
            status, text = api(engine, "POST", "/api/agents/alice/dial", {"number": "0044207"},
                               token=AGENT_TOKEN)
            assert status == 403 and "'no_international'" in text, (status, text)
            status, text = api(engine, "POST", "/api/agents/bob/dial", {"number": NUMBER},
                               token=AGENT_TOKEN)
            assert status == 403 and "own agent" in text
            status, text = api(engine, "POST", "/api/agents/alice/dial", {"number": "12ab"})
            assert status == 400 and text.startswith("number:"), text
            time.sleep(1.0)
            assert not phones.events({"ev": "incoming"}) and not trunk.events({"ev": "incoming"})
            assert outbound_metric(engine, "refused") == 2
            assert agent_state(engine, "alice") == "available"

            # Allowed for a supervisor; alice's phone rings out: nothing is dialled.
            status, body = api(engine, "POST", "/api/agents/alice/dial", {"number": "0044207"})
            assert status == 202, body
            ring = phones.wait_event({"ev": "incoming", "user": "alice"})
            assert agent_state(engine, "alice") == "busy"
            phones.wait_state(ring["call"], "DISCONNECTED", timeout=8)
            wait_until(lambda: agent_state(engine, "alice") == "available", 5, "available")
            assert not trunk.events({"ev": "incoming"})
            assert engine.wait_metric("sipacd_outbound_calls_total", 1,
                                      result="agent_no_answer") == 1
            wait_until(lambda: len(agent_rows(engine, body["call_id"])) == 2, 5, "rows")
            assert agent_rows(engine, body["call_id"]) == [
                ("OUTBOUND_START", None), ("OUTBOUND_END", "agent_no_answer")]


def test_paused_agent_dials_a_busy_number_and_is_paused_again(ports, workdir, prompts_dir):
    trunk_port = ports()
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(trunk_port, log_dir=workdir, name="trunk") as trunk:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        trunk.request("auto_answer", user="*", after=0.3, code=486)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones, trunk_port)) as engine:
            status, body = api(engine, "POST", "/api/agents/alice/pause", {"reason": "lunch"})
            assert status == 200 and body["state"] == "paused", body
            status, body = api(engine, "POST", "/api/agents/alice/dial", {"number": NUMBER})
            assert status == 202, body
            ring = phones.wait_event({"ev": "incoming", "user": "alice"})
            trunk.wait_event({"ev": "incoming", "user": NUMBER})
            phones.wait_state(ring["call"], "DISCONNECTED", timeout=8)   # hung up for busy
            wait_until(lambda: agent_state(engine, "alice") == "wrap_up", 5, "wrap-up")
            assert engine.wait_metric("sipacd_outbound_calls_total", 1, result="busy") == 1
            wait_until(lambda: agent_state(engine, "alice") == "paused", 6, "paused again")
            row = api(engine, "GET", "/api/agents")[1]["agents"][0]
            assert row["pause_reason"] == "lunch" and row["call"] is None
            outcome = query(engine, "SELECT outcome FROM call_record WHERE call_id = ?",
                            body["call_id"])
            assert outcome == [("outbound_busy",)]
