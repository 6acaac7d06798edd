"""Call pickup over real SIP on 127.0.0.1, judged by what each phone hears.

A caller (440 Hz) rings alice (her phone rings and never answers); bob
(1500 Hz) or carol (2000 Hz) takes the call: the group pickup code from
his own phone, the directed code with alice's number (dialled in one go or
keyed in after), or the HTTP API, which rings his phone first.  Two agents
dialling the code at once: exactly one gets the caller, the other is told
"nothing to pick up".  After every test no agent is left busy or ringing
once all phones hung up.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest

from engine_proc import Engine
from simphones.tones import rms
from sipua import UA
from test_call_operations import hears
from test_queue_behaviour import AGENT_TOKEN, agent_state, api, config, wait_until

from sipagent.store.eventlog_schema import event_log_path

pytestmark = pytest.mark.sip

CALLER, BOB, CAROL = 440.0, 1500.0, 2000.0
# A regex route for the directed pickup dialled in one go (examples/sipacd.toml).
DIRECTED_ROUTE = {"number": r"^\*\*[0-9]+$", "match": "regex",
                  "flow": "agent_keypad:directed_pickup"}


@contextmanager
def phones_and_caller(ports, workdir):
    """The agents' phones (alice's rings forever) and a caller."""
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", code=None)
        yield phones, caller


def pickup_config(ports, workdir, prompts_dir, phones: UA):
    agents = {"alice": {"uri": phones.uri("alice"), "queues": ["support"], "number": "1001"},
              "bob": {"uri": phones.uri("bob"), "queues": ["support"], "number": "1002"},
              "carol": {"uri": phones.uri("carol"), "queues": ["support"], "number": "1003"}}
    # Linear: alice (first in the file) rings; a long ring timeout keeps it
    # ringing at her for the whole test.
    cfg = config(ports, workdir, prompts_dir, agents,
                 {"support": {"strategy": "linear", "ring_timeout": 60, "wrap_up": 0}},
                 features={"digit_timeout": 4})
    cfg["routes"].append(DIRECTED_ROUTE)
    return cfg


def ring_alice(caller: UA, phones: UA, engine: Engine, record: str) -> tuple[str, str, float]:
    """A caller in, alice's phone ringing: (queue call id, alice's call, caller media start)."""
    caller.request("call", call="c1", to=engine.number("100"), tone=CALLER, record=record)
    media = caller.wait_event({"ev": "media", "call": "c1"})
    inc = phones.wait_event({"ev": "incoming", "user": "alice"})
    wait_until(lambda: agent_state(engine, "alice") == "offered", 5, "alice ringing")
    return inc["headers"]["X-Sipacd-Call-Id"], inc["call"], media["at"]


def pick_up(phones: UA, engine: Engine, number: str, call: str, user: str, tone: float,
            record: str) -> None:
    phones.request("call", call=call, to=engine.number(number), from_user=user, tone=tone,
                   record=record)


def rows(engine: Engine, call_id: str) -> list[tuple]:
    with sqlite3.connect(event_log_path(engine.workdir / "data")) as db:
        return db.execute("SELECT kind, agent, reason FROM event WHERE call_id = ? "
                          "AND kind IN ('OFFER', 'RINGNOANSWER', 'CONNECT') ORDER BY id",
                          (call_id,)).fetchall()


def rows_end(engine: Engine, call_id: str, tail: list[tuple]) -> list[tuple]:
    """The call's last rows once they are ``tail`` (the log is written a moment
    after the fact), or as they are after 5 s."""
    try:
        wait_until(lambda: rows(engine, call_id)[-len(tail):] == tail, 5, "the rows")
    except AssertionError:
        pass
    return rows(engine, call_id)[-len(tail):]


def pickups(engine: Engine, result: str) -> float:
    return engine.metric("sipacd_pickups_total", result=result)


def states(engine: Engine) -> dict[str, str]:
    status, body = api(engine, "GET", "/api/agents")
    assert status == 200, body
    return {a["agent"]: a["state"] for a in body["agents"]}


def no_agent_stuck(engine: Engine) -> None:
    """With every phone hung up: no conversation, nobody busy or ringing."""
    wait_until(lambda: not api(engine, "GET", "/api/calls")[1]["calls"], 10, "no calls")
    wait_until(lambda: set(states(engine).values()) <= {"available", "wrap_up"}, 10,
               f"agents free (now {states(engine)})")


def talk_and_hang_up(caller: UA, start: float, rec: str, picker_rec: str, picker_tone: float,
                     picker_call: str, phones: UA) -> None:
    """Two seconds of talk, the caller hangs up: each heard the other."""
    t0 = time.monotonic()
    time.sleep(2.5)
    t1 = time.monotonic()
    caller.request("hangup", call="c1")
    caller.wait_event({"ev": "recorded", "call": "c1"})
    phones.wait_state(picker_call, "DISCONNECTED")
    picker_start = phones.events({"ev": "media", "call": picker_call})[0]["at"]
    phones.wait_event({"ev": "recorded", "call": picker_call})
    assert hears(rec, start, t0 + 0.8, t1, picker_tone) == {picker_tone: True}
    assert hears(picker_rec, picker_start, t0 + 0.8, t1, CALLER) == {CALLER: True}


def test_group_pickup_from_the_agents_phone(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", code=None)      # rings forever
        rec, bob_rec = str(workdir / "caller.wav"), str(workdir / "bob.wav")
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            call_id, alice_call, start = ring_alice(caller, phones, engine, rec)
            pick_up(phones, engine, "*8", "p1", "bob", BOB, bob_rec)
            phones.wait_state("p1", "CONFIRMED")
            phones.wait_state(alice_call, "DISCONNECTED")           # her ringing is cancelled
            wait_until(lambda: states(engine) == {"alice": "available", "bob": "busy",
                                                  "carol": "available"}, 5, "bob busy")
            calls = wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"], 5,
                               "the conversation")
            assert [(c["call_id"], c["agent"]) for c in calls] == [(call_id, "bob")]
            talk_and_hang_up(caller, start, rec, bob_rec, BOB, "p1", phones)
            no_agent_stuck(engine)
            # As for a ring-all answer: the connect, then the other phone's end.
            whole = [("OFFER", "alice", None), ("CONNECT", "bob", None),
                     ("RINGNOANSWER", "alice", "picked_up")]
            assert rows_end(engine, call_id, whole) == whole
            assert pickups(engine, "picked_up") == 1
            assert engine.metric("sipacd_agent_offers_total", queue="support",
                                 result="picked_up") == 1


def test_directed_pickup_dialled_in_one_go_and_keyed_in(ports, workdir, prompts_dir):
    with phones_and_caller(ports, workdir) as (phones, caller):
        rec, carol_rec = str(workdir / "caller.wav"), str(workdir / "carol.wav")
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            # Nobody rings at bob: **1002 finds nothing, and alice rings on.
            call_id, alice_call, start = ring_alice(caller, phones, engine, rec)
            pick_up(phones, engine, "**1002", "n1", "carol", CAROL, str(workdir / "n1.wav"))
            phones.wait_state("n1", "DISCONNECTED", timeout=15)
            assert pickups(engine, "nothing") == 1
            assert agent_state(engine, "alice") == "offered"
            pick_up(phones, engine, "**1001", "p1", "carol", CAROL, carol_rec)
            phones.wait_state("p1", "CONFIRMED")
            phones.wait_state(alice_call, "DISCONNECTED")
            wait_until(lambda: agent_state(engine, "carol") == "busy", 5, "carol busy")
            talk_and_hang_up(caller, start, rec, carol_rec, CAROL, "p1", phones)
            no_agent_stuck(engine)
            tail = [("CONNECT", "carol", None), ("RINGNOANSWER", "alice", "picked_up")]
            assert rows_end(engine, call_id, tail) == tail

            # The number keyed in after "**" (the prompt asks for it).
            rec2, bob_rec = str(workdir / "caller2.wav"), str(workdir / "bob.wav")
            caller.request("call", call="c2", to=engine.number("100"), tone=CALLER, record=rec2)
            inc = phones.wait_event(lambda e: e.get("ev") == "incoming"
                                    and e.get("user") == "alice" and e["call"] != alice_call)
            pick_up(phones, engine, "**", "p2", "bob", BOB, bob_rec)
            phones.wait_state("p2", "CONFIRMED")
            time.sleep(0.5)
            phones.request("dtmf", call="p2", digits="1001#")
            phones.wait_state(inc["call"], "DISCONNECTED", timeout=15)
            wait_until(lambda: agent_state(engine, "bob") == "busy", 5, "bob busy")
            tail = [("CONNECT", "bob", None), ("RINGNOANSWER", "alice", "picked_up")]
            assert rows_end(engine, inc["headers"]["X-Sipacd-Call-Id"], tail) == tail
            caller.request("hangup", call="c2")
            phones.wait_state("p2", "DISCONNECTED")
            no_agent_stuck(engine)
            assert pickups(engine, "picked_up") == 2


def test_pickup_by_the_api_rings_the_agent_first(ports, workdir, prompts_dir):
    with phones_and_caller(ports, workdir) as (phones, caller):
        bob_rec = str(workdir / "bob-{call}.wav")
        phones.request("auto_answer", user="bob", after=0.5, tone=BOB, record=bob_rec)
        rec = str(workdir / "caller.wav")
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            call_id, alice_call, start = ring_alice(caller, phones, engine, rec)
            path = f"/api/calls/{call_id}/pickup"
            assert api(engine, "POST", "/api/calls/nope/pickup", {"agent": "bob"})[0] == 404
            status, text = api(engine, "POST", path, {"agent": "nobody"})
            assert status == 400 and text.startswith("agent:"), text
            status, text = api(engine, "POST", path, {"agent": "bob"}, token=AGENT_TOKEN)
            assert status == 403, text                   # alice's token, for bob
            assert api(engine, "POST", path, {"agent": 7})[0] == 400
            status, body = api(engine, "POST", path, {"agent": "bob"})
            assert (status, body) == (202, {"call_id": call_id, "agent": "bob",
                                            "status": "ringing"})
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
            phones.wait_state(inc["call"], "CONFIRMED")
            phones.wait_state(alice_call, "DISCONNECTED")
            wait_until(lambda: states(engine) == {"alice": "available", "bob": "busy",
                                                  "carol": "available"}, 5, "bob busy")
            talk_and_hang_up(caller, start, rec, bob_rec.format(call=inc["call"]), BOB,
                             inc["call"], phones)
            no_agent_stuck(engine)
            tail = [("CONNECT", "bob", None), ("RINGNOANSWER", "alice", "picked_up")]
            assert rows_end(engine, call_id, tail) == tail
            # Too late: the call is over, so there is nothing to pick up.
            assert api(engine, "POST", path, {"agent": "carol"})[0] == 404
            assert pickups(engine, "picked_up") == 1


def test_two_pickups_at_once_exactly_one_wins(ports, workdir, prompts_dir):
    with phones_and_caller(ports, workdir) as (phones, caller):
        rec = str(workdir / "caller.wav")
        recs = {"bob": str(workdir / "bob.wav"), "carol": str(workdir / "carol.wav")}
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            call_id, alice_call, start = ring_alice(caller, phones, engine, rec)
            pick_up(phones, engine, "*8", "p-bob", "bob", BOB, recs["bob"])
            pick_up(phones, engine, "*8", "p-carol", "carol", CAROL, recs["carol"])
            phones.wait_state(alice_call, "DISCONNECTED")
            wait_until(lambda: pickups(engine, "nothing") == 1, 15, "the loser told")
            # The loser hears "nothing to pick up" and the engine hangs up on it.
            loser = wait_until(lambda: next((a for a in ("bob", "carol") if phones.events(
                {"ev": "state", "call": f"p-{a}", "state": "DISCONNECTED"})), None), 15,
                "the loser's call ended")
            winner = "carol" if loser == "bob" else "bob"
            phones.wait_event({"ev": "recorded", "call": f"p-{loser}"})
            assert rms(recs[loser], skip_seconds=0.3) > 0.01       # a prompt, not silence
            assert pickups(engine, "picked_up") == 1
            assert states(engine) == {"alice": "available", winner: "busy",
                                      loser: "available"}
            calls = wait_until(lambda: api(engine, "GET", "/api/calls")[1]["calls"], 5,
                               "the conversation")
            assert [(c["call_id"], c["agent"]) for c in calls] == [(call_id, winner)]
            tone = BOB if winner == "bob" else CAROL
            talk_and_hang_up(caller, start, rec, recs[winner], tone, f"p-{winner}", phones)
            no_agent_stuck(engine)
            assert [r for r in rows(engine, call_id) if r[0] == "CONNECT"] == [
                ("CONNECT", winner, None)]


def test_nothing_to_pick_up(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones:
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            pick_up(phones, engine, "*8", "p1", "bob", BOB, str(workdir / "bob.wav"))
            phones.wait_state("p1", "CONFIRMED")
            phones.wait_state("p1", "DISCONNECTED", timeout=15)      # told, then hung up
            phones.wait_event({"ev": "recorded", "call": "p1"})
            assert rms(str(workdir / "bob.wav"), skip_seconds=0.3) > 0.01
            # From a phone that is no agent's: refused, whatever rings.
            pick_up(phones, engine, "*8", "p2", "desk", BOB, str(workdir / "desk.wav"))
            phones.wait_state("p2", "DISCONNECTED", timeout=15)
            assert pickups(engine, "nothing") == 1
            assert pickups(engine, "refused") == 1
            no_agent_stuck(engine)
            assert states(engine) == {"alice": "available", "bob": "available",
                                      "carol": "available"}


def test_api_pickup_answered_too_late_hangs_up_the_agent(ports, workdir, prompts_dir):
    """The caller is gone by the time bob answers: his leg is hung up, and
    the ACD has nobody busy."""
    with phones_and_caller(ports, workdir) as (phones, caller):
        phones.request("auto_answer", user="bob", after=2.0, tone=BOB)
        with Engine(workdir, pickup_config(ports, workdir, prompts_dir, phones)) as engine:
            call_id, alice_call, _ = ring_alice(caller, phones, engine, str(workdir / "c.wav"))
            assert api(engine, "POST", f"/api/calls/{call_id}/pickup", {"agent": "bob"})[0] == 202
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            caller.request("hangup", call="c1")
            phones.wait_state(alice_call, "DISCONNECTED")
            phones.wait_state(inc["call"], "CONFIRMED")
            phones.wait_state(inc["call"], "DISCONNECTED", timeout=5)    # the engine hung up
            assert engine.wait_metric("sipacd_pickups_total", 1, result="nothing") == 1
            assert pickups(engine, "picked_up") == 0
            no_agent_stuck(engine)
            assert states(engine) == {"alice": "available", "bob": "available",
                                      "carol": "available"}
