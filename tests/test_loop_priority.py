"""``sip.loop_priority``: the loop thread gets the asked-for scheduling,
and the threads and programs it starts afterwards do not inherit it.

Run in a thread of its own, so that pytest's main thread keeps its
scheduling.  Without CAP_SYS_NICE (not root, or root without it) the
raise must be refused, said, and leave the thread as it was.
"""
from __future__ import annotations

import os
import subprocess
import threading

import pytest
import structlog

from sipagent.engine.loop_priority import HIGH_NICE, REALTIME_PRIORITY, set_loop_priority

CAP_SYS_NICE = 23


def _may_raise() -> bool:
    """CAP_SYS_NICE in this process's effective set (root has it, unless dropped)."""
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    return False


def scheduling(stat: str) -> tuple[int, int, int]:
    """(policy, real-time priority, nice) from a /proc/.../stat line."""
    fields = stat.rsplit(")", 1)[1].split()
    # After the name: field 3 is fields[0]; nice is field 19, rt_priority 40, policy 41.
    return int(fields[38]), int(fields[37]), int(fields[16])


def _scheduling(tid: int) -> tuple[int, int, int]:
    return scheduling(open(f"/proc/self/task/{tid}/stat").read())


def _in_a_thread(priority: str) -> dict:
    seen: dict = {}

    def loop_thread():
        with structlog.testing.capture_logs() as logged:
            seen["applied"] = set_loop_priority(priority)
        seen["logged"] = logged
        seen["loop"] = _scheduling(threading.get_native_id())
        child = threading.Thread(target=lambda: seen.__setitem__(
            "child", _scheduling(threading.get_native_id())))
        child.start()
        child.join()
        seen["program"] = scheduling(subprocess.run(
            ["cat", "/proc/self/stat"], capture_output=True, text=True, check=True).stdout)

    t = threading.Thread(target=loop_thread)
    t.start()
    t.join(10)
    return seen


ORDINARY = (os.SCHED_OTHER, 0, 0)


@pytest.mark.parametrize("priority, expected", [
    ("realtime", (os.SCHED_RR, REALTIME_PRIORITY, 0)),
    ("high", (os.SCHED_OTHER, 0, HIGH_NICE)),
])
def test_the_loop_thread_gets_its_priority_and_its_children_do_not(priority, expected):
    seen = _in_a_thread(priority)
    if not _may_raise():
        assert seen["applied"] is False and seen["loop"] == ORDINARY
        assert [e["event"] for e in seen["logged"]] == \
            ["sip.loop_priority not applied: it needs CAP_SYS_NICE"]
        return
    assert seen["applied"] is True
    assert seen["loop"] == expected
    assert seen["child"] == ORDINARY
    assert seen["program"] == ORDINARY


def test_normal_leaves_the_thread_alone():
    seen = _in_a_thread("normal")
    assert seen["applied"] is True
    assert seen["loop"] == seen["child"] == seen["program"] == ORDINARY
