"""`sipacd report`, computed from the event log alone, gives the same numbers
as /metrics for the same calls (over real SIP, with a restart in between)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import config

pytestmark = pytest.mark.sip


def test_report_matches_metrics(ports, workdir, prompts_dir):
    t0 = datetime.now(timezone.utc)
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", after=1.0, code=200, hangup_after=1.0)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]}}
        cfg = config(ports, workdir, prompts_dir, agents, {"support": {"wrap_up": 1}})
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"))   # answered
            alice.wait_event({"ev": "incoming"}, timeout=15)
            caller.request("call", call="c2", to=engine.number("100"))   # waits, then abandons
            caller.wait_state("c2", "CONFIRMED")
            time.sleep(1.5)
            caller.request("hangup", call="c2")
            engine.wait_metric("sipacd_queue_abandoned_total", 1, queue="support")
            caller.wait_state("c1", "DISCONNECTED", timeout=15)
            engine.wait_metric("sipacd_queue_handle_time_seconds_count", 1, queue="support")
            time.sleep(1.5)  # the log counts a handled call when its wrap-up (1 s) ends
            metrics = {name: engine.metric(name, queue="support") for name in (
                "sipacd_queue_offered_total", "sipacd_queue_answered_total",
                "sipacd_queue_abandoned_total", "sipacd_queue_answer_wait_seconds_sum",
                "sipacd_queue_abandon_wait_seconds_sum")}
            assert engine.stop() == 0  # flushes the log
    t1 = datetime.now(timezone.utc)
    res = subprocess.run([sys.executable, "-m", "sipagent", "report", "-c", str(engine.config_path),
                          "--from", t0.isoformat(), "--to", t1.isoformat(), "--format", "json"],
                         capture_output=True, text=True, timeout=60, cwd=workdir)
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["queue"] == "support")
    assert row["offered"] == metrics["sipacd_queue_offered_total"] == 2
    assert row["answered"] == metrics["sipacd_queue_answered_total"] == 1
    assert row["abandoned"] == metrics["sipacd_queue_abandoned_total"] == 1
    assert row["asa"] == pytest.approx(metrics["sipacd_queue_answer_wait_seconds_sum"], abs=1e-6)
    assert row["mean_abandon_wait"] == pytest.approx(
        metrics["sipacd_queue_abandon_wait_seconds_sum"], abs=1e-6)
    assert row["handled"] == 1
