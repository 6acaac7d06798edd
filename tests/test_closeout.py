"""The close-out at start: what a crash left open (waiting callers, connected
calls, logins, call records) ends at the previous run's last heartbeat,
once, with the outcome engine_restart; the schema upgrade that brings the
heartbeat; the report's count of closed-out calls."""
from __future__ import annotations

import io
import sqlite3
import time

import pytest

from sipagent.cli.report import main as report_main
from sipagent.store.eventlog import SCHEMA_VERSION, EventLog
from sipagent.store.report import report

T0 = 1_800_000_000.0


def rows(path, sql, params=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def crashed_run(path, beat: float | None = T0 + 30) -> None:
    """Alice talks to c-talk, c-wait waits; the engine dies with its last
    event at T0+12 and its last heartbeat at ``beat``."""
    with EventLog(path) as el:
        el.agent_event(T0, "alice", "LOGIN")
        el.call_record("c-talk", start=T0 + 9, caller="5550001", called="100", t_wall=T0 + 9)
        el.queue_event(T0 + 9, "q", "c-talk", "ENTER")
        el.queue_event(T0 + 10, "q", "c-talk", "OFFER", agent="alice")
        el.queue_event(T0 + 11, "q", "c-talk", "CONNECT", agent="alice", wait=2.0)
        el.call_record("c-talk", answer=T0 + 11, queue="q", agent="alice", wait=2.0,
                       outcome="answered", t_wall=T0 + 11)
        el.call_record("c-wait", start=T0 + 12, caller="5550002", called="100",
                       t_wall=T0 + 12)
        el.queue_event(T0 + 12, "q", "c-wait", "ENTER")
        el.call_record("c-ivr", start=T0 + 12, caller="5550003", called="200",
                       t_wall=T0 + 12)
    if beat is not None:   # what the crashed run's writer thread stamped last
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO heartbeat (id, t) VALUES (1, ?)", (beat,))


def test_open_calls_end_at_the_last_heartbeat(tmp_path):
    path = tmp_path / "events.sqlite3"
    crashed_run(path)
    with EventLog(path) as el:
        assert el.last_alive == T0 + 30
        assert el.close_dangling() == (1, 1, 1, 3)   # waiting, talking, agents, records
        assert not any(el.close_dangling())          # idempotent
    assert rows(path, "SELECT t, kind, call_id, agent, wait, reason FROM event"
                      " WHERE reason = 'engine_restart' ORDER BY id") == [
        (T0 + 30, "EXIT", "c-wait", None, 18.0, "engine_restart"),     # not 0 s
        (T0 + 30, "COMPLETE_SYSTEM", "c-talk", "alice", None, "engine_restart"),
        (T0 + 30, "LOGOUT", None, "alice", None, "engine_restart"),
    ]
    assert rows(path, 'SELECT call_id, start, answer, "end", caller, outcome, wait, talk,'
                      ' hangup_side FROM call_record ORDER BY call_id') == [
        ("c-ivr", T0 + 12, None, T0 + 30, "5550003", "engine_restart", None, None, "system"),
        ("c-talk", T0 + 9, T0 + 11, T0 + 30, "5550001", "engine_restart", 2.0, 19.0, "system"),
        ("c-wait", T0 + 12, None, T0 + 30, "5550002", "engine_restart", 18.0, None, "system"),
    ]
    assert rows(path, 'SELECT COUNT(*) FROM call_record WHERE "end" IS NULL'
                      ' OR outcome IS NULL') == [(0,)]


def test_without_a_heartbeat_the_last_event_bounds(tmp_path):
    path = tmp_path / "events.sqlite3"
    crashed_run(path, beat=None)
    with EventLog(path) as el:
        assert el.last_alive is None
        el.close_dangling()
    assert rows(path, "SELECT wait FROM event WHERE kind = 'EXIT'") == [(0.0,)]
    assert rows(path, 'SELECT MAX("end") FROM call_record') == [(T0 + 12,)]


def test_a_record_older_than_the_horizon_ends_at_its_last_update(tmp_path):
    path = tmp_path / "events.sqlite3"
    crashed_run(path)
    with EventLog(path) as el:
        el.call_record("c-old", start=T0 - 2 * 86400, caller="1", t_wall=T0 - 2 * 86400 + 5)
    with EventLog(path) as el:
        el.close_dangling()
    assert rows(path, 'SELECT "end", outcome FROM call_record WHERE call_id = ?',
                ("c-old",)) == [(T0 - 2 * 86400 + 5, "engine_restart")]


def test_the_report_counts_each_closed_call_once(tmp_path):
    path = tmp_path / "events.sqlite3"
    crashed_run(path)
    with EventLog(path) as el:
        el.close_dangling()
        el.agent_event(T0 + 100, "alice", "LOGIN")          # the new run
    [row] = report(path, T0, T0 + 200)
    k = row.kpis()
    assert (k["offered"], k["answered"], k["abandoned"]) == (2, 1, 0)
    assert k["exited"] == {"engine_restart": 1}
    assert k["closed_by_restart"] == 2
    assert k["handled"] == 0                    # cut short: not in AHT
    # busy from the answer to the last heartbeat, idle before and after
    assert (row.busy_time, row.idle_time) == pytest.approx((19.0, 11.0 + 100.0))
    out = io.StringIO()
    assert report_main(["--db", str(path), "--from", "2027-01-15T08:00:00Z",
                        "--to", "2027-01-15T08:05:00Z"], out=out) == 0
    assert "2 call(s) were open when the engine stopped" in out.getvalue()


def test_the_heartbeat_is_stamped_while_running(tmp_path):
    path = tmp_path / "events.sqlite3"
    el = EventLog(path, flush_interval=0.02, heartbeat_interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while not rows(path, "SELECT t FROM node_heartbeat") and time.monotonic() < deadline:
            time.sleep(0.02)
        [(first,)] = rows(path, "SELECT t FROM node_heartbeat")
        time.sleep(0.3)
        [(later,)] = rows(path, "SELECT t FROM node_heartbeat")
        assert later > first and time.time() - later < 0.5
    finally:
        el.close()
    with EventLog(path) as again:                   # the next run reads the last stamp
        assert again.last_alive == pytest.approx(time.time(), abs=1.0)


def test_a_version_1_file_is_upgraded(tmp_path):
    path = tmp_path / "events.sqlite3"
    crashed_run(path, beat=None)
    with sqlite3.connect(path) as conn:      # make it the file an older sipacd wrote
        conn.execute("DROP TABLE stream_event")
        conn.execute("DROP INDEX call_record_caller")
        for column in ("disposition", "disposition_note", "caller_name"):
            conn.execute(f"ALTER TABLE call_record DROP COLUMN {column}")
        conn.execute("DROP INDEX call_record_open")
        conn.execute("DROP TABLE heartbeat")
        conn.execute("DROP TABLE node_heartbeat")
        for table in ("event", "call_record"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN node")
        conn.execute("PRAGMA user_version = 1")
    with EventLog(path) as el:
        assert el.last_alive is None
        assert el.close_dangling().records == 3
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(5,)]
    assert rows(path, "SELECT COUNT(*) FROM event WHERE kind = 'ENTER'") == [(2,)]
