"""Callbacks: callers who keep their place in line without holding on.

A caller in a queue presses the callback key (or a web form posts a number):
the entry stays in the ACD core, flagged as a callback.  When it reaches the
front and an agent is free, the engine calls the agent first (so no customer
ever answers into silence), then dials the customer and bridges.  A customer
who does not answer is retried after a delay, up to the queue's limit.
Callbacks are their own outcome in the KPIs, never an abandon.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from acdcore import events as ev
from sipagent.sip.leg import LegEnded, dial

if TYPE_CHECKING:
    from sipagent.queue.runtime import QueueEntry, QueueRuntime

log = structlog.get_logger("sipagent.queue.callback")

CUSTOMER_RING_TIMEOUT = 30.0
_ids = itertools.count(1)


@dataclass
class CallbackJob:
    number: str
    origin: str            # "queue" (key pressed) or "web"
    attempts: int = 0


class CallbackLine:
    def __init__(self, runtime: "QueueRuntime"):
        self.rt = runtime
        self._timers: list[asyncio.TimerHandle] = []

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()

    # -- how entries become callbacks ------------------------------------------
    def requested_in_queue(self, entry: "QueueEntry") -> None:
        """The caller pressed the key: keep the place, then let them go."""
        entry.callback = CallbackJob(number=entry.caller, origin="queue")
        entry.exit_reason = "callback"
        entry.call = None  # the live call leaves; the entry stays in line
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "requested")
        self.rt.stats.exited(entry.queue, time.time(), "callback", entry.call_id,
                             self.rt.now() - entry.entered)
        self.rt.feed(ev.CallbackRequested(self.rt.now(), entry.call_id))

    def request_web(self, number: str, queue: str, at: float | None = None) -> str:
        """A web callback request; ``at`` is a wall-clock time to join the line."""
        from sipagent.queue.runtime import QueueEntry

        if queue not in self.rt.settings:
            raise KeyError(queue)
        call_id = f"web-callback-{int(time.time())}-{next(_ids)}"
        delay = max(0.0, (at or 0.0) - time.time())
        self.rt.stats.callback(queue, time.time(), call_id, "requested")

        def join() -> None:
            entry = QueueEntry(call_id=call_id, queue=queue, entered=self.rt.now(),
                               caller=number, called="", data={"origin": "web"},
                               callback=CallbackJob(number=number, origin="web"))
            self._arrive(entry)

        self._timers.append(asyncio.get_running_loop().call_later(delay, join))
        log.info("web callback requested", call_id=call_id, queue=queue, number=number,
                 delay=round(delay, 1))
        return call_id

    def _arrive(self, entry: "QueueEntry") -> None:
        self.rt.entries[entry.call_id] = entry
        self.rt.stats.offered(entry.queue, time.time(), entry.call_id)
        self.rt.feed(ev.CallArrived(self.rt.now(), entry.call_id, entry.queue, 0, (), True))

    # -- the agent answered: now the customer ------------------------------------
    def agent_ready(self, entry: "QueueEntry", agent_leg) -> None:
        self.rt.spawn(self._dial_customer(entry, agent_leg))

    async def _dial_customer(self, entry: "QueueEntry", agent_leg) -> None:
        job = entry.callback
        job.attempts += 1
        template = self.rt.settings[entry.queue].callback_uri
        if not template:
            log.error("callback without callback_uri", call_id=entry.call_id, queue=entry.queue)
            self.rt._talk_over(entry, "agent")
            return
        uri = template.format(number=job.number)
        log.info("calling the customer back", call_id=entry.call_id, uri=uri,
                 attempt=job.attempts)
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "attempted",
                               entry.agent_id)
        try:
            customer = dial(self.rt._account(), uri, label=f"{entry.call_id}<-callback",
                            headers={"X-Sipacd-Callback": entry.call_id})
        except Exception as exc:
            log.warning("callback dial failed", call_id=entry.call_id, error=str(exc))
            self._retry_or_give_up(entry)
            return
        self.rt.track_leg(customer)
        entry.customer_leg = customer
        try:
            await asyncio.wait_for(asyncio.shield(customer.confirmed), CUSTOMER_RING_TIMEOUT)
        except (LegEnded, TimeoutError):
            customer.end()
            self._retry_or_give_up(entry)
            return
        if agent_leg.is_ended:
            customer.end()
            return
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "connected",
                               entry.agent_id)
        self.rt.stats.answered(entry.queue, time.time(), self.rt.now() - entry.entered,
                               entry.call_id, entry.agent_id)
        if await self.rt.bridge_when_ready(customer, agent_leg, entry.call_id):
            log.info("callback connected", call_id=entry.call_id, agent=entry.agent_id)
        await customer.ended
        if entry.phase == "talking":
            self.rt._talk_over(entry, "caller")

    def _retry_or_give_up(self, entry: "QueueEntry") -> None:
        """The customer did not answer: free the agent, and try again later."""
        job = entry.callback
        s = self.rt.settings[entry.queue]
        entry.phase = "over"
        if entry.agent_leg is not None:
            entry.agent_leg.end()
        # Every entry ends in exactly one outcome; this attempt's is "no answer".
        self.rt.stats.exited(entry.queue, time.time(), "callback_no_answer", entry.call_id,
                             self.rt.now() - entry.entered)
        self.rt.feed(ev.CallEnded(self.rt.now(), entry.call_id))
        self.rt.entries.pop(entry.call_id, None)
        if job.attempts >= s.callback_attempts:
            self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "failed")
            log.warning("callback given up", call_id=entry.call_id, attempts=job.attempts)
            return
        from sipagent.queue.runtime import QueueEntry

        retry = QueueEntry(call_id=f"{entry.call_id}#{job.attempts + 1}", queue=entry.queue,
                           entered=self.rt.now(), caller=entry.caller, called=entry.called,
                           data=entry.data, callback=job)
        self._timers.append(asyncio.get_running_loop().call_later(
            s.callback_retry_delay, self._arrive, retry))
        log.info("callback will be retried", call_id=entry.call_id,
                 in_seconds=s.callback_retry_delay)

    # -- bookkeeping from the runtime ---------------------------------------------
    def finished(self, entry: "QueueEntry") -> None:
        if entry.customer_leg is not None:
            entry.customer_leg.end()
        self.rt.entries.pop(entry.call_id, None)

    def exited(self, entry: "QueueEntry", reason: str) -> None:
        """A callback entry timed out of its queue: nobody will call back."""
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "expired")
        self.rt.entries.pop(entry.call_id, None)
