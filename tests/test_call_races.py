"""Races around call operations, over real SIP on 127.0.0.1: the caller
hangs up in the middle of a transfer, a monitor session or a hold; the
transfer target answers as the caller hangs up; a phone REFERs and hangs up
at once; two transfers and a burst of holds collide.

Whatever wins each race, the engine must come out whole: each test ends
with every phone hung up and ``engine.assert_settled()`` (no leg, entry,
offer or conversation left, no agent busy or ringing), and with an event
log in which every ENTER ends in exactly one CONNECT, ABANDON or EXIT and
every CONNECT in exactly one COMPLETE or TRANSFER, and the agents end
available or in wrap-up.  The first tests check the invariant checker
itself (no SIP): it must be able to say no.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from apikit import ADMIN, SUPERVISOR, serve
from engine_proc import Engine
from portlocks import Ports
from sipua import UA
from test_call_operations import ALICE, BOB, MUSIC, connect, hears, rows, setup
from test_queue_behaviour import api, wait_until

sip = pytest.mark.sip
OUTCOMES = ("CONNECT", "ABANDON", "EXIT")
ENDINGS = ("COMPLETE_CALLER", "COMPLETE_AGENT", "TRANSFER")


# -- the checker, on the engine's HTTP app without SIP --------------------------------

class _Leg:
    """What the checker reads of a ringing leg."""
    label, is_ended, sip_call_id = "x->alice", False, "sip-x"


def test_the_checker_finds_a_stray_offer_and_an_idle_engine_is_clean(tmp_path, port_allocator):
    async def scenario(client, engine):
        out = {}

        async def read(query=""):
            r = await client.get(f"/api/debug/invariants{query}", headers=SUPERVISOR)
            return r.status, await r.json()

        out["clean"] = await read("?quiet=1")
        await client.post("/api/agents/alice/login", headers=ADMIN)
        engine.queues.offers[("x", "alice")] = _Leg()        # rings with no call in line
        out["stray"] = await read()
        out["stray quiet"] = await read("?quiet=1")
        engine.queues.offers.clear()
        out["agent token"] = (await client.get("/api/debug/invariants", headers={
            "Authorization": "Bearer alice-token-0123456789"})).status
        out["bad flag"] = (await client.get("/api/debug/invariants?quiet=maybe",
                                            headers=ADMIN)).status
        return out

    out = serve(tmp_path, Ports(port_allocator), scenario)
    status, clean = out["clean"]
    assert status == 200 and clean["problems"] == [] and clean["legs"] == 0, clean
    _, stray = out["stray"]
    assert sorted(stray["problems"]) == [
        "agent alice is available but 1 offer leg(s) ring it",
        "offer leg x->alice is not among the engine's legs",
        "offer of x to alice rings for a call no longer in line"], stray
    _, quiet = out["stray quiet"]
    assert "offers still ringing: [('x', 'alice')]" in quiet["problems"], quiet
    assert (out["agent token"], out["bad flag"]) == (403, 400)


# -- helpers ----------------------------------------------------------------------------

def log_problems(engine) -> list[str]:
    """Where the event log's story of each call does not add up."""
    out = []
    by_call: dict[str, list[str]] = defaultdict(list)
    for call_id, kind in _queue_rows(engine):
        by_call[call_id].append(kind)
    for call_id, kinds in by_call.items():
        waiting = talking = 0
        for kind in kinds:
            if kind == "ENTER":
                if waiting or talking:
                    out.append(f"{call_id}: ENTER while still in a queue: {kinds}")
                waiting = 1
            elif kind in OUTCOMES:
                if not waiting:
                    out.append(f"{call_id}: {kind} without an ENTER: {kinds}")
                waiting, talking = 0, int(kind == "CONNECT")
            elif kind in ENDINGS:
                if not talking:
                    out.append(f"{call_id}: {kind} without a CONNECT: {kinds}")
                talking = 0
        if waiting or talking:
            out.append(f"{call_id}: never ended: {kinds}")
    return out


def _queue_rows(engine) -> list[tuple[str, str]]:
    import sqlite3
    from sipagent.store.eventlog import event_log_path
    conn = sqlite3.connect(event_log_path(engine.workdir / "data").resolve().as_uri()
                           + "?mode=ro", uri=True)
    try:
        return conn.execute("SELECT call_id, kind FROM event WHERE call_id IS NOT NULL "
                            "ORDER BY id").fetchall()
    finally:
        conn.close()


