"""What a running process costs, read from Linux's /proc/<pid>: CPU time,
resident memory, threads and open file descriptors.

Read from outside so that a benchmark measures the engine without asking
it: an engine that leaks or stalls answers its own questions badly.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path


def _stat_cpu(stat: str) -> float:
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far."""
    return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far by thread name, of the live threads: the engine
    names its own (sipagent.tasks.name_os_thread); the process's first
    thread is the event loop's ("loop"); the unnamed rest are pjmedia's C
    threads (RTP poller, bridge clock) and executor pools ("other")."""
    by_name: Counter = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:       # ended meanwhile
            continue
        comm = stat.split(" (", 1)[1].rsplit(")", 1)[0]
        name = "loop" if int(tid) == pid else "other" if comm.startswith("python") else comm
        by_name[name] += _stat_cpu(stat)
    return dict(by_name)


def _status(pid: int, key: str) -> str | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


def rss_mb(pid: int) -> float:
    value = _status(pid, "VmRSS")
    return int(value.split()[0]) / 1024 if value else math.nan


def threads(pid: int) -> int:
    return int(_status(pid, "Threads") or 0)


def fd_kinds(pid: int) -> dict[str, int]:
    """Open descriptors by kind (socket, pipe, anon_inode, file, ...): which
    kind grows tells a leaked socket from a leaked file."""
    kinds: Counter = Counter()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:       # closed between listdir and readlink
            continue
        if target.startswith("/"):
            kind = "file"
        else:                 # "socket:[123]", "pipe:[45]", "anon_inode:[eventpoll]"
            kind = target.split(":", 1)[0]
        kinds[kind] += 1
    return dict(sorted(kinds.items()))
