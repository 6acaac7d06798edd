"""kill -9 of a real engine with calls bridged and queued, then a restart on
the same data dir: every call record is closed (engine_restart), the waits
of the queued callers run to the last heartbeat, not to their last event,
and `sipacd report` counts each call once."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from engine_proc import Engine
from sipagent.store.eventlog import HEARTBEAT_INTERVAL
from sipua import UA
from test_queue_behaviour import config

pytestmark = pytest.mark.sip

# How far the last heartbeat may lag the crash: its interval plus one
# wake-up of the writer thread (flush interval 0.5 s), and some scheduling.
LAG_BOUND = HEARTBEAT_INTERVAL + 0.5 + 0.5
QUIET = 5.0     # seconds with nothing logged before the kill


def test_kill_9_with_calls_bridged_and_queued(ports, workdir, prompts_dir):
    t0 = datetime.now(timezone.utc)
    with UA(ports(), log_dir=workdir, name="agents") as agents_ua, \
            UA(ports(), log_dir=workdir, name="callers") as callers:
        agents_ua.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        agents = {name: {"uri": agents_ua.uri(name), "queues": ["support"]}
                  for name in ("alice", "bob")}
        cfg = config(ports, workdir, prompts_dir, agents, {"support": {}})
        engine = Engine(workdir, cfg)
        try:
            for i in range(4):
                callers.request("call", call=f"c{i}", to=engine.number("100"),
                                from_user=f"555000{i}")
            assert engine.wait_metric("sipacd_queue_answered_total", 2, timeout=20,
                                      queue="support") == 2
            assert engine.wait_metric("sipacd_queue_waiting_calls", 2, queue="support") == 2
            time.sleep(QUIET)
            killed = time.time()
            os.kill(engine.proc.pid, signal.SIGKILL)
            engine.proc.wait(10)
        finally:
            engine.stop()
        again = Engine(workdir, cfg)           # same config, same data dir
        assert again.stop() == 0, again.log_tail()
    t1 = datetime.now(timezone.utc)

    db = sqlite3.connect(workdir / "data" / "events.sqlite3")
    records = db.execute('SELECT call_id, caller, "end", outcome, hangup_side, answer, talk,'
                         ' wait FROM call_record').fetchall()
    assert len(records) == 4
    assert db.execute('SELECT COUNT(*) FROM call_record WHERE "end" IS NULL'
                      ' OR outcome IS NULL').fetchone() == (0,)
    assert sorted(r[1] for r in records) == [f"555000{i}" for i in range(4)]
    for _, _, end, outcome, side, answer, talk, wait in records:
        assert (outcome, side) == ("engine_restart", "system")
        assert killed - LAG_BOUND <= end <= killed + 0.5
        if answer is not None:
            assert talk == pytest.approx(end - answer)
        else:
            assert wait >= QUIET - LAG_BOUND    # not the ~0 s of its last event
    bridged = db.execute("SELECT call_id FROM event WHERE kind = 'COMPLETE_SYSTEM'").fetchall()
    assert len(bridged) == 2
    exits = db.execute("SELECT x.call_id, x.t, x.wait, e.t, (SELECT MAX(t) FROM event l"
                       "  WHERE l.call_id = x.call_id AND l.id < x.id)"
                       " FROM event x JOIN event e ON e.call_id = x.call_id AND e.kind = 'ENTER'"
                       " WHERE x.kind = 'EXIT' AND x.reason = 'engine_restart'").fetchall()
    assert len(exits) == 2
    for _, t_exit, wait, entered, last_own in exits:
        # up to the last heartbeat before the kill, not to the caller's last event
        assert killed - LAG_BOUND <= t_exit <= killed + 0.5
        assert wait == pytest.approx(t_exit - entered)
        assert t_exit - last_own >= QUIET - LAG_BOUND
    db.close()

    res = subprocess.run([sys.executable, "-m", "sipagent", "report", "-c",
                          str(workdir / "sipacd.toml"), "--from", t0.isoformat(),
                          "--to", t1.isoformat(), "--format", "json"],
                         capture_output=True, text=True, timeout=60, cwd=workdir)
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["queue"] == "support")
    assert (row["offered"], row["answered"], row["abandoned"]) == (4, 2, 0)
    assert row["exited"] == {"engine_restart": 2}
    assert row["closed_by_restart"] == 4
