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
from contextlib import contextmanager
from dataclasses import dataclass

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
        engine.queues.offers[("y", "alice")] = engine.queues.offers[("x", "alice")]
        out["twice"] = await read()
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
    _, twice = out["twice"]
    assert ("leg x->alice is in 2 places: offer of x to alice, offer of y to alice"
            in twice["problems"]), twice
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


@dataclass
class Scene:
    phones: UA
    caller: UA
    engine: Engine
    call_id: str
    start: float          # the caller's recording starts (monotonic)
    alice: str            # alice's call on the agents' phone
    rec: str              # the caller's recording


@contextmanager
def connected(ports, workdir, prompts_dir, **answers):
    """The caller talking to alice; ``answers``: the other phones' auto_answer
    (user -> its arguments); bob answers after 0.3 s unless told otherwise."""
    answers = {"bob": {"after": 0.3, "tone": BOB}, **answers}
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", after=0.3, tone=ALICE)
        for user, how in answers.items():
            phones.request("auto_answer", user=user, **how)
        rec = str(workdir / "caller.wav")
        with Engine(workdir, setup(ports, workdir, prompts_dir, phones)) as engine:
            call_id, start, alice = connect(caller, phones, engine, rec)
            yield Scene(phones, caller, engine, call_id, start, alice, rec)


def caller_hears_bob(s: Scene) -> None:
    """bob's phone rings with the call and answers; the caller hears bob, not alice."""
    inc = s.phones.wait_event({"ev": "incoming", "user": "bob"}, timeout=15)
    assert inc["headers"]["X-Sipacd-Call-Id"] == s.call_id
    confirmed = s.phones.wait_state(inc["call"], "CONFIRMED")["at"]
    time.sleep(1.5)
    s.caller.request("hangup", call="c1")
    s.caller.wait_event({"ev": "recorded", "call": "c1"})
    assert hears(s.rec, s.start, confirmed + 0.3, confirmed + 1.4, BOB, ALICE) == {
        BOB: True, ALICE: False}


# -- the races --------------------------------------------------------------------------

@sip
def test_caller_hangs_up_during_a_blind_transfer(ports, workdir, prompts_dir):
    """Right after the API transfer, while bob's phone still rings."""
    with connected(ports, workdir, prompts_dir, bob=dict(after=3.0, tone=BOB)) as s:
        status, body = api(s.engine, "POST", f"/api/calls/{s.call_id}/transfer",
                           {"target": "queue:sales"})
        assert status == 202, body
        bob = s.phones.wait_event({"ev": "incoming", "user": "bob"})["call"]
        s.caller.request("hangup", call="c1")
        s.phones.wait_state(bob, "DISCONNECTED", timeout=5)       # cancelled, unanswered
        s.phones.wait_state(s.alice, "DISCONNECTED", timeout=5)
        settled(s.engine)
        log = wait_until(lambda: ("ABANDON", "sales", None) in kinds(s.engine, s.call_id)
                         and kinds(s.engine, s.call_id), 5, "the abandon in sales")
        assert ("TRANSFER", "support", "alice") in log, log
        assert ("CONNECT", "sales", "bob") not in log, log


@sip
def test_caller_hangs_up_while_a_supervisor_listens(ports, workdir, prompts_dir):
    with connected(ports, workdir, prompts_dir, boss=dict(after=0.3, tone=2000.0)) as s:
        assert api(s.engine, "POST", f"/api/calls/{s.call_id}/monitor",
                   {"mode": "listen"})[0] == 202
        boss = s.phones.wait_event({"ev": "incoming", "user": "boss"})["call"]
        s.phones.wait_event({"ev": "media", "call": boss})
        wait_until(lambda: ("MONITOR_START", "support", "alice") in kinds(s.engine, s.call_id),
                   5, "the session")
        s.caller.request("hangup", call="c1")
        s.phones.wait_state(boss, "DISCONNECTED", timeout=5)
        s.phones.wait_state(s.alice, "DISCONNECTED", timeout=5)
        settled(s.engine)
        wait_until(lambda: ("MONITOR_END", "support", "alice") in kinds(s.engine, s.call_id),
                   5, "the session's end")


@sip
def test_caller_hangs_up_while_on_hold(ports, workdir, prompts_dir):
    with connected(ports, workdir, prompts_dir) as s:
        assert api(s.engine, "POST", f"/api/calls/{s.call_id}/hold")[0] == 200
        time.sleep(0.5)
        s.caller.request("hangup", call="c1")
        s.phones.wait_state(s.alice, "DISCONNECTED", timeout=5)
        settled(s.engine)
        log = wait_until(lambda: ("UNHOLD", "support", "alice") in kinds(s.engine, s.call_id)
                         and kinds(s.engine, s.call_id), 5, "the hold's end")
        assert [k for k, _, _ in log if k in ("HOLD", "UNHOLD")] == ["HOLD", "UNHOLD"], log


