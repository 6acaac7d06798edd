"""The event log: WAL, batching, durability, crash safety, hostile input."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sipagent.store.eventlog import SCHEMA_VERSION, EventLog, SchemaTooNew, connect

REPO = Path(__file__).resolve().parent.parent


def rows(path, sql="SELECT t, kind, queue, call_id, agent, wait, position, reason, data"
                   " FROM event ORDER BY id", params=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_wal_mode_and_normal_sync(tmp_path):
    path = tmp_path / "data" / "events.sqlite3"      # the data dir is created
    with EventLog(path) as el:
        el.queue_event(1.0, "q", "c1", "ENTER")
        assert el.flush()
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
        assert Path(str(path) + "-wal").exists()
    conn = connect(path)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)     # NORMAL
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_events_survive_reopen(tmp_path):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        el.queue_event(10.5, "sales", "c1", "ENTER", position=2, data={"lang": "fr", "n": 3})
        el.agent_event(11.0, "alice", "PAUSE", reason="lunch")
        el.call_record("c1", start=10.0, caller="+3312345", called="100", queue="sales")
        el.survey_answer("c1", 4, 5, t_wall=99.0)
    with EventLog(path) as el:                         # a restart: no migration, appends
        el.queue_event(12.0, "sales", "c1", "CONNECT", agent="alice", wait=1.5)
        el.call_record("c1", answer=12.0, end=30.0, agent="alice", outcome="answered",
                       wait=1.5, talk=18.0, wrap_up=0.0, hangup_side="caller")
    assert rows(path) == [
        (10.5, "ENTER", "sales", "c1", None, None, 2, None, '{"lang": "fr", "n": 3}'),
        (11.0, "PAUSE", None, None, "alice", None, None, "lunch", None),
        (12.0, "CONNECT", "sales", "c1", "alice", 1.5, None, None, None),
    ]
    # The second upsert filled the record in without erasing the first one's fields.
    assert rows(path, 'SELECT call_id, start, answer, "end", caller, called, queue, agent,'
                      ' outcome, wait, talk, wrap_up, hangup_side FROM call_record') == [
        ("c1", 10.0, 12.0, 30.0, "+3312345", "100", "sales", "alice", "answered", 1.5, 18.0,
         0.0, "caller")]
    assert rows(path, "SELECT t, call_id, queue, score, scale FROM survey_answer") == [
        (99.0, "c1", None, 4, 5)]


def test_rows_are_written_on_the_timer(tmp_path):
    path = tmp_path / "events.sqlite3"
    el = EventLog(path, flush_interval=0.1)
    try:
        el.queue_event(1.0, "q", "c1", "ENTER")
        assert wait_until(lambda: len(rows(path)) == 1)       # no flush() call
    finally:
        el.close()


def test_a_full_batch_is_written_before_the_timer(tmp_path):
    path = tmp_path / "events.sqlite3"
    el = EventLog(path, flush_interval=60, flush_rows=50)
    try:
        for i in range(50):
            el.queue_event(float(i), "q", f"c{i}", "ENTER")
        assert wait_until(lambda: len(rows(path)) == 50)
        for i in range(10):
            el.queue_event(100.0 + i, "q", f"d{i}", "ENTER")
        time.sleep(0.5)
        assert len(rows(path)) == 50                          # waits for the timer...
    finally:
        el.close()
    assert len(rows(path)) == 60                              # ...or the close


HOSTILE = [
    "'; DROP TABLE event; --",
    'Robert"); DROP TABLE call_record;--',
    "?", "?1", ":name", "@x", "$y", "%s", "%(x)s", "\\", "\n\r\t",
    "nul\x00inside", "ünïcödé 客服 😀", "' OR '1'='1", "x" * 10_000,
]


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_strings_are_stored_verbatim(tmp_path, s):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        el.queue_event(1.0, s, s, "EXIT", agent=s, reason=s, data={s: s})
        el.agent_event(2.0, s, "PAUSE", queue=s, reason=s, call_id=s)
        el.call_record(s, caller=s, called=s, queue=s, agent=s, outcome=s, hangup_side=s)
        el.survey_answer(s, 1, 5, t_wall=3.0, queue=s)
    got = rows(path, "SELECT queue, call_id, agent, reason, data FROM event ORDER BY id")
    assert got[0] == (s, s, s, s, json.dumps({s: s}, ensure_ascii=False))
    assert json.loads(got[0][4]) == {s: s}
    assert got[1] == (s, s, s, s, None)
    assert rows(path, "SELECT call_id, caller, called, queue, agent, outcome, hangup_side"
                      " FROM call_record") == [(s,) * 7]
    assert rows(path, "SELECT call_id, queue FROM survey_answer") == [(s, s)]
    tables = {r[0] for r in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"event", "call_record", "survey_answer", "heartbeat", "stream_event",
                      "node_heartbeat"}


@pytest.mark.parametrize("call", [
    lambda el: el.queue_event(1.0, "q", "c", "ENTERED"),                  # unknown kind
    lambda el: el.queue_event(1.0, "q", "c", "LOGIN"),                    # an agent kind
    lambda el: el.agent_event(1.0, "a", "ENTER"),
    lambda el: el.queue_event(1.0, "q", "c", "CONNECT", wait=1.0),        # no agent
    lambda el: el.queue_event(1.0, "q", "c", "CONNECT", agent="a"),       # no wait
    lambda el: el.queue_event(1.0, "q", "c", "ABANDON"),                  # no wait
    lambda el: el.queue_event(1.0, "q", "c", "EXIT"),                     # no reason
    lambda el: el.queue_event(float("nan"), "q", "c", "ENTER"),
    lambda el: el.queue_event(1.0, "q", "c", "ABANDON", wait=float("nan")),
    lambda el: el.queue_event(1.0, 7, "c", "ENTER"),                      # not a str
    lambda el: el.queue_event(1.0, "", "c", "ENTER"),
    lambda el: el.agent_event(1.0, None, "LOGIN"),
    lambda el: el.survey_answer("c", 6, 5),
    lambda el: el.survey_answer("c", 0, 5),
    lambda el: el.call_record("c", wait="soon"),
])
def test_bad_rows_fail_in_the_caller_and_are_not_queued(tmp_path, call):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        with pytest.raises((ValueError, TypeError)):
            call(el)
        el.queue_event(5.0, "q", "ok", "ENTER")
    assert [r[3] for r in rows(path)] == ["ok"]


def test_a_locked_database_does_not_block_the_caller(tmp_path):
    path = tmp_path / "events.sqlite3"
    el = EventLog(path, flush_interval=0.05, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")                 # another writer holds the lock
        started = time.monotonic()
        for i in range(2000):
            el.queue_event(float(i), "q", f"c{i}", "ENTER")
        assert time.monotonic() - started < 1.0            # queued, not written
        assert not el.flush(timeout=0.5)                   # the writer is retrying
        blocker.execute("COMMIT")
        assert el.flush(timeout=10)
    finally:
        blocker.close()
        el.close()
    ids = [r[3] for r in rows(path)]
    assert ids == [f"c{i}" for i in range(2000)]           # all of them, once, in order
    assert el.dropped == 0


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "events.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew):
        EventLog(path)


def test_closed_log_refuses_rows(tmp_path):
    el = EventLog(tmp_path / "events.sqlite3")
    el.close()
    el.close()                                             # twice is fine
    with pytest.raises(RuntimeError):
        el.queue_event(1.0, "q", "c", "ENTER")


# -- crash safety -------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from sipagent.store.eventlog import EventLog
    el = EventLog(sys.argv[1], flush_interval=0.005, flush_rows=40)
    seq = 0
    while True:
        for _ in range(50):
            cid = f"c{seq}"
            el.queue_event(1000.0 + seq, "q", cid, "ENTER", data={"seq": seq, "pad": "x" * 300})
            el.call_record(cid, start=1000.0 + seq, caller=str(seq), t_wall=1.0)
            el.queue_event(1000.5 + seq, "q", cid, "EXIT", reason="timeout", wait=0.5,
                           data={"seq": seq})
            seq += 1
        if seq % 500 == 0:
            el.flush()
            print(seq, flush=True)      # everything before seq is committed
""")


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.011, 0.029, 0.05])
def test_a_killed_writer_leaves_only_whole_batches(tmp_path, delay):
    """SIGKILL while batches are being written: what is in the file is a gapless
    prefix of what was logged (whole transactions), every row intact, and all
    that flush() reported committed is there."""
    path = tmp_path / "events.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(REPO)],
                            stdout=subprocess.PIPE, text=True)
    try:
        committed = [int(proc.stdout.readline()) for _ in range(3)]
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert Path(str(path) + "-wal").stat().st_size > 0     # killed with the WAL in use

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    enter = conn.execute("SELECT call_id, t, data FROM event WHERE kind = 'ENTER' ORDER BY id").fetchall()
    exits = conn.execute("SELECT call_id, t, data FROM event WHERE kind = 'EXIT' ORDER BY id").fetchall()
    records = conn.execute("SELECT call_id, start, caller FROM call_record ORDER BY start").fetchall()
    conn.close()
    n = len(enter)
    assert n >= committed[-1]
    # Operations were logged ENTER(i), record(i), EXIT(i), ENTER(i+1)...: a prefix
    # of that sequence has at most one call cut between its operations.
    assert [c for c, *_ in enter] == [f"c{i}" for i in range(n)]
    assert len(records) in (n, n - 1) and len(exits) in (len(records), len(records) - 1)
    assert [c for c, *_ in exits] == [f"c{i}" for i in range(len(exits))]
    for i, (cid, t, data) in enumerate(enter):
        assert t == 1000.0 + i and json.loads(data) == {"seq": i, "pad": "x" * 300}
    for i, (cid, start, caller) in enumerate(records):
        assert (cid, start, caller) == (f"c{i}", 1000.0 + i, str(i))
    for i, (cid, t, data) in enumerate(exits):
        assert t == 1000.5 + i and json.loads(data) == {"seq": i}

    with EventLog(path) as el:                             # the next start opens it and appends
        el.queue_event(5000.0, "q", "after", "ENTER")
    assert rows(path, "SELECT call_id FROM event ORDER BY id DESC LIMIT 1") == [("after",)]


