"""benchmarks/b2bua_churn.py, the raw B2BUA that ``load.py --floor``
compares the engine with, carries real calls: the fleet's callers are
answered, their agents dialled and answered, and the calls end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sip

REPO = Path(__file__).resolve().parent.parent


def test_the_raw_b2bua_carries_the_fleets_calls():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "b2bua_churn.py"), "--json", "--rate", "5",
         "--agents", "10", "--talk", "1", "--warmup", "3", "--duration", "6"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["offered"] >= 10, res          # ~30 expected in 6 s at 5/s
    assert res["failed"] == 0, res
    assert res["fleet"]["setup_failed"] == 0, res
    assert res["fleet"]["answered"] >= 5, res  # callers who reached an agent and hung up
    assert res["pairs_median"] >= 1, res
    assert res["cpu_percent"] > 0 and res["cpu_ms_per_call"] > 0, res
