"""benchmarks/dial_cost.py times real dials: each part of every dial is
measured, and the parts add up to the whole."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sip

REPO = Path(__file__).resolve().parent.parent


def test_dial_cost_times_each_part_of_a_dial():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "dial_cost.py"), "--quick",
                           "--json"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["rounds"] == 15, res
    for row in ("first", "second"):
        for clock in ("wall", "cpu"):
            parts = res[row][clock]
            assert all(parts[p]["p50_ms"] > 0 for p in ("leg", "param", "make_call")), parts
            # makeCall sends the INVITE: it is never the cheap part.
            assert parts["make_call"]["p50_ms"] > parts["param"]["p50_ms"], parts
            # Medians of parts need not add up exactly, but no part exceeds the whole.
            assert parts["dial"]["p50_ms"] >= parts["make_call"]["p50_ms"], parts
            assert parts["dial"]["p90_ms"] >= parts["dial"]["p50_ms"], parts