@sip
@pytest.mark.parametrize("answer_first", [0.03, 0.0, -0.03],
                         ids=["answer-30ms-first", "together", "hangup-30ms-first"])
def test_transfer_target_answers_as_the_caller_hangs_up(ports, workdir, prompts_dir,
                                                        answer_first):
    """bob's phone rings until the test answers it; the caller's BYE and
    bob's 200 OK leave within ``answer_first`` of each other, either order.
    Either the caller abandoned sales, or bob was connected and the call
    completed: never both, never neither."""
    with connected(ports, workdir, prompts_dir, bob=dict(code=None, tone=BOB)) as s:
        assert api(s.engine, "POST", f"/api/calls/{s.call_id}/transfer",
                   {"target": "queue:sales"})[0] == 202
        bob = s.phones.wait_event({"ev": "incoming", "user": "bob"})["call"]
        time.sleep(0.3)
        moves = [lambda: s.phones.send("answer", call=bob),
                 lambda: s.caller.send("hangup", call="c1")]
        for move in moves if answer_first >= 0 else moves[::-1]:
            move()
            time.sleep(abs(answer_first))
        s.caller.wait_state("c1", "DISCONNECTED", timeout=5)
        s.phones.wait_state(bob, "DISCONNECTED", timeout=8)
        settled(s.engine)
        log = kinds(s.engine, s.call_id)
        sales = [k for k, q, _ in log if q == "sales" and k in (*OUTCOMES, *ENDINGS)]
        assert sales in (["ABANDON"], ["CONNECT", "COMPLETE_CALLER"],
                         ["CONNECT", "COMPLETE_AGENT"]), log


@sip
def test_agent_phone_refers_and_hangs_up_at_once(ports, workdir, prompts_dir):
    """The REFER is taken (202) before the BYE arrives: the caller goes on to bob."""
    with connected(ports, workdir, prompts_dir) as s:
        time.sleep(0.5)
        s.phones.send("xfer", call=s.alice, to=f"sip:sales@127.0.0.1:{s.engine.sip_port}")
        s.phones.send("hangup", call=s.alice)
        s.phones.wait_state(s.alice, "DISCONNECTED", timeout=5)
        caller_hears_bob(s)
        settled(s.engine)
        log = kinds(s.engine, s.call_id)
        assert ("TRANSFER", "support", "alice") in log and \
            ("CONNECT", "sales", "bob") in log, log


@sip
def test_two_transfers_of_one_call_at_the_same_moment(ports, workdir, prompts_dir):
    """Exactly one is taken (202); the other finds the call no longer
    connected (404, or 409 if it got past the lookup)."""
    with connected(ports, workdir, prompts_dir) as s:
        go = threading.Barrier(2)
        answers: list[int] = []

        def transfer(target):
            go.wait()
            answers.append(api(s.engine, "POST", f"/api/calls/{s.call_id}/transfer",
                               {"target": target})[0])
        threads = [threading.Thread(target=transfer, args=(t,))
                   for t in ("queue:sales", "agent:bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(answers)[0] == 202 and sorted(answers)[1] in (404, 409), answers
        caller_hears_bob(s)
        assert len(s.phones.events({"ev": "incoming", "user": "bob"})) == 1
        settled(s.engine)
        log = kinds(s.engine, s.call_id)
        assert [k for k, _, _ in log].count("TRANSFER") == 1, log


@sip
def test_hold_and_resume_ten_in_a_row(ports, workdir, prompts_dir):
    """Ten requests as fast as the API answers, alternating: each is taken,
    the last (resume) gives the caller the agent back, and the hold rows pair up."""
    with connected(ports, workdir, prompts_dir) as s:
        time.sleep(0.5)
        phases = [api(s.engine, "POST", f"/api/calls/{s.call_id}/{verb}")
                  for verb in ("hold", "resume") * 5]
        assert [(status, body["phase"]) for status, body in phases] == [
            (200, "held"), (200, "talking")] * 5, phases
        t0 = time.monotonic()
        time.sleep(1.5)
        s.caller.request("hangup", call="c1")
        s.phones.wait_state(s.alice, "DISCONNECTED", timeout=5)
        s.caller.wait_event({"ev": "recorded", "call": "c1"})
        assert hears(s.rec, s.start, t0 + 0.3, t0 + 1.4, ALICE, MUSIC) == {
            ALICE: True, MUSIC: False}
        settled(s.engine)

        def holds():
            return [k for k, _, _ in kinds(s.engine, s.call_id) if k in ("HOLD", "UNHOLD")]
        wait_until(lambda: len(holds()) >= 10, 5, "ten hold rows")
        assert holds() == ["HOLD", "UNHOLD"] * 5, holds()
