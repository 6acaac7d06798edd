"""`sipacd demo` shows calls flowing: answered by the IVR, queued, bridged."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from engine_proc import REPO

pytestmark = pytest.mark.sip


def test_demo_answers_queues_and_bridges_calls(tmp_path):
    # The demo uses its embedded config: fixed ports 5070-5074 and 8070.
    cwd, home = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    res = subprocess.run([sys.executable, "-m", "sipagent", "demo", "--seconds", "25",
                          "--rate", "1"], capture_output=True, text=True, timeout=120,
                         cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                       "XDG_CACHE_HOME": str(home)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "metrics at http://127.0.0.1:8070/metrics" in res.stdout
    # Its data goes to the cache folder it names, nothing into the cwd.
    data = home / "sipacd" / "demo-data"
    assert f"data in {data};" in res.stdout
    assert (data / "events.sqlite3").is_file() and list(cwd.iterdir()) == []
    m = re.search(r"(\d+) calls queued, (\d+) answered by agents", res.stdout)
    assert m, res.stdout
    queued, answered = map(int, m.groups())
    assert queued >= 5 and answered >= 3, res.stdout
    assert '"caller connected to agent"' in res.stderr