def agents_at_rest(engine) -> dict[str, str]:
    states = {a["agent"]: a["state"] for a in api(engine, "GET", "/api/agents")[1]["agents"]}
    return states if all(s in ("available", "wrap_up") for s in states.values()) else {}


def settled(engine) -> None:
    """The end of every race: nothing left, the log adds up, agents at rest."""
    engine.assert_settled(timeout=8)
    wait_until(lambda: not log_problems(engine), 5, f"a consistent log: {log_problems(engine)}")
    wait_until(lambda: agents_at_rest(engine), 5, "agents available or in wrap-up")


def kinds(engine, call_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(k, q, a) for k, q, a, _, _, _ in rows(engine, call_id)]


def phones_and_caller(ports, workdir):
    return UA(ports(), log_dir=workdir, name="agents"), UA(ports(), log_dir=workdir,
                                                            name="caller")


# -- the races --------------------------------------------------------------------------

@sip
def test_caller_hangs_up_during_a_blind_transfer(ports, workdir, prompts_dir):
    """Right after the API transfer, while bob's phone still rings."""
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="bob", after=3.0, tone=BOB)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, _, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            status, body = api(engine, "POST", f"/api/calls/{call_id}/transfer",
                               {"target": "queue:sales"})
            assert status == 202, body
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            caller.request("hangup", call="c1")
            phones.wait_state(inc["call"], "DISCONNECTED", timeout=5)   # cancelled, unanswered
            phones.wait_state(alice, "DISCONNECTED", timeout=5)
            settled(engine)
            log = wait_until(lambda: ("ABANDON", "sales", None) in kinds(engine, call_id)
                             and kinds(engine, call_id), 5, "the abandon in sales")
            assert ("TRANSFER", "support", "alice") in log, log
            assert ("CONNECT", "sales", "bob") not in log, log


@sip
def test_caller_hangs_up_while_a_supervisor_listens(ports, workdir, prompts_dir):
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="boss", after=0.3, tone=2000.0)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, _, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            assert api(engine, "POST", f"/api/calls/{call_id}/monitor",
                       {"mode": "listen"})[0] == 202
            boss = phones.wait_event({"ev": "incoming", "user": "boss"})["call"]
            phones.wait_event({"ev": "media", "call": boss})
            wait_until(lambda: ("MONITOR_START", "support", "alice") in kinds(engine, call_id),
                       5, "the session")
            caller.request("hangup", call="c1")
            phones.wait_state(boss, "DISCONNECTED", timeout=5)
            phones.wait_state(alice, "DISCONNECTED", timeout=5)
            settled(engine)
            wait_until(lambda: ("MONITOR_END", "support", "alice") in kinds(engine, call_id),
                       5, "the session's end")


@sip
def test_caller_hangs_up_while_on_hold(ports, workdir, prompts_dir):
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, _, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            assert api(engine, "POST", f"/api/calls/{call_id}/hold")[0] == 200
            time.sleep(0.5)
            caller.request("hangup", call="c1")
            phones.wait_state(alice, "DISCONNECTED", timeout=5)
            settled(engine)
            log = wait_until(lambda: ("UNHOLD", "support", "alice") in kinds(engine, call_id)
                             and kinds(engine, call_id), 5, "the hold's end")
            assert [k for k, _, _ in log if k in ("HOLD", "UNHOLD")] == ["HOLD", "UNHOLD"], log


@sip
@pytest.mark.parametrize("answer_first", [0.03, 0.0, -0.03],
                         ids=["answer-30ms-first", "together", "hangup-30ms-first"])
def test_transfer_target_answers_as_the_caller_hangs_up(ports, workdir, prompts_dir,
                                                        answer_first):
    """bob's phone rings until the test answers it; the caller's BYE and
    bob's 200 OK leave within ``answer_first`` of each other, either order."""
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="bob", code=None, tone=BOB)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, _, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            assert api(engine, "POST", f"/api/calls/{call_id}/transfer",
                       {"target": "queue:sales"})[0] == 202
            bob = phones.wait_event({"ev": "incoming", "user": "bob"})["call"]
            time.sleep(0.3)
            first = [lambda: phones.send("answer", call=bob),
                     lambda: caller.send("hangup", call="c1")]
            for send in first if answer_first >= 0 else first[::-1]:
                send()
                time.sleep(abs(answer_first))
            caller.wait_state("c1", "DISCONNECTED", timeout=5)
            phones.wait_state(bob, "DISCONNECTED", timeout=8)
            settled(engine)
            log = kinds(engine, call_id)
            sales = [k for k, q, _ in log if q == "sales" and k in (*OUTCOMES, *ENDINGS)]
            assert sales in (["ABANDON"], ["CONNECT", "COMPLETE_CALLER"],
                             ["CONNECT", "COMPLETE_AGENT"]), log


