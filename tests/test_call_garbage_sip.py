"""A finished call leaves nothing for the cyclic garbage collector, over real
SIP on 127.0.0.1: its legs, SipCall and queue entry are freed by reference
counting when the call ends.  A cycle among them used to keep each queued
call (its legs, futures, events and loggers) until a collection found it:
gen-2 collections of tens of milliseconds on the loop, every few seconds
under load (benchmarks/load.py).

The engine runs with tests/gc_probe on PYTHONPATH: it keeps whatever the
collector finds unreachable and reports it by type on request."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import agent_state, config, wait_until

pytestmark = pytest.mark.sip

PROBE = Path(__file__).parent / "gc_probe"
# What one call is made of in the engine; none of it may be found by the collector.
CALL_PARTS = ("SipCall", "CallLeg", "QueueEntry", "CallerHold", "Conversation", "LegEnded")


def garbage(report: Path) -> dict:
    """Ask the engine's probe to collect now; what it found, by type."""
    report.unlink(missing_ok=True)
    Path(str(report) + ".ask").touch()
    wait_until(report.exists, 10, "the garbage report")
    return json.loads(report.read_text())


def test_finished_calls_leave_no_cyclic_garbage(ports, workdir, prompts_dir, monkeypatch):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="busy", code=486)     # every offer refused
        phones.request("auto_answer", user="good", after=0.2, code=200, tone=880)
        agents = {name: {"uri": phones.uri(name), "queues": ["support"]}
                  for name in ("busy", "good")}
        queues = {"support": {"strategy": "linear"}}
        report = workdir / "garbage.json"
        # Only the engine started from here on sees the probe (the phones run already).
        monkeypatch.setenv("PYTHONPATH", str(PROBE))
        monkeypatch.setenv("SIPACD_GC_PROBE", str(report))
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            before = garbage(report)["types"]
            assert before.get("GcProbeSentinel") == 1, before     # the probe sees a cycle
            for i in range(3):
                caller.request("call", call=f"c{i}", to=engine.number("100"))
                inc = wait_until(lambda: phones.events({"ev": "incoming", "user": "good"})[i:],
                                 15, f"call {i} at the good phone")[0]
                phones.wait_state(inc["call"], "CONFIRMED", timeout=10)
                time.sleep(0.3)
                caller.request("hangup", call=f"c{i}")
                phones.wait_state(inc["call"], "DISCONNECTED", timeout=10)
                wait_until(lambda: agent_state(engine, "good") == "available", 10, "good free")
            engine.assert_settled()
            refused = phones.events({"ev": "incoming", "user": "busy"})
            assert len(refused) >= 3, refused                  # the refused-offer path ran
            after = garbage(report)["types"]
            found = {t: after.get(t, 0) - before.get(t, 0) for t in CALL_PARTS}
            assert not any(found.values()), found
