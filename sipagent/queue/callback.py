"""Callbacks: callers who keep their place in line without holding on.

A caller in a queue presses the callback key (or a web form posts a number):
the entry stays in the ACD core, flagged as a callback.  When it reaches the
front and an agent is free, the engine calls the agent first (so no customer
ever answers into silence), then dials the customer and bridges.  A customer
who does not answer is retried after a delay, up to the queue's limit.
Callbacks are their own outcome in the KPIs, never an abandon.

Scheduled: a time chosen from the queue's slot menu (``hold.py``) or given
by the API (``at``) holds the request out of the ACD core until it is due,
so it blocks no agent; then it joins like any callback.  Caller-first
(``callback_mode = "caller_first"``): when due the customer is dialled
first, hears ``callback-caller-first`` and waits in the queue as a live
caller at the front (``FRONT_PRIORITY``), with music, until an agent
answers.  Its "as soon as possible" is the expected wait the caller had when
pressing the key (the core's EWT), or at once for a web request.

Durable: every pending request is a row of ``sipagent.store.callbacks``,
changed with each step and marked done in the same step its outcome is
logged; ``attach`` resumes the rows a previous run left.  A request that had
joined its line without its outcome counted yet (a web request) counts it at
shutdown as EXIT ``callback`` (``suspend``), or was closed out at start
after a crash (``engine_restart``): either way it is counted once.

Accounting: a request is one call id through all its attempts, offered
once and ending in one outcome (``CallbackJob.outcome_counted`` says when
that is counted); a retry is not a new offered call, and the request's
call record ends with the last attempt's result.  A caller-first customer
who answers waits in the queue as a live call: a new ENTER under the same
call id, with its own outcome (the wait the agents' KPIs see).

This module knows the runtime only through ``QueueLine`` below (it never
imports runtime.py): runtime -> callback -> entry, one way.
"""
from __future__ import annotations

import asyncio
import functools
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Coroutine, Mapping, Protocol

import structlog

from acdcore import events as ev
from ivrflows.call import CallerHangup
from ivrflows.callback_slots import confirmation_text, offered_slots
from sipagent.queue.customer_call import CalledBack
from sipagent.queue.entry import CallbackJob, EntryEvent, EntryState, QueueEntry
from sipagent.queue.stats import QueueStats
from sipagent.sip.leg import CallLeg, LegEnded
from sipagent.store.callbacks import CallbackRecord

log = structlog.get_logger("sipagent.queue.callback")

CUSTOMER_RING_TIMEOUT = 30.0
MEDIA_TIMEOUT = 5.0
# Above any priority a flow gives: the customer we called comes first.
FRONT_PRIORITY = 1_000_000
PROMPTS = {"en": {"callback-caller-first": "Hello, this is the call back you asked for. "
                                           "Please hold, an agent will be with you shortly."}}


class QueueLine(Protocol):
    """What the callback code needs from the queue runtime, and nothing more."""

    settings: Mapping[str, Any]       # queue name -> config section
    stats: QueueStats
    entries: Mapping[str, QueueEntry]
    scheduler: Any                    # the ACD core: ewt(call_id) for caller-first

    def now(self) -> float: ...
    def feed(self, event) -> None: ...
    def spawn(self, coro: Coroutine) -> asyncio.Task: ...
    def track_leg(self, leg: CallLeg) -> None: ...
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg: ...
    async def bridge_when_ready(self, a: CallLeg, b: CallLeg, call_id: str) -> bool: ...
    async def enqueue(self, call, queue: str, *, priority: int, skills, data) -> Any: ...
    def talk_over(self, entry: QueueEntry, side: str) -> None: ...
    def attempt_over(self, entry: QueueEntry) -> None: ...
    def add_callback(self, entry: QueueEntry, *, offered: bool = True) -> None: ...
    def forget(self, entry: QueueEntry) -> None: ...


@dataclass
class DurableJob(CallbackJob):
    """A job whose outcome may also have been counted by a shutdown or a
    crash (``counted``), not only by the key press."""
    counted: bool = False

    @property
    def outcome_counted(self) -> bool:
        return self.counted or self.origin == "queue"


