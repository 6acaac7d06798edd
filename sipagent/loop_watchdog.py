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

log = structlog.get_logger("sipagent.watchdog")

BEAT = 0.05


class LoopWatchdog:
    def __init__(self, flows_dir: Path, *, threshold: float = 0.5,
                 on_stall: Callable[[], None] | None = None):
        self.flows_dir = str(Path(flows_dir).resolve())
        self.threshold = threshold
        self.on_stall = on_stall
        self._stamp = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="watchdog-beat")
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()

    async def _beat(self) -> None:
        while True:
            self._stamp = time.monotonic()
            await asyncio.sleep(BEAT)

    def _watch(self) -> None:
        reported = None
        while not self._stop.wait(BEAT):
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
