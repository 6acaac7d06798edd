"""Callbacks: callers who keep their place in line without holding on.

A caller in a queue presses the callback key (or a web form posts a number):
the entry stays in the ACD core, flagged as a callback.  When it reaches the
front and an agent is free, the engine calls the agent first (so no customer
ever answers into silence), then dials the customer and bridges.  A customer
who does not answer is retried after a delay, up to the queue's limit.
Callbacks are their own outcome in the KPIs, never an abandon.

Accounting: a request is one call id through all its attempts, offered
once and ending in one outcome (``CallbackJob.outcome_counted`` says when
that is counted); a retry is not a new offered call, and the request's
call record ends with the last attempt's result.

This module knows the runtime only through ``QueueLine`` below (it never
imports runtime.py): runtime -> callback -> entry, one way.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import time
from typing import Any, Coroutine, Mapping, Protocol

import structlog

from acdcore import events as ev
from sipagent.queue.entry import CallbackJob, EntryEvent, EntryState, QueueEntry
from sipagent.queue.stats import QueueStats
from sipagent.sip.leg import CallLeg, LegEnded

log = structlog.get_logger("sipagent.queue.callback")

CUSTOMER_RING_TIMEOUT = 30.0
_ids = itertools.count(1)


class QueueLine(Protocol):
    """What the callback code needs from the queue runtime, and nothing more."""

    settings: Mapping[str, Any]       # queue name -> config section
    stats: QueueStats

    def now(self) -> float: ...
    def feed(self, event) -> None: ...
    def spawn(self, coro: Coroutine) -> asyncio.Task: ...
    def track_leg(self, leg: CallLeg) -> None: ...
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg: ...
    async def bridge_when_ready(self, a: CallLeg, b: CallLeg, call_id: str) -> bool: ...
    def talk_over(self, entry: QueueEntry, side: str) -> None: ...
    def attempt_over(self, entry: QueueEntry) -> None: ...
    def add_callback(self, entry: QueueEntry, *, offered: bool = True) -> None: ...
    def forget(self, entry: QueueEntry) -> None: ...


class CallbackLine:
    def __init__(self, runtime: QueueLine):
        self.rt = runtime
        self._timers: list[asyncio.TimerHandle] = []

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()

    # -- how entries become callbacks ------------------------------------------
    def requested_in_queue(self, entry: QueueEntry) -> None:
        """The caller pressed the key: keep the place, then let them go."""
        entry.callback = CallbackJob(number=entry.caller, origin="queue")
        entry.advance(EntryEvent.CALLBACK_REQUESTED)
        entry.call = None  # the live call leaves; the entry stays in line
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "requested")
        self.rt.stats.exited(entry.queue, time.time(), entry.exit_reason, entry.call_id,
                             self.rt.now() - entry.entered)
        self.rt.feed(ev.CallbackRequested(self.rt.now(), entry.call_id))

    def request_web(self, number: str, queue: str, at: float | None = None) -> str:
        """A web callback request; ``at`` is a wall-clock time to join the line."""
        if queue not in self.rt.settings:
            raise KeyError(queue)
        call_id = f"web-callback-{int(time.time())}-{next(_ids)}"
        delay = max(0.0, (at or 0.0) - time.time())
        self.rt.stats.callback(queue, time.time(), call_id, "requested")
        self.rt.stats.record(call_id, start=time.time(), caller=number, called="", queue=queue)

        def join() -> None:
            entry = QueueEntry(call_id=call_id, queue=queue, entered=self.rt.now(),
                               caller=number, called="", data={"origin": "web"},
                               callback=CallbackJob(number=number, origin="web"))
            self.rt.add_callback(entry)

        self._timers.append(asyncio.get_running_loop().call_later(delay, join))
        log.info("web callback requested", call_id=call_id, queue=queue, number=number,
                 delay=round(delay, 1))
        return call_id

    # -- the agent answered: now the customer ------------------------------------
    def agent_ready(self, entry: QueueEntry, agent_leg) -> None:
        self.rt.spawn(self._dial_customer(entry, agent_leg))

    async def _dial_customer(self, entry: QueueEntry, agent_leg) -> None:
        job = entry.callback
        job.attempts += 1
        template = self.rt.settings[entry.queue].callback_uri
        if not template:
            log.error("callback without callback_uri", call_id=entry.call_id, queue=entry.queue)
            self.rt.talk_over(entry, "agent")
            return
        uri = template.format(number=job.number)
        log.info("calling the customer back", call_id=entry.call_id, uri=uri,
                 attempt=job.attempts)
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "attempted",
                               entry.agent_id)
        try:
            customer = self.rt.dial_out(uri, label=f"{entry.call_id}<-callback",
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
        wait = self.rt.now() - entry.entered
        if job.outcome_counted:
            self.rt.stats.record(entry.call_id, answer=time.time(), agent=entry.agent_id,
                                 outcome="answered")
        else:
            self.rt.stats.answered(entry.queue, time.time(), wait, entry.call_id, entry.agent_id)
        if await self.rt.bridge_when_ready(customer, agent_leg, entry.call_id):
            log.info("callback connected", call_id=entry.call_id, agent=entry.agent_id)
        await customer.ended
        if entry.state is EntryState.TALKING:
            self.rt.talk_over(entry, "caller")

    def _retry_or_give_up(self, entry: QueueEntry) -> None:
        """The customer did not answer: free the agent, and try again later."""
        job = entry.callback
        s = self.rt.settings[entry.queue]
        talking = entry.state is EntryState.TALKING
        entry.advance(EntryEvent.NO_ANSWER)
        if entry.agent_leg is not None:
            entry.agent_leg.end()
        if talking:  # else the agent hung up first and the core has the end already
            self.rt.attempt_over(entry)
        self.rt.forget(entry)
        if job.attempts >= s.callback_attempts:
            # The request's one outcome, if the key press did not count it already.
            if job.outcome_counted:
                self.rt.stats.record(entry.call_id, outcome="callback_no_answer")
            else:
                self.rt.stats.exited(entry.queue, time.time(), "callback_no_answer",
                                     entry.call_id, self.rt.now() - entry.entered)
            self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "failed")
            log.warning("callback given up", call_id=entry.call_id, attempts=job.attempts)
            return
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "no_answer")
        # The same request again: same call id and record, waiting since it was made.
        retry = QueueEntry(call_id=entry.call_id, queue=entry.queue, entered=entry.entered,
                           caller=entry.caller, called=entry.called, data=entry.data,
                           callback=job)
        self._timers.append(asyncio.get_running_loop().call_later(
            s.callback_retry_delay, functools.partial(self.rt.add_callback, retry,
                                                      offered=False)))
        log.info("callback will be retried", call_id=entry.call_id,
                 in_seconds=s.callback_retry_delay)

    # -- bookkeeping from the runtime ---------------------------------------------
    def finished(self, entry: QueueEntry) -> None:
        if entry.customer_leg is not None:
            entry.customer_leg.end()
        self.rt.forget(entry)

    def exited(self, entry: QueueEntry, reason: str) -> None:
        """A callback entry left its queue (``reason``): nobody will call back."""
        if entry.callback.outcome_counted:
            self.rt.stats.record(entry.call_id, outcome=reason)
        else:
            self.rt.stats.exited(entry.queue, time.time(), reason, entry.call_id,
                                 self.rt.now() - entry.entered)
        self.rt.stats.callback(entry.queue, time.time(), entry.call_id, "expired")
        self.rt.forget(entry)
