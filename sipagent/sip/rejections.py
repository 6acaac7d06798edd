"""Refused SIP requests: counted always, logged sparingly.

A flood of refused requests (a scanner, a misconfigured PBX, an attack)
must not become a flood of log lines: one line per refusal buried the
engine's log under 2000 WARNINGs in ten seconds.  So the first refusal of a
reason is logged at once, with its details; later ones of that reason are
only counted, per source, and a summary of the counts is logged at most
once per ``every`` seconds while they keep coming.  A reason that has been
quiet for a whole period is "new" again: its next refusal is logged in
full.  The metric counts every refusal regardless.

The number of sources kept per reason is bounded (spoofed UDP sources are
free to invent); the rest are summed under ``"other"``.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Callable

import structlog

log = structlog.get_logger("sipagent.sip.rejections")

MAX_SOURCES = 10


class RejectionLog:
    """``rejected(reason, source, message, **details)`` for each refusal;
    ``count(reason)`` is the metric (a prometheus counter's ``inc`` or any
    callable).  ``call_later(delay, fn)`` schedules the summary (default:
    the running asyncio loop's); ``clock`` is monotonic seconds."""

    def __init__(self, count: Callable[[str], None] = lambda reason: None, *,
                 every: float = 10.0, logger=log,
                 clock: Callable[[], float] = time.monotonic,
                 call_later: Callable[[float, Callable[[], None]], object] | None = None):
        self.every = every
        self._count = count
        self._log = logger
        self._clock = clock
        self._call_later = call_later
        self._logged: set[str] = set()              # reasons logged in full lately
        self._held: dict[str, Counter[str]] = {}    # reason -> source -> refusals not logged
        self._since = 0.0
        self._timer = None

    def rejected(self, reason: str, source: str, message: str, **details) -> None:
        self._count(reason)
        if reason not in self._logged:
            self._logged.add(reason)
            self._log.warning(message, reason=reason, source=source, **details)
            self._arm()
            return
        sources = self._held.setdefault(reason, Counter())
        if source not in sources and len(sources) >= MAX_SOURCES:
            source = "other"
        sources[source] += 1

    def _arm(self) -> None:
        if self._timer is not None:
            return
        self._since = self._clock()
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._timer = call_later(self.every, self.flush)

    def flush(self) -> None:
        """Log what was held back (the timer calls this); a period with
        nothing held ends the quiet suppression of every reason."""
        self._timer = None
        if not self._held:
            self._logged.clear()
            return
        held, self._held = self._held, {}
        # Reasons that stayed quiet this period are new again next time.
        self._logged &= set(held)
        self._log.warning("SIP requests refused (summary)",
                          seconds=round(self._clock() - self._since, 1),
                          refused={reason: dict(sources.most_common())
                                   for reason, sources in held.items()},
                          total=sum(sum(s.values()) for s in held.values()))
        self._arm()

    def close(self) -> None:
        """Log what is still held and stop the timer (at shutdown)."""
        if self._held:
            self.flush()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
