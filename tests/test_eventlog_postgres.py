"""The event log family on PostgreSQL (``[data] database``), as several
nodes use it: one log, one public event sequence, close-out by node.

A real PostgreSQL server (tests/clusterkit.py), a fresh database per test.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from sipagent.store.closeout import NODE_LOST, close_out
from sipagent.store.database import StorePlace
from sipagent.store.day_counters import DayCounters
from sipagent.store.event_stream import EventStream
from sipagent.store.eventlog import EventLog, read_only
from sipagent.store.report import report
from test_report import T0, write_day

pytestmark = pytest.mark.postgres


@pytest.fixture
def place(postgres, tmp_path):
    return StorePlace(tmp_path, postgres.new_database())


def plain(rows) -> list[str]:
    """Report rows, comparable (NaN is not equal to itself)."""
    return [json.dumps({"queue": r.queue, "start": r.start, **r.kpis()}, default=str)
            for r in rows]


def test_the_report_is_the_same_on_both_backends(place, tmp_path):
    file = tmp_path / "events.sqlite3"
    write_day(file)
    write_day(place)
    on_file = report(file, T0 - 3600, T0 + 3600, interval=900)
    on_pg = report(place.database, T0 - 3600, T0 + 3600, interval=900)
    assert plain(on_pg) == plain(on_file)
    assert sum(r.tally.offered for r in on_pg) == 9      # the day as written
    assert len(on_pg) > 2


def test_call_records_upsert_and_survive_reopen(place):
    with EventLog(place, node="a") as el:
        el.call_record("c1", start=10.0, caller="+3312345", called="100", queue="sales")
        el.queue_event(10.5, "sales", "c1", "ENTER", position=2, data={"lang": "fr"})
    with EventLog(place, node="a") as el:       # a restart: no migration, appends
        el.call_record("c1", answer=12.0, end=30.0, agent="alice", outcome="answered")
        el.disposition("c1", "sale", "two boxes")
    conn = read_only(place.database)
    try:
        assert conn.read('SELECT call_id, start, answer, "end", caller, queue, agent, outcome,'
                         " disposition, disposition_note, node FROM call_record") == [
            ("c1", 10.0, 12.0, 30.0, "+3312345", "sales", "alice", "answered", "sale",
             "two boxes", "a")]
        assert conn.read("SELECT kind, data, node FROM event") == [
            ("ENTER", '{"lang": "fr"}', "a")]
    finally:
        conn.close()


def test_each_node_closes_out_its_own(place):
    """Node a crashed with a caller waiting and a call connected; node b is
    alive with its own.  b closes a's out (node_lost) and keeps its own."""
    with EventLog(place, node="a") as a, EventLog(place, node="b") as b:
        for log, who in ((a, "alice"), (b, "bob")):
            log.agent_event(T0, who, "LOGIN")
            log.call_record(f"talk-{who}", start=T0 + 1, t_wall=T0 + 1)
            log.queue_event(T0 + 1, "q", f"talk-{who}", "ENTER")
            log.queue_event(T0 + 2, "q", f"talk-{who}", "CONNECT", agent=who, wait=1.0)
            log.call_record(f"wait-{who}", start=T0 + 3, t_wall=T0 + 3)
            log.queue_event(T0 + 3, "q", f"wait-{who}", "ENTER")
        a.flush()
        closed = close_out(b, NODE_LOST, T0 + 10, node="a")
        assert tuple(closed) == (1, 1, 1, 2)
        again = close_out(b, NODE_LOST, T0 + 10, node="a")     # idempotent
        assert tuple(again) == (0, 0, 0, 0)
        # a restarting later finds nothing of its own left open
        assert tuple(close_out(a, "engine_restart", None, node="a")) == (0, 0, 0, 0)
    conn = read_only(place.database)
    try:
        ended = conn.read("SELECT call_id, kind, reason, node FROM event"
                          " WHERE reason = ? AND call_id IS NOT NULL ORDER BY call_id, kind",
                          (NODE_LOST,))
        assert ended == [("talk-alice", "COMPLETE_SYSTEM", NODE_LOST, "b"),
                         ("wait-alice", "EXIT", NODE_LOST, "b")]
        assert conn.read("SELECT agent FROM event WHERE kind = 'LOGOUT'") == [("alice",)]
        assert conn.read('SELECT call_id, outcome, "end" FROM call_record'
                         ' WHERE "end" IS NOT NULL ORDER BY call_id') == [
            ("talk-alice", NODE_LOST, T0 + 10), ("wait-alice", NODE_LOST, T0 + 10)]
        assert conn.read('SELECT COUNT(*) FROM call_record WHERE "end" IS NULL') == [(2,)]
    finally:
        conn.close()