@sip
def test_agent_phone_refers_and_hangs_up_at_once(ports, workdir, prompts_dir):
    """The REFER is taken (202) before the BYE arrives: the caller goes on to bob."""
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="bob", after=0.3, tone=BOB)
        rec = str(workdir / "caller.wav")
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, start, alice = connect(caller, phones, engine, rec)
            time.sleep(0.5)
            phones.send("xfer", call=alice, to=f"sip:sales@127.0.0.1:{engine.sip_port}")
            phones.send("hangup", call=alice)
            phones.wait_state(alice, "DISCONNECTED", timeout=5)
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            assert inc["headers"]["X-Sipacd-Call-Id"] == call_id
            confirmed = phones.wait_state(inc["call"], "CONFIRMED")["at"]
            time.sleep(1.5)
            caller.request("hangup", call="c1")
            caller.wait_event({"ev": "recorded", "call": "c1"})
            assert hears(rec, start, confirmed + 0.3, confirmed + 1.4, BOB, ALICE) == {
                BOB: True, ALICE: False}
            settled(engine)
            log = kinds(engine, call_id)
            assert ("TRANSFER", "support", "alice") in log and \
                ("CONNECT", "sales", "bob") in log, log


@sip
def test_two_transfers_of_one_call_at_the_same_moment(ports, workdir, prompts_dir):
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        phones.request("auto_answer", user="bob", after=0.3, tone=BOB)
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, _, alice = connect(caller, phones, engine, str(workdir / "c.wav"))
            go = threading.Barrier(2)
            answers: list[int] = []

            def transfer(target):
                go.wait()
                answers.append(api(engine, "POST", f"/api/calls/{call_id}/transfer",
                                   {"target": target})[0])
            threads = [threading.Thread(target=transfer, args=(t,))
                       for t in ("queue:sales", "agent:bob")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            assert sorted(answers)[0] == 202 and sorted(answers)[1] in (404, 409), answers
            inc = phones.wait_event({"ev": "incoming", "user": "bob"})
            phones.wait_state(inc["call"], "CONFIRMED")
            time.sleep(0.5)
            assert len(phones.events({"ev": "incoming", "user": "bob"})) == 1
            caller.request("hangup", call="c1")
            settled(engine)
            log = kinds(engine, call_id)
            assert [k for k, _, _ in log].count("TRANSFER") == 1, log


@sip
def test_hold_and_resume_ten_in_a_row(ports, workdir, prompts_dir):
    """Ten requests as fast as the API answers, alternating: each is taken,
    the last (resume) gives the caller the agent back, and the hold rows pair up."""
    phones, caller = phones_and_caller(ports, workdir)
    with phones, caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        rec = str(workdir / "caller.wav")
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, start, alice = connect(caller, phones, engine, rec)
            time.sleep(0.5)
            phases = [api(engine, "POST", f"/api/calls/{call_id}/{verb}")
                      for verb in ("hold", "resume") * 5]
            assert [(s, b["phase"]) for s, b in phases] == [
                (200, "held"), (200, "talking")] * 5, phases
            t0 = time.monotonic()
            time.sleep(1.5)
            caller.request("hangup", call="c1")
            phones.wait_state(alice, "DISCONNECTED", timeout=5)
            caller.wait_event({"ev": "recorded", "call": "c1"})
            assert hears(rec, start, t0 + 0.3, t0 + 1.4, ALICE, MUSIC) == {
                ALICE: True, MUSIC: False}
            settled(engine)

            def holds():
                return [k for k, _, _ in kinds(engine, call_id) if k in ("HOLD", "UNHOLD")]
            wait_until(lambda: len(holds()) >= 10, 5, "ten hold rows")
            assert holds() == ["HOLD", "UNHOLD"] * 5, holds()
