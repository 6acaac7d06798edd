"""Stopping the processes a test started: by PID, escalating, with timeouts."""
from __future__ import annotations

import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen, *, term_wait: float = 3.0,
                 kill_wait: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL, each followed by a bounded wait; returns the
    exit code (None only if even SIGKILL did not end it in time)."""
    for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, kill_wait)):
        if proc.poll() is not None:
            break
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    return proc.returncode


def quit_then_stop(proc: subprocess.Popen, *, timeout: float = 8.0) -> int | None:
    """Our SIP helper processes (simphones.phone, simphones.fax_machine) shut down
    cleanly on a quit line or EOF on stdin: ask, wait up to ``timeout``,
    then stop_process() whatever is left.  Returns the exit code."""
    if proc.poll() is None:
        try:
            proc.stdin.write(b'{"cmd": "quit"}\n')
            proc.stdin.close()
        except OSError:          # already gone: the pipe is broken
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    return stop_process(proc)