def test_close_dangling_after_a_crash(tmp_path):
    path = tmp_path / "events.sqlite3"
    with EventLog(path) as el:
        el.agent_event(1.0, "alice", "LOGIN")
        el.agent_event(1.0, "bob", "LOGIN")
        el.agent_event(2.0, "bob", "LOGOUT")
        el.agent_event(3.0, "bob", "LOGIN")
        el.agent_event(4.0, "carol", "LOGIN")
        el.agent_event(5.0, "carol", "LOGOUT")
        el.queue_event(10.0, "q", "answered", "ENTER")
        el.queue_event(12.0, "q", "answered", "CONNECT", agent="alice", wait=2.0)
        el.queue_event(11.0, "q", "waiting", "ENTER")
        el.queue_event(13.0, "q", "gone", "ENTER")
        el.queue_event(14.0, "q", "gone", "ABANDON", wait=1.0)
        el.queue_event(15.0, "q", "moved", "EXIT", reason="timeout", wait=1.0)   # EXIT from q...
        el.queue_event(15.0, "other", "moved", "ENTER")                           # ...into other
        el.queue_event(20.0, "q", "waiting2", "ENTER")
    # the process died here; the next start:
    with EventLog(path) as el:
        assert el.close_dangling("lost") == (3, 1, 2, 0)  # waiting, talking, agents, records
        assert not any(el.close_dangling("lost"))          # idempotent
    got = rows(path, "SELECT t, kind, queue, call_id, agent, wait, reason FROM event"
                     " WHERE reason = 'lost' ORDER BY id")
    assert got == [
        (20.0, "EXIT", "q", "waiting", None, 9.0, "lost"),
        (20.0, "EXIT", "other", "moved", None, 5.0, "lost"),
        (20.0, "EXIT", "q", "waiting2", None, 0.0, "lost"),
        # the connected call ends too (it used to stay open for ever)
        (20.0, "COMPLETE_SYSTEM", "q", "answered", "alice", None, "lost"),
        (20.0, "LOGOUT", None, None, "alice", None, "lost"),
        (20.0, "LOGOUT", None, None, "bob", None, "lost"),
    ]


def test_close_dangling_on_an_empty_log(tmp_path):
    with EventLog(tmp_path / "events.sqlite3") as el:
        assert not any(el.close_dangling())
