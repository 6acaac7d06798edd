"""Several engines behind Kamailio, on 127.0.0.1 (the cluster issue's first
step: the SIP front and the harness; ownership and the shared store build
on it).

- Agents' phones register at Kamailio; an engine rings an agent at
  ``sip:<agent>@<kamailio>`` and Kamailio finds the phone (usrloc), so no
  engine needs to know where a phone is.
- Calls into the center go to Kamailio, whose dispatcher spreads them over
  the engines it sees alive (OPTIONS every second); when an engine dies,
  new calls reach the survivors.
- A PostgreSQL server of the test's own starts (initdb as the ``postgres``
  system user) and keeps what is written to it.
"""
from __future__ import annotations

import time

import psycopg
import pytest

from clusterkit import Kamailio, Postgres
from engine_proc import Engine
from sipagent.store.leases import LeaseTable
from sipua import UA
from test_queue_behaviour import config

pytestmark = [pytest.mark.sip, pytest.mark.cluster]


def test_postgres_server_of_the_tests_own(ports):
    with Postgres(ports()) as pg:
        pg.psql("CREATE TABLE lease (partition TEXT PRIMARY KEY, node TEXT NOT NULL)")
        pg.psql("INSERT INTO lease VALUES ('p1', 'node-a')")
        assert pg.psql("SELECT node FROM lease WHERE partition = 'p1'") == "node-a"
        assert pg.psql("SHOW server_version").split(".")[0] == "15"
        # Only the password user over TCP: the DSN is what an engine uses.
        assert pg.dsn.startswith(f"postgresql://sipacd:{pg.password}@127.0.0.1:{pg.port}/")


def engine_config(ports, workdir, prompts_dir, name: str, kamailio_port: int, agent: str):
    return config(ports, workdir / name, prompts_dir,
                  {agent: {"uri": f"sip:{agent}@127.0.0.1:{kamailio_port}",
                           "queues": ["support"]}}, {"support": {}})


def test_kamailio_spreads_calls_over_engines_and_reaches_registered_phones(
        ports, workdir, prompts_dir):
    k_port = ports()
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    cfg_a = engine_config(ports, workdir, prompts_dir, "a", k_port, "alice")
    cfg_b = engine_config(ports, workdir, prompts_dir, "b", k_port, "bob")
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller, \
            Kamailio(workdir, k_port, [cfg_a["sip"]["port"], cfg_b["sip"]["port"]]) as kam:
        for agent in ("alice", "bob"):
            phones.request("auto_answer", user=agent, after=0.2, code=200, tone=1000)
            phones.request("register", user=agent, registrar=f"sip:{kam.uri_base}",
                           expires=120)
            phones.wait_event({"ev": "registered", "user": agent, "code": 200})
        with Engine(workdir / "a", cfg_a) as engine_a, Engine(workdir / "b", cfg_b) as engine_b:
            # Both engines answer the dispatcher's probes before calls come.
            time.sleep(2.5)
            for n in range(4):
                caller.request("call", call=f"c{n}", to=kam.aor("100"), from_user=f"555000{n}")
                caller.wait_state(f"c{n}", "CONFIRMED")
                inc = phones.wait_event({"ev": "incoming", "call": f"in{n + 1}"}, timeout=15)
                phones.wait_state(inc["call"], "CONFIRMED")
                caller.request("hangup", call=f"c{n}")
                caller.wait_state(f"c{n}", "DISCONNECTED")
                phones.wait_state(inc["call"], "DISCONNECTED")
            rung = [e["user"] for e in phones.events({"ev": "incoming"})]
            # Round robin over the two engines: each engine's agent got two.
            assert sorted(rung) == ["alice", "alice", "bob", "bob"], rung
            assert engine_a.metric("sipacd_queue_offered_total", queue="support") == 2
            assert engine_b.metric("sipacd_queue_offered_total", queue="support") == 2

            engine_b.stop()
            time.sleep(2.5)   # the probes find it gone
            for n in range(4, 6):
                caller.request("call", call=f"c{n}", to=kam.aor("100"), from_user=f"555000{n}")
                caller.wait_state(f"c{n}", "CONFIRMED", timeout=15)
                inc = phones.wait_event({"ev": "incoming", "user": "alice",
                                         "call": f"in{n + 1}"}, timeout=15)
                phones.wait_state(inc["call"], "CONFIRMED")
                caller.request("hangup", call=f"c{n}")
                caller.wait_state(f"c{n}", "DISCONNECTED")


def test_a_partitions_numbers_go_to_its_lease_holder(ports, workdir, prompts_dir):
    k_port = ports()
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    cfg_a = engine_config(ports, workdir, prompts_dir, "a", k_port, "alice")
    cfg_b = engine_config(ports, workdir, prompts_dir, "b", k_port, "bob")
    with Postgres(ports()) as pg:
        conn = psycopg.connect(pg.dsn, autocommit=True)
        leases = LeaseTable(conn)
        conn.execute("CREATE TABLE partition_number (number TEXT PRIMARY KEY, "
                     "partition TEXT NOT NULL)")
        conn.execute("INSERT INTO partition_number VALUES ('100', 'p1')")
        with UA(ports(), log_dir=workdir, name="agents") as phones, \
                UA(ports(), log_dir=workdir, name="caller") as caller, \
                Kamailio(workdir, k_port, [cfg_a["sip"]["port"], cfg_b["sip"]["port"]],
                         database=pg.dsn) as kam, \
                Engine(workdir / "a", cfg_a), Engine(workdir / "b", cfg_b):
            for agent in ("alice", "bob"):
                phones.request("auto_answer", user=agent, after=0.2, code=200, tone=1000)
                phones.request("register", user=agent, registrar=f"sip:{kam.uri_base}")
                phones.wait_event({"ev": "registered", "user": agent, "code": 200})
            time.sleep(2.5)
            calls = iter(range(100))

            def who_answers() -> str:
                n = next(calls)
                caller.request("call", call=f"c{n}", to=kam.aor("100"))
                caller.wait_state(f"c{n}", "CONFIRMED", timeout=15)
                inc = phones.wait_event({"ev": "incoming", "call": f"in{n + 1}"}, timeout=15)
                phones.wait_state(inc["call"], "CONFIRMED")
                caller.request("hangup", call=f"c{n}")
                phones.wait_state(inc["call"], "DISCONNECTED")
                return inc["user"]

            lease = leases.hold("p1", "node-b", f"sip:127.0.0.1:{cfg_b['sip']['port']}", ttl=60)
            assert [who_answers() for _ in range(3)] == ["bob"] * 3
            # The lease changes hands: the calls follow it.
            leases.release(lease)
            leases.hold("p1", "node-a", f"sip:127.0.0.1:{cfg_a['sip']['port']}", ttl=60)
            assert [who_answers() for _ in range(3)] == ["alice"] * 3
            # A number of no partition, or a partition nobody holds: round robin.
            conn.execute("UPDATE partition_lease SET expires = now() - interval '1 second'")
            assert sorted(who_answers() for _ in range(2)) == ["alice", "bob"]
        conn.close()
