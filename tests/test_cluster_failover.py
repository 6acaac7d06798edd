"""Two engines as one call center: Kamailio in front, PostgreSQL holding
the partition leases and every store (the cluster issue's ownership and
failover).

Both nodes run the same configuration: queue ``support`` in partition
``p1``, agents alice and bob.  Only the lease holder logs the agents in,
and Kamailio sends the partition's number to it.  Then ``kill -9`` of the
holder: the other node takes the lease over and answers the next call;
the killed node, started again, takes nothing back; the calls it had live
are closed out once, by the surviving node or at the restart.
"""
from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from clusterkit import two_node_center
from engine_proc import Engine
from sipagent.store.eventlog import read_only
from sipagent.store.leases import LeaseTable
from test_queue_behaviour import agent_state, api, config

pytestmark = [pytest.mark.sip, pytest.mark.cluster]

LEASE = 4.0


def node_config(ports, workdir, prompts_dir, name, k_port, dsn):
    cfg = config(ports, workdir / name, prompts_dir,
                 {a: {"uri": f"sip:{a}@127.0.0.1:{k_port}", "queues": ["support"]}
                  for a in ("alice", "bob")}, {"support": {"ring_timeout": 5}})
    cfg["data"]["database"] = dsn          # one event log, one set of stores
    cfg["cluster"] = {"node_id": name, "lease_seconds": LEASE,
                      "partitions": {"p1": ["support"]}}
    return cfg


def rows(dsn, sql, args=()):
    conn = read_only(dsn)
    try:
        return conn.read(sql, args)
    finally:
        conn.close()


def busy_spans(dsn, node) -> list[tuple[str, float, float]]:
    """(agent, from, to) of every offer and talk of one node in the shared
    log: from the OFFER to its RINGNOANSWER, or to the end of the talk
    (whoever logged that end: a node that closed out a lost one)."""
    out, open_ = [], {}
    for t, kind, agent, call_id, by in rows(
            dsn, "SELECT t, kind, agent, call_id, node FROM event WHERE agent IS NOT NULL "
                 "AND kind IN ('OFFER', 'RINGNOANSWER', 'COMPLETE_CALLER', 'COMPLETE_AGENT', "
                 "'COMPLETE_SYSTEM', 'TRANSFER') ORDER BY id"):
        if kind == "OFFER" and by != node:
            continue
        if kind == "OFFER":
            open_[(agent, call_id)] = t
        elif (agent, call_id) in open_:
            out.append((agent, open_.pop((agent, call_id)), t))
    return out + [(agent, t, float("inf")) for (agent, _), t in open_.items()]


def test_the_partition_moves_to_the_surviving_node_and_stays(ports, workdir, prompts_dir):
    def make(name, k_port, dsn):
        return node_config(ports, workdir, prompts_dir, name, k_port, dsn)

    with two_node_center(ports, workdir, make, ("alice", "bob")) as \
            (pg, cfgs, phones, caller, kam):
        cfg_a, cfg_b = cfgs["a"], cfgs["b"]
        leases = LeaseTable(psycopg.connect(pg.dsn, autocommit=True))
        engine_a = Engine(workdir / "a", cfg_a, check_invariants=False)
        engine_b = None
        try:
            assert leases.holder("p1").node == "a"
            engine_b = Engine(workdir / "b", cfg_b)
            time.sleep(2.0)            # the dispatcher's probes see both
            # The holder runs the partition: the call is answered on a.
            caller.request("call", call="c1", to=kam.aor("100"))
            caller.wait_state("c1", "CONFIRMED")
            talk = phones.wait_event({"ev": "incoming", "call": "in1"}, timeout=15)
            phones.wait_state(talk["call"], "CONFIRMED")
            # The phone is up once it has the engine's ACK; the engine counts
            # the answer a loop turn or two later.
            assert engine_a.wait_metric("sipacd_queue_answered_total", 1, 5, queue="support") == 1
            assert engine_b.metric("sipacd_queue_offered_total", queue="support") == 0
            # b has the agents configured, but not on duty.
            states = {a: agent_state(engine_b, a) for a in ("alice", "bob")}
            assert states == {"alice": "logged_out", "bob": "logged_out"}, states
            # bob goes to lunch on a: he stays paused wherever he runs next.
            assert api(engine_a, "POST", "/api/agents/bob/pause",
                       {"reason": "lunch"})[0] == 200

            time.sleep(1.0)
            os.kill(engine_a.proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            engine_a.proc.wait(10)
            caller.request("call", call="c2", to=kam.aor("100"))
            caller.wait_state("c2", "CONFIRMED", timeout=20)
            inc = phones.wait_event({"ev": "incoming", "call": "in2"}, timeout=20)
            answered = phones.wait_state(inc["call"], "CONFIRMED")["at"]
            failover = answered - killed
            print(f"kill -9 to the next call answered by an agent: {failover:.2f} s")
            assert failover <= 15.0
            assert leases.holder("p1").node == "b"
            assert engine_b.wait_metric("sipacd_queue_answered_total", 1, 5, queue="support") == 1
            assert inc["user"] == "alice"
            bob = next(r for r in api(engine_b, "GET", "/api/agents")[1]["agents"]
                       if r["agent"] == "bob")
            assert (bob["state"], bob["pause_reason"]) == ("paused", "lunch"), bob

            # a comes back: it takes nothing back.  What died with it is
            # closed out once: by b's sweep (node_lost) or a's restart.
            engine_a = Engine(workdir / "a", cfg_a)
            time.sleep(2 * LEASE)
            assert leases.holder("p1").node == "b"
            states = {a: agent_state(engine_a, a) for a in ("alice", "bob")}
            assert states == {"alice": "logged_out", "bob": "logged_out"}, states
            closed = rows(pg.dsn, "SELECT call_id, reason FROM event WHERE kind = "
                                  "'COMPLETE_SYSTEM'")
            assert len(closed) == 1 and closed[0][1] in ("node_lost", "engine_restart"), \
                closed
            open_records = rows(pg.dsn, 'SELECT call_id, node FROM call_record'
                                        ' WHERE "end" IS NULL')
            assert [n for _, n in open_records] == ["b"], open_records   # c2, live on b
            # Each call once in the one log, b's live one included.
            entered = rows(pg.dsn, "SELECT call_id, COUNT(*) FROM event"
                                   " WHERE kind = 'ENTER' GROUP BY call_id")
            assert sorted(n for _, n in entered) == [1, 1], entered
            caller.request("hangup", call="c1")
            caller.request("hangup", call="c2")
            phones.wait_state(inc["call"], "DISCONNECTED")
        finally:
            for engine in (engine_b, engine_a):
                if engine is not None:
                    engine.stop()
        # No agent was ever offered calls by the two nodes at once.
        spans = {n: busy_spans(pg.dsn, n) for n in ("a", "b")}
        for agent in ("alice", "bob"):
            on_a = [(s, e) for who, s, e in spans["a"] if who == agent]
            on_b = [(s, e) for who, s, e in spans["b"] if who == agent]
            for s1, e1 in on_a:
                for s2, e2 in on_b:
                    assert e1 <= s2 or e2 <= s1, (agent, (s1, e1), (s2, e2))
