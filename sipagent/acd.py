"""The queue runtime: turns the ACD core's actions into SIP and media.

acdcore decides (who gets which caller, when an offer times out); this file
does: it dials agents, plays music on hold, bridges audio, hangs up losing
legs, and feeds what happened on the wire back to the core as events.  All
on the loop thread, so the core never needs a lock.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable, Mapping

import structlog

from acdcore import actions as act
from acdcore import events as ev
from acdcore.model import AgentConfig, QueueConfig
from ivrflows.call import CallerHangup, QueueOutcome
from sipagent.leg import CallLeg, LegEnded, dial
from sipagent.media import MusicOnHold, bridge
from sipagent.metrics import EngineMetrics

try:
    from acdcore.scheduler import Scheduler
except ImportError:  # compiled core not built: the reference has the same rules
    from acdcore.reference import ReferenceScheduler as Scheduler

log = structlog.get_logger("sipagent.acd")

# SIP answers that mean "this agent's phone is busy", as opposed to declined.
BUSY_CODES = {486, 600}


@dataclass
class AgentLine:
    agent_id: str
    uri: str
    auto_login: bool = True


@dataclass
class QueueEntry:
    call: object                 # sipagent.sipcall.SipCall
    queue: str
    entered: float
    data: Mapping[str, str]
    phase: str = "waiting"       # waiting -> talking -> over
    agent_id: str | None = None
    agent_leg: CallLeg | None = None
    exit_reason: str | None = None
    answered_at: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class QueueRuntime:
    def __init__(self, queues: list[QueueConfig], agents: list[AgentConfig],
                 lines: dict[str, AgentLine], *, account_provider: Callable[[], object],
                 hold_music: Callable[[str], MusicOnHold], metrics: EngineMetrics,
                 track_leg: Callable[[CallLeg], None]):
        self.scheduler = Scheduler(queues, agents)
        self.queue_names = [q.name for q in queues]
        self.lines = lines
        self._account = account_provider
        self._hold_music = hold_music
        self._metrics = metrics
        self._track_leg = track_leg
        self.entries: dict[str, QueueEntry] = {}
        self.offers: dict[tuple[str, str], CallLeg] = {}
        self._wake = asyncio.Event()
        self._timer_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        now = self.now()
        for line in self.lines.values():
            if line.auto_login:
                self.feed(ev.AgentLoggedIn(now, line.agent_id))
                self.feed(ev.AgentReady(now, line.agent_id))
        self._timer_task = self._loop.create_task(self._timers(), name="acd-timers")

    def stop(self) -> None:
        # Callers we hang up for shutdown did not abandon; count them apart.
        for entry in self.entries.values():
            if entry.phase == "waiting" and not entry.exit_reason:
                entry.exit_reason = "shutdown"
                self._metrics.exited.labels(entry.queue, "shutdown").inc()
        if self._timer_task:
            self._timer_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for leg in self.offers.values():
            leg.end()

    def now(self) -> float:
        return self._loop.time()

    # -- the core loop: events in, actions out --------------------------------
    def feed(self, event) -> None:
        try:
            actions = self.scheduler.handle(event)
        except Exception:
            log.exception("acd core rejected an event", event=repr(event))
            return
        for action in actions:
            try:
                self._perform(action)
            except Exception:
                log.exception("acd action failed", action=repr(action))
        self._wake.set()

    async def _timers(self) -> None:
        while True:
            deadline = self.scheduler.next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.now())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                self.feed(ev.Tick(self.now()))

    def _perform(self, a) -> None:
        if isinstance(a, act.Offer):
            self._offer(a.call_id, a.agent_id)
        elif isinstance(a, (act.CancelOffer, act.OfferTimedOut)):
            leg = self.offers.pop((a.call_id, a.agent_id), None)
            reason = getattr(a, "reason", "ring_timeout")
            entry = self.entries.get(a.call_id)
            if entry:
                self._metrics.offers.labels(entry.queue, reason).inc()
            log.info("offer withdrawn", call_id=a.call_id, agent=a.agent_id, reason=reason)
            if leg is not None:
                leg.end()
        elif isinstance(a, act.Connect):
            self._connect(a.call_id, a.agent_id)
        elif isinstance(a, act.CallExited):
            entry = self.entries.get(a.call_id)
            if entry:
                entry.exit_reason = a.reason
                entry.changed.set()
            self._metrics.exited.labels(a.queue, a.reason).inc()
            log.info("caller left the queue", call_id=a.call_id, queue=a.queue, reason=a.reason)
        elif isinstance(a, act.AgentAutoPaused):
            log.warning("agent auto-paused", agent=a.agent_id, reason=a.reason)
        elif isinstance(a, act.WrapUpEnded):
            log.info("agent wrap-up over", agent=a.agent_id)

    # -- offers ------------------------------------------------------------------
    def _offer(self, call_id: str, agent_id: str) -> None:
        entry = self.entries.get(call_id)
        line = self.lines.get(agent_id)
        if entry is None or line is None:
            self.feed(ev.OfferRejected(self.now(), call_id, agent_id, busy=False))
            return
        call = entry.call
        headers = {"X-Sipacd-Call-Id": call.call_id, "X-Sipacd-Caller": call.caller or "anonymous",
                   "X-Sipacd-Called": call.called or "", "X-Sipacd-Queue": entry.queue}
        for key, value in entry.data.items():
            headers[f"X-Sipacd-Var-{key}"] = str(value)
        try:
            leg = dial(self._account(), line.uri, label=f"{call_id}->{agent_id}", headers=headers)
        except Exception as exc:
            log.warning("dialing agent failed", call_id=call_id, agent=agent_id, error=str(exc))
            self._loop.call_soon(self.feed, ev.OfferRejected(self.now(), call_id, agent_id, False))
            return
        self._track_leg(leg)
        self.offers[(call_id, agent_id)] = leg
        log.info("offering call", call_id=call_id, agent=agent_id, uri=line.uri)
        self._spawn(self._watch_agent_leg(call_id, agent_id, leg))

    async def _watch_agent_leg(self, call_id: str, agent_id: str, leg: CallLeg) -> None:
        key = (call_id, agent_id)
        try:
            await leg.confirmed
        except LegEnded as ended:
            if self.offers.get(key) is leg:  # not withdrawn by us: the phone said no
                del self.offers[key]
                entry = self.entries.get(call_id)
                if entry:
                    self._metrics.offers.labels(entry.queue, "rejected").inc()
                log.info("agent did not take the call", call_id=call_id, agent=agent_id,
                         code=ended.code)
                self.feed(ev.OfferRejected(self.now(), call_id, agent_id,
                                           busy=ended.code in BUSY_CODES))
            return
        if self.offers.get(key) is not leg:  # answered just as we withdrew the offer
            leg.end()
            return
        self.feed(ev.OfferAnswered(self.now(), call_id, agent_id))
        await leg.ended
        entry = self.entries.get(call_id)
        if entry is not None and entry.agent_leg is leg and entry.phase == "talking":
            entry.phase = "over"
            entry.changed.set()
            self.feed(ev.CallEnded(self.now(), call_id))

    def _connect(self, call_id: str, agent_id: str) -> None:
        leg = self.offers.pop((call_id, agent_id), None)
        entry = self.entries.get(call_id)
        if leg is None or entry is None:
            log.error("connect for an unknown offer", call_id=call_id, agent=agent_id)
            return
        entry.phase = "talking"
        entry.agent_id = agent_id
        entry.agent_leg = leg
        entry.answered_at = self.now()
        wait = entry.answered_at - entry.entered
        self._metrics.answered.labels(entry.queue).inc()
        self._metrics.answer_wait.labels(entry.queue).observe(wait)
        self._metrics.offers.labels(entry.queue, "answered").inc()
        self._hold_music(entry.queue).stop(entry.call.leg)
        log.info("caller connected to agent", call_id=call_id, agent=agent_id, wait=round(wait, 3))
        self._spawn(self._bridge_when_ready(entry, leg))
        entry.changed.set()

    async def _bridge_when_ready(self, entry: QueueEntry, agent_leg: CallLeg) -> None:
        caller_leg = entry.call.leg
        try:
            await asyncio.wait_for(agent_leg.media_ready.wait(), 5.0)
        except TimeoutError:
            log.error("agent leg has no media; ending it", call_id=entry.call.call_id)
            agent_leg.end()
            return
        if caller_leg.is_ended or agent_leg.is_ended:
            return
        bridge(caller_leg, agent_leg)

    # -- the caller's side ---------------------------------------------------------
    async def enqueue(self, call, queue: str, *, priority: int, skills: Mapping[str, int],
                      data: Mapping[str, str]) -> QueueOutcome:
        if queue not in self.queue_names:
            raise ValueError(f"no queue named {queue!r}")
        if call.call_id in self.entries:
            raise RuntimeError(f"call {call.call_id} is already queued")
        entry = QueueEntry(call=call, queue=queue, entered=self.now(), data=dict(data))
        self.entries[call.call_id] = entry
        self._metrics.offered.labels(queue).inc()
        moh = self._hold_music(queue)
        moh.start(call.leg)
        log.info("caller queued", call_id=call.call_id, queue=queue, priority=priority)
        self.feed(ev.CallArrived(entry.entered, call.call_id, queue, priority,
                                 tuple(sorted(skills.items()))))
        ended = call.leg.ended
        try:
            while True:
                if call.leg.is_ended:
                    self._caller_gone(entry)
                    raise CallerHangup(call.call_id)
                if entry.exit_reason:
                    return QueueOutcome(entry.exit_reason, queue, self.now() - entry.entered,
                                        data=entry.data)
                if entry.phase == "over":
                    return QueueOutcome("answered", queue, entry.answered_at - entry.entered,
                                        agent=entry.agent_id, data=entry.data)
                entry.changed.clear()
                waiter = asyncio.ensure_future(entry.changed.wait())
                try:
                    await asyncio.wait([waiter, ended], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            if entry.phase == "waiting":
                moh.stop(call.leg)
            if entry.agent_leg is not None:
                entry.agent_leg.end()
            self.entries.pop(call.call_id, None)

    def _caller_gone(self, entry: QueueEntry) -> None:
        now = self.now()
        if entry.phase == "waiting" and not entry.exit_reason:
            wait = now - entry.entered
            self._metrics.abandoned.labels(entry.queue).inc()
            self._metrics.abandon_wait.labels(entry.queue).observe(wait)
            log.info("caller abandoned", call_id=entry.call.call_id, queue=entry.queue,
                     wait=round(wait, 3))
            self.feed(ev.CallAbandoned(now, entry.call.call_id))
        elif entry.phase == "talking":
            entry.phase = "over"
            if entry.agent_leg is not None:
                entry.agent_leg.end()
            self.feed(ev.CallEnded(now, entry.call.call_id))

    # -- read-outs -------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {
            "waiting": {q: self.scheduler.waiting_count(q) for q in self.queue_names},
            "agents": {q: dict(self.scheduler.agents_by_state(q)) for q in self.queue_names},
        }

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
