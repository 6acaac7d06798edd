"""benchmarks/soak.py --quick as a test: half a minute of real SIP/RTP
traffic (callers who wait, abandon or talk; agents who ring, talk and wrap
up), then nothing may be left behind: no live leg, no caller in a queue, no
agent stuck outside ``available``, no call that never ended, no more open
descriptors than the idle engine had (within the soak's tolerance).

The command line is the thing tested (its JSON and its exit status), so it
runs as a subprocess; its ports come from the same machine-wide locks as
the suite's (tests/portlocks.py).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOAK = REPO / "benchmarks" / "soak.py"
sys.path.insert(0, str(REPO / "benchmarks"))

import soak  # noqa: E402  (benchmarks/soak.py)


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_soak_leaves_nothing_behind(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, str(SOAK), "--quick", "--json-out", str(out)],
                       capture_output=True, text=True, timeout=100, cwd=tmp_path)
    print(r.stdout)
    print(r.stderr[-2000:])
    assert out.exists(), r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["calls"]["completed"] > 0, res["calls"]
    assert res["fleet"]["setup_failed"] == 0, res["fleet"]["fail_codes"]
    # Both ways a caller leaves the queue ran (the quick mix abandons some).
    assert res["calls"]["answered"] > 0 and res["calls"]["abandoned"] > 0, res["calls"]
    assert res["leaks"]["legs"] == 0, res["leaks"]
    assert res["leaks"]["queued"] == 0, res["leaks"]
    assert res["leaks"]["stuck_agents"] == 0, res["stuck_agents"]
    assert res["leaks"]["unfinished_calls"] == 0, res["calls"]
    assert res["leaks"]["fd_growth"] <= res["params"]["fd_tolerance"], res["fds"]
    assert res["ok"] and not res["leaked"]
    assert r.returncode == 0, r.stderr[-2000:]


def _result(**leaks) -> dict:
    """What summarise() makes of a soak whose final state is ``leaks``."""
    base = {"t": 0.0, "calls": 0, "offered": 0, "answered": 0, "abandoned": 0, "rejected": 0,
            "loop_stalls": 0, "legs": 0, "waiting": 0, "rss_mb": 100.0, "fds": 20,
            "fd_kinds": {"file": 20}, "threads": 10, "cpu_s": 0.0}
    idle = dict(base)
    end = dict(base, t=60.0, calls=100, cpu_s=6.0, rss_mb=101.0,
               legs=leaks.get("legs", 0), fds=20 + leaks.get("fds", 0))
    agents = [{"agent": "a0", "state": leaks.get("agent", "available"), "call": None}]
    queues = {"support": {"waiting": leaks.get("queued", 0), "agents": {}}}
    fleet = {"placed": 100 + leaks.get("unfinished", 0), "setup_failed": 0, "fail_codes": {}}
    return soak.summarise(soak.QUICK, 1.0, [idle, end], idle, end, end, end, agents, queues,
                          fleet, fd_tolerance=8, notes=[], timing={})


@pytest.mark.parametrize("leak, named", [
    ({"legs": 1}, "legs"), ({"queued": 1}, "queued"), ({"agent": "wrap_up"}, "stuck_agents"),
    ({"unfinished": 2}, "unfinished_calls"), ({"fds": 9}, "fd_growth")])
def test_each_leak_fails_the_soak(leak, named):
    assert _result()["ok"]
    assert _result(fds=8)["ok"]          # within the tolerance
    r = _result(**leak)
    assert not r["ok"] and r["leaked"] == [named], r["leaks"]
