"""An asyncio loop on virtual time: when every task waits, the clock jumps to
the next timer, so a kit run takes no wall time and always ends the same."""
from __future__ import annotations

import asyncio
import selectors
from datetime import datetime, timezone

from ivrflows.kit.errors import FlowMistake, FlowStalled

# Where the virtual clock starts, a fixed Monday morning: a kit run must not
# depend on the day the tests run.
DEFAULT_START = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Instead of blocking until the next timer, moves the clock there."""

    def __init__(self, limit: float) -> None:
        super().__init__()
        self.now = 0.0
        self.limit = limit

    def select(self, timeout: float | None = None):  # type: ignore[override]
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise FlowStalled("the flow waits for something that never happens "
                              "(an Event or Future no timer or caller will set)")
        if self.now + timeout > self.limit:
            self.now = self.limit
            raise FlowMistake(f"the flow is still running after {self.limit:g} s of call "
                              "time (a loop that never ends?)")
        self.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time that stops a run at ``limit`` seconds."""

    def __init__(self, limit: float = float("inf")) -> None:
        self._virtual = _VirtualSelector(limit)
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now

    def close(self) -> None:
        # A stalled or runaway flow leaves tasks behind; cancel them so that
        # their finally blocks run and asyncio does not warn at exit.
        self._virtual.limit = float("inf")
        pending = [t for t in asyncio.all_tasks(self) if not t.done()]
        for task in pending:
            task.cancel()
        if pending and not self.is_closed():
            try:
                self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            except FlowStalled:
                pass
        super().close()