def test_one_sequence_across_nodes_without_gaps(place):
    """Two nodes publish at once; a subscriber of either gets every event of
    both, numbered 1..N with no gap, in the same order on both."""

    async def run():
        logs = {n: EventLog(place, node=n, flush_interval=0.05) for n in ("a", "b")}
        streams = {n: EventStream(logs[n], node=n) for n in logs}
        got: dict[str, list] = {n: [] for n in logs}
        for n, s in streams.items():
            s.subscribe(lambda batch, n=n: got[n].extend(batch or []))

        def publish(n: str, count: int):
            for i in range(count):
                streams[n].publish("agent.added", agent=f"{n}{i}", by="admin", before=None,
                                   after={"agent": f"{n}{i}"})
                if i % 10 == 0:
                    time.sleep(0.01)

        workers = [threading.Thread(target=publish, args=(n, 60)) for n in logs]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        deadline = time.monotonic() + 10
        while min(len(v) for v in got.values()) < 120 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for n in logs:
            streams[n].close()
            logs[n].close()
        return got

    got = asyncio.run(run())
    for n, items in got.items():
        assert [i.seq for i in items] == list(range(1, 121)), n
        bodies = [json.loads(i.body) for i in items]
        assert [b["seq"] for b in bodies] == list(range(1, 121))
        assert {b["node"] for b in bodies} == {"a", "b"}
    assert [i.body for i in got["a"]] == [i.body for i in got["b"]]


def test_day_counters_follow_a_shared_log(place):
    from zoneinfo import ZoneInfo

    with EventLog(place, node="a") as a, EventLog(place, node="b") as b:
        now = time.time()
        a.queue_event(now, "q", "c1", "ENTER")
        b.queue_event(now, "q", "c2", "ENTER")
        a.flush()
        b.flush()
        counters = DayCounters(place.database, ZoneInfo("UTC"), {"q": ((20.0,), 5.0)})
        first = counters.figures(now + 1)["queues"]["q"]["today"]
        b.queue_event(now + 1, "q", "c2", "ABANDON", wait=1.0)
        b.flush()
        later = counters.figures(now + 2)["queues"]["q"]["today"]
    assert first["offered"] == 2 and first["abandoned"] == 0
    assert later["abandoned"] == 1


def test_lost_nodes_are_closed_out_once_and_leave_agents_logged_in_elsewhere(place):
    """Node a dies (its heartbeat stops); b took alice over and logged her
    in.  b's sweep ends a's waiting caller once, and leaves alice alone."""
    from sipagent.store.closeout import close_out_lost_nodes

    t0 = time.time() - 60
    with EventLog(place, node="a", heartbeat_interval=0.05, flush_interval=0.02) as a:
        a.agent_event(t0, "alice", "LOGIN")
        a.call_record("w", start=t0 + 1, t_wall=t0 + 1)
        a.queue_event(t0 + 1, "q", "w", "ENTER")
        a.flush()
        time.sleep(0.2)          # a heartbeat is stamped
    with EventLog(place, node="b") as b:
        b.agent_event(time.time(), "alice", "LOGIN")
        b.flush()
        done: dict = {}
        assert close_out_lost_nodes(b, stale_after=60, done=done) == {}    # a is not stale yet
        later = time.time() + 120
        closed = close_out_lost_nodes(b, stale_after=60, done=done, now=later)
        assert {n: tuple(c) for n, c in closed.items()} == {"a": (1, 0, 0, 1)}
        assert close_out_lost_nodes(b, stale_after=60, done=done, now=later) == {}
    conn = read_only(place.database)
    try:
        assert conn.read("SELECT COUNT(*) FROM event WHERE kind = 'LOGOUT'") == [(0,)]
        assert conn.read("SELECT kind, reason FROM event WHERE call_id = 'w' ORDER BY id") == [
            ("ENTER", None), ("EXIT", "node_lost")]
    finally:
        conn.close()
