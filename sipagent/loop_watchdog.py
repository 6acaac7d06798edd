"""Detects code that blocks the event loop, and names it.

Every call's flow, SIP polling and the HTTP server share one loop, so a flow
that sleeps synchronously or computes for a second freezes every call.  A
heartbeat task stamps the time; a plain thread (which never touches pjsua2
or asyncio objects) notices a stale stamp, reads the loop thread's Python
stack, and logs the innermost frame in a flow file, so the author sees which
line blocked.  One log line per stall.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import structlog

from sipagent.tasks import name_os_thread

log = structlog.get_logger("sipagent.watchdog")

# The loop stamps the time this often, and the thread looks this often, as
# parts of the threshold: a stall is reported within 1.5 thresholds, and an
# idle engine wakes for the watchdog 14 times a second (it was 40 at a fixed
# 50 ms, a tenth of an idle engine's CPU).
BEATS_PER_THRESHOLD = 5
LOOKS_PER_THRESHOLD = 2


class LoopWatchdog:
    def __init__(self, flows_dir: Path, *, threshold: float = 0.5,
                 on_stall: Callable[[], None] | None = None):
        self.flows_dir = str(Path(flows_dir).resolve())
        self.threshold = threshold
        self.on_stall = on_stall
        self._stamp = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._beat: asyncio.Handle | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._stamp_now(asyncio.get_running_loop())
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.cancel()

    def _stamp_now(self, loop: asyncio.AbstractEventLoop) -> None:
        # A callback, not a task: a coroutine's sleep costs several times this.
        self._stamp = time.monotonic()
        self._beat = loop.call_later(self.threshold / BEATS_PER_THRESHOLD, self._stamp_now, loop)

    def _watch(self) -> None:
        name_os_thread("loop-watchdog")
        reported = None
        while not self._stop.wait(self.threshold / LOOKS_PER_THRESHOLD):
            stamp = self._stamp
            stalled = time.monotonic() - stamp
            if stalled < self.threshold:
                reported = None
                continue
            if reported == stamp:
                continue  # this stall is logged already
            reported = stamp
            where = self._blocking_frame()
            if self.on_stall:
                self.on_stall()
            log.warning("event loop blocked", seconds=round(stalled, 2), **where)

    def _blocking_frame(self) -> dict:
        frame = sys._current_frames().get(self._loop_thread)
        innermost = None
        flow = None
        while frame is not None:
            code = frame.f_code
            if innermost is None:
                innermost = f"{code.co_filename}:{frame.f_lineno}"
            if flow is None and code.co_filename.startswith(self.flows_dir):
                flow = f"{code.co_filename}:{frame.f_lineno}"
            frame = frame.f_back
        return {"flow": flow, "at": innermost}
