"""The pjsua2 this environment imports is the server build: one process holds
500 simultaneous calls (the PyPI wheels stop at 4).

Runs benchmarks/pjsua2_capacity.py as a subprocess: it needs two pjsua2
libraries (caller and answerer), and a process may hold only one.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks" / "pjsua2_capacity.py"
CALLS = 500


def _ports_needed(calls: int) -> int:
    # Loaded here, not at collection: the module imports pjsua2, and the
    # `sip` marker skips this test when pjsua2 is not importable.
    spec = importlib.util.spec_from_file_location("pjsua2_capacity_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ports_needed(calls)


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_process_holds_500_simultaneous_calls(ports, workdir):
    base = ports.block(_ports_needed(CALLS))
    cmd = [sys.executable, str(BENCH), "--calls", str(CALLS), "--rate", "100",
           "--hold", "3", "--port-base", str(base), "--timeout", "120", "--json"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=200, env=env,
                          cwd=REPO)
    (workdir / "pjsua2_capacity.stderr").write_text(proc.stderr)
    tail = proc.stderr[-3000:]
    assert proc.stdout.strip(), f"no output (exit {proc.returncode}); stderr:\n{tail}"
    res = json.loads(proc.stdout)
    assert "error" not in res, (res["error"], tail)
    summary = {k: res.get(k) for k in ("placed", "max_simultaneously_confirmed", "failures",
                                       "failure_reasons", "error", "rtp", "wall_s")}
    assert res["max_simultaneously_confirmed"] >= CALLS, summary
    assert res["failures"] == 0, summary
    assert proc.returncode == 0, (summary, tail)
    # Media really ran on every call, and teardown was complete.
    assert res["rtp"]["calls_flowing_both_ways"] == CALLS, summary
    assert res["not_disconnected"] == 0, summary
    assert res["uas_summary"]["answered"] == CALLS, res["uas_summary"]
    assert res["uas_exit_code"] == 0