class CallbackLine:
    def __init__(self, runtime: QueueLine):
        self.rt = runtime
        self.store = None                  # sipagent.store.callbacks.CallbackStore, by attach
        self.schedules: Mapping = {}
        self.prompts = None
        self.jobs: dict[str, CallbackRecord] = {}    # pending requests by call id
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def attach(self, store, schedules: Mapping, prompts, pending: list[CallbackRecord]) -> None:
        """Open for business: where requests are kept, the business hours,
        the prompts; and carry on with the requests a previous run left."""
        self.store, self.schedules, self.prompts = store, schedules, prompts
        prompts.add_texts(PROMPTS)
        for record in pending:
            self._resume(record)
        if pending:
            log.info("pending callbacks resumed", count=len(self.jobs))

    def run_only(self, queues: set[str], pending: list[CallbackRecord]) -> None:
        """A node of several runs the callbacks of the queues it runs now:
        it lets go of those of other queues not yet in line (they stay
        pending in the shared store for the queue's node), and takes up the
        pending ones of its queues it does not run yet (left by a node that
        died, or requested on another node)."""
        for call_id, record in list(self.jobs.items()):
            if record.queue not in queues and call_id in self._timers:
                self._timers.pop(call_id).cancel()
                del self.jobs[call_id]
        taken = 0
        for record in pending:
            if record.queue in queues and record.call_id not in self.jobs:
                self._resume(record)
                taken += 1
        if taken:
            log.info("pending callbacks taken up", count=taken, queues=sorted(queues))

    def _resume(self, record: CallbackRecord) -> None:
        if record.queue not in self.rt.settings:
            log.error("pending callback for a queue no longer configured; left pending",
                      call_id=record.call_id, queue=record.queue)
            return
        if record.joined and not record.counted:
            # Joined without a counted outcome, and not suspended: the
            # previous run crashed, and start-up closed the ENTER out.
            record.counted = True
            self._keep("update", record.call_id, counted=True)
        self.jobs[record.call_id] = record
        self._due(record)

    def stop(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()

    def suspend(self) -> None:
        """Shutdown: a web request waiting in line counts its outcome now
        (EXIT ``callback``) and stays pending on disk for the next run."""
        for entry in list(self.rt.entries.values()):
            record = self.jobs.get(entry.call_id)
            if entry.callback is None or record is None or entry.state is not EntryState.WAITING:
                continue
            entry.advance(EntryEvent.CALLBACK_REQUESTED)
            self.rt.stats.exited(entry.queue, time.time(), entry.exit_reason, entry.call_id,
                                 self.rt.now() - entry.entered)
            record.counted = True
            self._keep("update", record.call_id, counted=True)

    # -- what a waiting caller is offered -----------------------------------------------
    def slots(self, queue: str) -> Callable[[datetime], list[datetime]] | None:
        """The slot menu's times for ``queue``'s callback key, or None (no menu)."""
        s = self.rt.settings[queue]
        if not s.callback_slots or s.callback_schedule not in self.schedules:
            return None
        schedule = self.schedules[s.callback_schedule]
        return lambda now: offered_slots(schedule, now, minutes=s.callback_slot_minutes,
                                         count=s.callback_slots,
                                         lead=timedelta(minutes=s.callback_slot_lead))

    async def confirm(self, call, entry: QueueEntry) -> None:
        """What the caller hears after the key, before the hang-up."""
        record = self.jobs.get(entry.call_id)
        if record is None or not record.scheduled:
            await call.play("callback-confirm")
            return
        zone = self.schedules[self.rt.settings[entry.queue].callback_schedule].zone
        now = datetime.now(timezone.utc)
        await call.say(confirmation_text(datetime.fromtimestamp(record.due, zone), now))

    def pending(self) -> list[dict]:
        """The requests not done, for the API: earliest due first."""
        return [self.describe(r.call_id)
                for r in sorted(self.jobs.values(), key=lambda r: r.due)]

    def describe(self, call_id: str) -> dict:
        r = self.jobs[call_id]
        return {"callback": r.call_id, "queue": r.queue, "number": r.number,
                "origin": r.origin, "at": _iso(r.due), "scheduled": bool(r.scheduled),
                "requested": _iso(r.entered), "attempts": r.attempts, "stage": self._stage(r)}

    def _stage(self, record: CallbackRecord) -> str:
        if record.call_id in self._timers:
            return "scheduled"
        entry = self.rt.entries.get(record.call_id)
        return "waiting" if entry is not None and entry.state is not EntryState.TALKING \
            else "calling"

    # -- how entries become callbacks ------------------------------------------
    def requested_in_queue(self, entry: QueueEntry) -> None:
        """The caller pressed the key: keep the place, then let them go."""
        s = self.rt.settings[entry.queue]
        at = entry.hold.callback_at if entry.hold is not None else None
        caller_first = s.callback_mode == "caller_first"
        entry.callback = DurableJob(number=entry.caller, origin="queue")
        entry.advance(EntryEvent.CALLBACK_REQUESTED)
        entry.call = None  # the live call leaves; the entry stays in line
        now_wall = time.time()
        self.rt.stats.callback(entry.queue, now_wall, entry.call_id, "requested")
        self.rt.stats.exited(entry.queue, now_wall, entry.exit_reason, entry.call_id,
                             self.rt.now() - entry.entered)
        due = at.timestamp() if at is not None else now_wall
        if at is None and caller_first:
            ewt = self._ewt(entry.call_id)
            due += ewt
        record = CallbackRecord(entry.call_id, entry.queue, entry.caller, "queue", due,
                                at is not None, now_wall - (self.rt.now() - entry.entered),
                                joined=True, counted=True)
        self.jobs[record.call_id] = record
        self._keep("add", record)
        if at is None and not caller_first:
            self.rt.feed(ev.CallbackRequested(self.rt.now(), entry.call_id))
            return
        # Out of the line until due: it must not hold an agent's turn meanwhile.
        self.rt.feed(ev.CallWithdrawn(self.rt.now(), entry.call_id, "callback"))
        self.rt.forget(entry)
        self._due(record)
        log.info("callback scheduled", call_id=entry.call_id, queue=entry.queue,
                 at=_iso(due), caller_first=caller_first)

    def _ewt(self, call_id: str) -> float:
        try:
            ewt = float(self.rt.scheduler.ewt(call_id))
        except Exception:
            return 0.0
        return ewt if ewt == ewt and ewt > 0 else 0.0   # NaN: no estimate

    def request_web(self, number: str, queue: str, at: float | None = None) -> str:
        """A web callback request; ``at`` is a wall-clock time to join the line."""
        if queue not in self.rt.settings:
            raise KeyError(queue)
        now = time.time()
        call_id = f"web-callback-{int(now)}-{secrets.token_hex(3)}"
        self.rt.stats.callback(queue, now, call_id, "requested")
        self.rt.stats.record(call_id, start=now, caller=number, called="", queue=queue)
        record = CallbackRecord(call_id, queue, number, "web", max(now, at or now),
                                at is not None, now)
        self.jobs[call_id] = record
        self._keep("add", record)
        self._due(record)
        log.info("web callback requested", call_id=call_id, queue=queue, number=number,
                 delay=round(record.due - now, 1))
        return call_id

    def _due(self, record: CallbackRecord) -> None:
        """Join when ``record.due`` comes (at once if it is past)."""
        self._later(record.call_id, max(0.0, record.due - time.time()),
                    functools.partial(self._join, record))

    def _later(self, call_id: str, delay: float, action: Callable[[], None]) -> None:
        old = self._timers.pop(call_id, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(call_id, None)
            action()

        self._timers[call_id] = asyncio.get_running_loop().call_later(delay, fire)

    def _join(self, record: CallbackRecord) -> None:
        if record.call_id not in self.jobs:
            return
        if self.rt.settings[record.queue].callback_mode == "caller_first":
            self.rt.spawn(self._call_customer_first(record))
            return
        entered = self.rt.now() - max(0.0, time.time() - record.entered)
        entry = QueueEntry(call_id=record.call_id, queue=record.queue, entered=entered,
                           caller=record.number, called="", data={"origin": record.origin},
                           callback=DurableJob(number=record.number, origin=record.origin,
                                               attempts=record.attempts,
                                               counted=bool(record.counted)))
        self.rt.add_callback(entry, offered=not record.joined)
        if not record.joined:
            record.joined = True
            self._keep("update", record.call_id, joined=True)

    # -- the agent answered: now the customer ------------------------------------
    def agent_ready(self, entry: QueueEntry, agent_leg) -> None:
        self.rt.spawn(self._dial_customer(entry, agent_leg))

    def _attempt(self, queue: str, call_id: str, job, agent: str | None) -> str | None:
        """Count one more attempt; the customer's URI (None: not configured)."""
        job.attempts += 1
        self._keep("update", call_id, attempts=job.attempts)
        template = self.rt.settings[queue].callback_uri
        if not template:
            log.error("callback without callback_uri", call_id=call_id, queue=queue)
            return None
        self.rt.stats.callback(queue, time.time(), call_id, "attempted", agent)
        return template.format(number=job.number)

    async def _ring_customer(self, uri: str, call_id: str) -> CallLeg | None:
        """Dial the customer; the leg once answered, None if not."""
        log.info("calling the customer back", call_id=call_id, uri=uri)
        try:
            customer = self.rt.dial_out(uri, label=f"{call_id}<-callback",
                                        headers={"X-Sipacd-Callback": call_id})
        except Exception as exc:
            log.warning("callback dial failed", call_id=call_id, error=str(exc))
            return None
        self.rt.track_leg(customer)
        try:
            await customer.until_answered(CUSTOMER_RING_TIMEOUT)
        except (LegEnded, TimeoutError):
            customer.end()
            return None
        return customer

    async def _dial_customer(self, entry: QueueEntry, agent_leg) -> None:
        job = entry.callback
        uri = self._attempt(entry.queue, entry.call_id, job, entry.agent_id)
        if uri is None:
            self.rt.talk_over(entry, "agent")
            return
        entry.customer_leg = customer = await self._ring_customer(uri, entry.call_id)
        if customer is None:
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
        self._done(entry.call_id, "answered")
        if await self.rt.bridge_when_ready(customer, agent_leg, entry.call_id):
            log.info("callback connected", call_id=entry.call_id, agent=entry.agent_id)
        await customer.ended
        if entry.state is EntryState.TALKING:
            self.rt.talk_over(entry, "caller")

    def _retry_or_give_up(self, entry: QueueEntry) -> None:
        """The customer did not answer: free the agent, and try again later."""
        talking = entry.state is EntryState.TALKING
        entry.advance(EntryEvent.NO_ANSWER)
        if entry.agent_leg is not None:
            entry.agent_leg.end()
        if talking:  # else the agent hung up first and the core has the end already
            self.rt.attempt_over(entry)
        self.rt.forget(entry)
        # The same request again: same call id and record, waiting since it was made.
        retry = QueueEntry(call_id=entry.call_id, queue=entry.queue, entered=entry.entered,
                           caller=entry.caller, called=entry.called, data=entry.data,
                           callback=entry.callback)
        self._missed(entry.queue, entry.call_id, entry.callback, self.rt.now() - entry.entered,
                     functools.partial(self.rt.add_callback, retry, offered=False))

    def _missed(self, queue: str, call_id: str, job, wait: float | None,
                retry: Callable[[], None]) -> None:
        """An attempt went unanswered: ``retry`` later, or give up (``wait``
        None: the request was never offered, so it has no queue outcome)."""
        s = self.rt.settings[queue]
        if job.attempts >= s.callback_attempts:
            # The request's one outcome, if the key press did not count it already.
            if job.outcome_counted or wait is None:
                self.rt.stats.record(call_id, outcome="callback_no_answer")
            else:
                self.rt.stats.exited(queue, time.time(), "callback_no_answer", call_id, wait)
            self.rt.stats.callback(queue, time.time(), call_id, "failed")
            self._done(call_id, "callback_no_answer")
            log.warning("callback given up", call_id=call_id, attempts=job.attempts)
            return
        self.rt.stats.callback(queue, time.time(), call_id, "no_answer")
        record = self.jobs.get(call_id)
        if record is not None:   # a restart meanwhile waits out the delay too
            record.attempts, record.due = job.attempts, time.time() + s.callback_retry_delay
            self._keep("update", call_id, due=record.due)
        self._later(call_id, s.callback_retry_delay, retry)
        log.info("callback will be retried", call_id=call_id, in_seconds=s.callback_retry_delay)

    # -- caller-first: the customer, then the queue --------------------------------------
    async def _call_customer_first(self, record: CallbackRecord) -> None:
        job = DurableJob(number=record.number, origin=record.origin, attempts=record.attempts,
                         counted=bool(record.counted))
        uri = self._attempt(record.queue, record.call_id, job, None)
        customer = uri and await self._ring_customer(uri, record.call_id)
        if not customer:
            self._missed(record.queue, record.call_id, job, None,
                         functools.partial(self._join, record))
            return
        self.rt.stats.callback(record.queue, time.time(), record.call_id, "connected")
        self._done(record.call_id, "answered")
        call = CalledBack(customer, record.call_id, record.number, self.prompts)
        try:
            await asyncio.wait([asyncio.ensure_future(customer.media_ready.wait()),
                                customer.ended], timeout=MEDIA_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
            await call.play("callback-caller-first")
            outcome = await self.rt.enqueue(call, record.queue, priority=FRONT_PRIORITY,
                                            skills={}, data={"callback": record.number})
            log.info("caller-first callback over", call_id=record.call_id,
                     result=outcome.result)
        except CallerHangup:
            log.info("caller-first customer hung up", call_id=record.call_id)
        except Exception:   # e.g. an exit target the customer's call cannot follow
            log.exception("caller-first callback failed", call_id=record.call_id)
        finally:
            customer.end()

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
        self._done(entry.call_id, reason)
        self.rt.forget(entry)

    def _done(self, call_id: str, result: str) -> None:
        self.jobs.pop(call_id, None)
        self._keep("done", call_id, result)

    def _keep(self, method: str, *args, **kw) -> None:
        if self.store is not None:
            self.store.later(method, *args, **kw)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
