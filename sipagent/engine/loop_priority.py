"""The event loop thread's CPU priority: ``sip.loop_priority``.

Every SIP message, ACD decision and dial happens on this one thread, while
the audio runs on pjmedia's threads beside it (the RTP poller, the
conference bridge's clock).  Under load they and the other processes on
the machine compete for the same cores, and the kernel preempts the loop
in the middle of a dial.  benchmarks/load.py at 50 calls/s on 2 cores,
the loop at nice -10: the dispatches over 2 ms had about 1.9 involuntary
context switches each against 0.08 for the others, and 3.2 ms of wall time
for 1.3 ms of CPU.  They rarely waited for a lock or the GIL (0.2
voluntary switches each).

- ``normal``: the thread is left as it was started.
- ``high``: nice -10.  The kernel weighs the thread higher, but still
  preempts it: dispatch p99 was 3.2 ms.
- ``realtime``: SCHED_RR at the lowest real-time priority (1), as
  Asterisk's ``-p`` does.  No ordinary thread preempts it: dispatch p99
  0.99-1.19 ms against 3.31 ms at ``normal``, and the audio stayed
  intact.  The kernel's real-time throttling (``sched_rt_runtime_us``, 95 %
  of each second by default) still leaves the other threads of a core
  their turn if the loop ever spins.

The threads and programs the loop starts afterwards (the default
executor's workers, fax tools) must not inherit this, so the thread also
gets SCHED_RESET_ON_FORK: its children start as ordinary threads at nice
0.  Both raised settings need root's CAP_SYS_NICE, or for a service user
a resource limit that allows them: RLIMIT_RTPRIO >= 1 for ``realtime``,
RLIMIT_NICE >= 30 for ``high`` (systemd's ``LimitRTPRIO=1`` and
``LimitNICE=-10``, as in deploy/systemd/sipacd.service).  Without either,
the engine says so and runs as it is.
"""
from __future__ import annotations

import os
import threading

import structlog

log = structlog.get_logger("sipagent.engine.loop_priority")

HIGH_NICE = -10
REALTIME_PRIORITY = 1


def set_loop_priority(priority: str) -> bool:
    """Give the calling thread (the loop) ``priority``; True if it has it now."""
    if priority == "normal":
        return True
    try:
        if priority == "realtime":
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(REALTIME_PRIORITY))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER | os.SCHED_RESET_ON_FORK, os.sched_param(0))
            # PRIO_PROCESS with a thread id sets that thread alone (Linux).
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HIGH_NICE)
    except PermissionError as exc:
        log.warning("sip.loop_priority not applied: it needs CAP_SYS_NICE",
                    wanted=priority, error=str(exc),
                    hint="or the resource limit LimitRTPRIO=1 (realtime), LimitNICE=-10 (high)")
        return False
    log.info("event loop thread's priority set", priority=priority)
    return True
