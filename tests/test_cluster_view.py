"""One view of several engines (the cluster issue): events from every node
in one durable sequence, whichever node a client asks; agent changes made
where the agent's partition runs, and followed by the other nodes.

Two engines share one PostgreSQL database (``[data] database``): node b
holds the partition, so Kamailio sends it the calls; an SSE client and the
wallboard are on node a, which handles no call at all.
"""
from __future__ import annotations

import time

import psycopg
import pytest

from clusterkit import two_node_center
from engine_proc import Engine
from sipagent.store.eventlog import read_only
from sipagent.store.leases import LeaseTable
from test_event_stream_sip import SSE, conforms
from test_queue_behaviour import api, config

pytestmark = [pytest.mark.sip, pytest.mark.cluster]

ADMIN_TOKEN = "root-token-0123456789abcdef"


def node_config(ports, workdir, prompts_dir, name, k_port, dsn):
    cfg = config(ports, workdir / name, prompts_dir,
                 {"alice": {"uri": f"sip:alice@127.0.0.1:{k_port}", "queues": ["support"]}},
                 {"support": {"wrap_up": 0}})
    cfg["data"]["database"] = dsn
    cfg["http"]["tokens"]["root"] = {"role": "admin", "token": ADMIN_TOKEN}
    cfg["cluster"] = {"node_id": name, "lease_seconds": 4, "partitions": {"p1": ["support"]}}
    return cfg


def wallboard(engine) -> dict:
    return api(engine, "GET", "/api/wallboard")[1]


def live_row(engine, agent: str):
    _, body = api(engine, "GET", "/api/admin/agents", token=ADMIN_TOKEN)
    return next((a["live"] for a in body["agents"] if a["agent"] == agent), "absent")


def test_a_client_of_one_node_sees_the_calls_of_another_in_sequence(
        ports, workdir, prompts_dir):
    def make(name, k_port, dsn):
        return node_config(ports, workdir, prompts_dir, name, k_port, dsn)

    with two_node_center(ports, workdir, make) as (pg, cfgs, phones, caller, kam):
        cfg_a, cfg_b = cfgs["a"], cfgs["b"]
        leases = LeaseTable(psycopg.connect(pg.dsn, autocommit=True))
        with Engine(workdir / "b", cfg_b) as engine_b, \
                Engine(workdir / "a", cfg_a) as engine_a:
            assert leases.holder("p1").node == "b"
            sse = SSE(engine_a)
            assert sse.status == 200
            time.sleep(2.0)            # the dispatcher's probes see both
            for n in range(2):
                caller.request("call", call=f"c{n}", to=kam.aor("100"))
                caller.wait_state(f"c{n}", "CONFIRMED", timeout=15)
                inc = phones.wait_event({"ev": "incoming", "call": f"in{n + 1}"},
                                        timeout=15)
                phones.wait_state(inc["call"], "CONFIRMED")
                time.sleep(0.3)
                caller.request("hangup", call=f"c{n}")
                phones.wait_state(inc["call"], "DISCONNECTED")
            sse.wait(lambda ev: sum(e["type"] == "call.ended" for e in ev) == 2,
                     what="both calls' ends on node a")
            sse.close()
            assert engine_a.metric("sipacd_queue_offered_total", queue="support") == 0
            assert engine_b.metric("sipacd_queue_offered_total", queue="support") == 2
            # a's wallboard counts the center's day, b's calls included.
            kpis = wallboard(engine_a)["queues"]["support"]["today"]
            assert kpis["offered"] == 2 and kpis["answered"] == 2, kpis

            # An agent change is made where the partition runs (b) ...
            zoe = {"agent": "zoe", "uri": f"sip:zoe@{kam.uri_base}",
                   "queues": {"support": 1}}
            status, body = api(engine_a, "POST", "/api/admin/agents", zoe, ADMIN_TOKEN)
            assert status == 409 and "partition 'p1'" in body, (status, body)
            status, _ = api(engine_b, "POST", "/api/admin/agents", zoe, ADMIN_TOKEN)
            assert status == 201
            assert live_row(engine_b, "zoe")["state"] == "available"
            # ... and a follows it from the stream: it knows zoe, logged out.
            deadline = time.monotonic() + 5
            while live_row(engine_a, "zoe") in ("absent", None) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            assert live_row(engine_a, "zoe")["state"] == "logged_out"
            status, _ = api(engine_b, "DELETE", "/api/admin/agents/zoe", token=ADMIN_TOKEN)
            assert status == 200
            deadline = time.monotonic() + 5
            while live_row(engine_a, "zoe") != "absent" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert live_row(engine_a, "zoe") == "absent"

        calls = [e for e in sse.events if e["call_id"]]
        assert {e["node"] for e in calls} == {"b"}
        seqs = sse.seqs()
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs      # no gap
        for e in sse.events:
            conforms(e)
        per_call: dict[str, list[str]] = {}
        for e in calls:
            per_call.setdefault(e["call_id"], []).append(e["type"])
        assert len(per_call) == 2
        for types in per_call.values():
            for kind in ("call.started", "queue.joined", "offer.created", "bridge.started",
                         "call.ended"):
                assert types.count(kind) == 1, types
        # The log holds each call once, written by the node that ran it.
        conn = read_only(pg.dsn)
        try:
            assert conn.read("SELECT node, COUNT(*) FROM event WHERE kind = 'ENTER'"
                             " GROUP BY node") == [("b", 2)]
            assert conn.read("SELECT COUNT(*) FROM call_record WHERE outcome = 'answered'") \
                == [(2,)]
        finally:
            conn.close()
