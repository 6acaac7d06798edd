"""benchmarks/fax_engine.py as a test: its smallest round (one sender, one
page) runs end to end against the real engine and reports a fax that
arrived whole, with the engine's CPU measured."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sip, pytest.mark.slow, pytest.mark.timeout(240)]

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "fax_engine.py"


def test_one_fax_through_the_engine_is_measured():
    run = subprocess.run([sys.executable, str(BENCH), "--concurrency", "1", "--pages", "1",
                          "--idle-seconds", "2", "--timeout", "150", "--json"],
                         capture_output=True, text=True, timeout=220)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(run.stdout)
    (r,) = out["rounds"]
    assert (r["ok"], r["total"], r["pages_ok"]) == (1, 1, 1), r
    assert r["pixel_identical"] == 1 and r["received_files"] == 1, r
    (record,) = r["engine_records"]
    assert record["ok"] and record["pages"] == 1, record
    # The engine was busy for the round: some CPU, and a line time in the
    # range of one A4 page at 9600-14400 bit/s plus training.
    assert r["engine_cpu_s"] > 0 and 0 < r["core_pct"] < 200, r
    assert 10 < r["line_s_per_page_median"] < 120, r
    assert out["idle"]["core_pct"] >= 0
