"""The queue runtime: turns the ACD core's actions into SIP and media.

acdcore decides (who gets which caller, when an offer times out); this file
does: it dials agents, keeps callers on hold, bridges audio, hangs up losing
legs, and feeds what happened on the wire back to the core as events.  All
on the loop thread, so the core never needs a lock.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

import structlog

from acdcore import actions as act
from acdcore import events as ev
from acdcore.errors import AcdError
from acdcore.model import AgentConfig, QueueConfig
from sipagent.queue.agents import (AgentLine, AgentTimes, agent_rows, command_event,
                                   command_log_kind, queue_snapshot,
                                   wrap_up_of)  # AgentLine: for the engine
from sipagent.queue.bridging import bridge_when_ready
from sipagent.queue.callback import CallbackLine
from sipagent.queue.caller_side import CallerSide
from sipagent.queue.conversation import Move
from sipagent.queue.operations import CallOperations
from sipagent.queue.outbound import OutboundDesk
from sipagent.queue.entry import EntryEvent, EntryState, QueueEntry, agent_headers
from sipagent.queue.pickup import CallPickup
from sipagent.sip.leg import CallLeg, LegEnded, dial
from sipagent.queue.stats import QueueStats

# The core on its int-id path: Call-IDs and agent names are mapped to ints
# in C at its edge, actions come back with ours (acdcore/scheduler.py; the
# reference, with the same rules, when the core is not built).
from acdcore.scheduler import InternedScheduler as Scheduler

log = structlog.get_logger("sipagent.queue.runtime")

#: Seconds before an offer whose dial failed in this process counts as rejected.
LOCAL_DIAL_BACKOFF = 1.0
# An action whose SIP side raised: it was logged, and nothing more is done with it.
FAILED = object()

# SIP answers that mean "this agent's phone is busy", as opposed to declined.
BUSY_CODES = {486, 600}


class QueueRuntime(CallerSide):
    def __init__(self, queues: list[QueueConfig], agents: list[AgentConfig],
                 lines: dict[str, AgentLine], *, settings: dict, account_provider: Callable,
                 hold_music: Callable, prompts, metrics, track_leg: Callable,
                 run_flow: Callable, eventlog=None, transfer=None, monitor=None,
                 recordings=None, call_keys=None):
        self.scheduler = Scheduler(queues, agents)
        # Each agent's queues, lowest penalty first (a transfer to the agent
        # joins one the agent serves).
        self._agent_queues = {a.agent_id: sorted(a.queues, key=lambda q: a.queues[q])
                              for a in agents}
        self.settings = settings            # queue name -> config section
        self.lines = lines
        self._account = account_provider
        self._hold_music = hold_music
        self._prompts = prompts
        self.metrics = metrics
        self.stats = QueueStats(settings, metrics, eventlog)
        self.track_leg = track_leg
        self._run_flow = run_flow
        self.entries: dict[str, QueueEntry] = {}
        self.offers: dict[tuple[str, str], CallLeg] = {}
        self.callbacks = CallbackLine(self)
        self.operations = CallOperations(self, transfer, monitor, recordings, call_keys)
        # Click-to-call; configured by add_outbound_routes (sipagent/api/outbound.py).
        self._queue_order = {a.agent_id: list(a.queues) for a in agents}
        self.outbound = OutboundDesk(self, account_provider, self._queue_order, eventlog)
        self.agent_times = AgentTimes()      # since / login / today's counts, for agent rows
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()
        self._feed_started = 0.0
        self.pickup = CallPickup(self)

    # -- lifecycle -------------------------------------------------------------
    def start(self, *, log_in: bool = True) -> None:
        """``log_in``: the agents that log in by themselves do so now (a
        node of several logs in only the agents of the partitions it holds,
        see sipagent/cluster/node.py)."""
        for line in self.lines.values():
            if log_in and line.auto_login:
                self.go_on_duty(line.agent_id)
        self.spawn(self._timers())
        self.spawn(self._sample_agents())

    def go_on_duty(self, agent_id: str) -> None:
        """A logged-out agent that logs in by itself becomes available."""
        if self.scheduler.agent_state(agent_id) != "logged_out":
            return
        now = self.now()
        self.stats.agent(time.time(), agent_id, "LOGIN")
        self.feed(ev.AgentLoggedIn(now, agent_id))
        self.feed(ev.AgentReady(now, agent_id))

    def go_off_duty(self, agent_id: str, reason: str) -> None:
        """The agent logs out (a call it is on goes on to its end)."""
        if agent_id in self.lines and self.scheduler.agent_state(agent_id) != "logged_out":
            self.agent_command(agent_id, "logout", reason)

    def stop(self) -> None:
        self.callbacks.suspend()   # web callbacks in line stay pending, on disk
        # Callers we hang up for shutdown did not abandon; count them apart.
        for entry in self.entries.values():
            if entry.state is EntryState.WAITING:
                entry.advance(EntryEvent.SHUTDOWN)
                self.stats.exited(entry.queue, time.time(), entry.exit_reason, entry.call_id,
                                  self.now() - entry.entered)
        for agent_id in self.lines:
            if self.scheduler.agent_state(agent_id) != "logged_out":
                self.stats.agent(time.time(), agent_id, "LOGOUT", "shutdown")
        for task in list(self._tasks):
            task.cancel()
        for leg in self.offers.values():
            leg.end()
        self.callbacks.stop()
        self.outbound.stop()

    def now(self) -> float:
        return self._loop.time()

    # -- the core loop: events in, actions out --------------------------------
    def feed(self, event) -> None:
        self._feed_started = time.perf_counter()
        try:
            actions = self.scheduler.handle(event)
        except Exception as exc:
            log.exception("acd core rejected an event", acd_event=repr(event))
            # Timers that fired before the bad event still happened.
            actions = getattr(exc, "actions", None) or []
        self._act(actions)

    def feed_raw(self, code: int, t: float, call_id: str | None = None,
                 agent_id: str | None = None, queue: str | None = None,
                 priority: int = 0) -> None:
        """``feed`` for the commonest events, without an event object: the
        core's ``handle_raw`` (``code``: an ``events.EV_*``), the path
        benchmarks/acd_core.py measures."""
        self._feed_started = time.perf_counter()
        try:
            actions = self.scheduler.handle_raw(code, t, call_id, agent_id, None, queue, priority)
        except Exception as exc:
            log.exception("acd core rejected an event", acd_event=ev.EVENT_NAMES.get(code, code),
                          call_id=call_id, agent=agent_id, queue=queue)
            actions = getattr(exc, "actions", None) or []
        self._act(actions)

    def _act(self, actions) -> None:
        # Two passes.  What the phones must hear (the INVITE to an agent, the
        # CANCEL of a withdrawn offer) leaves first, in the core's order; what
        # is only written down (log lines, the event log, metrics) follows for
        # the whole batch, in the same order.  When one event frees an agent
        # and offers it a call, or offers several, no INVITE waits for an
        # earlier action's bookkeeping (benchmarks/load.py: the dispatch
        # latency of all but the first action in a batch).
        signalled = []
        for action in actions:
            try:
                signalled.append(self._signal(action))
            except Exception:
                log.exception("acd action failed", action=repr(action))
                signalled.append(FAILED)
        for action, sent in zip(actions, signalled):
            if sent is not FAILED:
                try:
                    self._perform(action, sent)
                except Exception:
                    log.exception("acd action failed", action=repr(action))
            self._seen(getattr(action, "agent_id", None))
        self._wake.set()

    def _seen(self, agent_id: str | None) -> None:
        if agent_id in self.lines:
            self.agent_times.seen(agent_id, self.scheduler.agent_state(agent_id), time.time())

    def pick_up(self, call_id: str, agent_id: str, leg: CallLeg) -> AcdError | None:
        """``agent_id`` takes the ringing ``call_id`` on its answered ``leg``
        (pickup.py).  The core's Connect then finds the leg where an answered
        offer's would be.  Returns the core's refusal (nothing changed), or None."""
        key = (call_id, agent_id)
        if key in self.offers:
            return AcdError(f"agent {agent_id!r} is being offered the call: answer it")
        self.offers[key] = leg
        self._feed_started = time.perf_counter()
        try:
            actions, refusal = self.scheduler.handle(
                ev.CallPickedUp(self.now(), call_id, agent_id)), None
        except AcdError as exc:
            actions, refusal = exc.actions, exc
            if self.offers.get(key) is leg:
                del self.offers[key]
        self._act(actions)
        return refusal

    async def _timers(self) -> None:
        while True:
            deadline = self.scheduler.next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.now())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                self.feed_raw(ev.EV_TICK, self.now())

    async def _sample_agents(self) -> None:
        while True:
            self.stats.sample_agents(time.time(), self.snapshot()["agents"])
            for agent_id in self.lines:     # states the ACD changed on its own
                self._seen(agent_id)
            await asyncio.sleep(1.0)

    def _signal(self, a):
        """The SIP side of an action, sent at once; what ``_perform`` needs of it."""
        if isinstance(a, act.Offer):
            return self._dial_agent(a.call_id, a.agent_id)
        if isinstance(a, (act.CancelOffer, act.OfferTimedOut)):
            leg = self.offers.pop((a.call_id, a.agent_id), None)
            if leg is not None:
                leg.end()
            return leg
        return None

    def _perform(self, a, sent) -> None:
        if isinstance(a, act.Offer):
            if sent is not None:
                self._offered(a.call_id, a.agent_id, sent)
        elif isinstance(a, (act.CancelOffer, act.OfferTimedOut)):
            reason = getattr(a, "reason", "ring_timeout")
            entry = self.entries.get(a.call_id)
            if entry:
                self.stats.offer_lost(entry.queue, time.time(), a.call_id, a.agent_id, reason)
            self.agent_times.offer_lost(a.agent_id, reason, time.time())
            log.info("offer withdrawn", call_id=a.call_id, agent=a.agent_id, reason=reason)
        elif isinstance(a, act.Connect):
            self._connect(a.call_id, a.agent_id)
        elif isinstance(a, act.CallExited):
            entry = self.entries.get(a.call_id)
            if entry:
                entry.advance(EntryEvent.EXIT, a.reason)
                entry.changed.set()
                if entry.callback:   # it counts the outcome if the key press did not
                    self.callbacks.exited(entry, a.reason)
                else:
                    self.stats.exited(a.queue, time.time(), a.reason, a.call_id,
                                      self.now() - entry.entered)
            log.info("caller left the queue", call_id=a.call_id, queue=a.queue, reason=a.reason)
        elif isinstance(a, act.AgentAutoPaused):
            log.warning("agent auto-paused", agent=a.agent_id, reason=a.reason)
            self.stats.agent(time.time(), a.agent_id, "PAUSE", a.reason)
        elif isinstance(a, act.WrapUpEnded):
            log.info("agent wrap-up over", agent=a.agent_id)
            self.stats.agent(time.time(), a.agent_id, "WRAPUP_END")

    # -- offers ------------------------------------------------------------------
    def _dial_agent(self, call_id: str, agent_id: str) -> CallLeg | None:
        """The INVITE to the agent; None if it was not sent (the core is told)."""
        entry = self.entries.get(call_id)
        line = self.lines.get(agent_id)
        if entry is None or line is None:
            self._loop.call_soon(self.feed, ev.OfferRejected(self.now(), call_id, agent_id, False))
            return None
        headers = agent_headers(entry, self.settings[entry.queue].caller_headers)
        try:
            leg = self.dial_out(line.uri, label=f"{call_id}->{agent_id}", headers=headers)
        except Exception as exc:
            log.warning("dialing agent failed", call_id=call_id, agent=agent_id, error=str(exc))
            # A local failure (pjsua's call slots full, say) is no answer from
            # the phone: told at once, the core offers again at once and the
            # loop spins on the failure.  The agent stays "ringing" meanwhile.
            self._loop.call_later(LOCAL_DIAL_BACKOFF, lambda: self.feed(
                ev.OfferRejected(self.now(), call_id, agent_id, False)))
            return None
        self.metrics.dispatch_latency.observe(time.perf_counter() - self._feed_started)
        self.track_leg(leg)
        self.offers[(call_id, agent_id)] = leg
        return leg

    def _offered(self, call_id: str, agent_id: str, leg: CallLeg) -> None:
        self.spawn(self._watch_agent_leg(call_id, agent_id, leg))   # first: nothing may skip it
        entry = self.entries[call_id]
        self.stats.offer(entry.queue, time.time(), call_id, agent_id)
        log.info("offering call", call_id=call_id, agent=agent_id, uri=self.lines[agent_id].uri,
                 callback=entry.callback is not None)

    async def _watch_agent_leg(self, call_id: str, agent_id: str, leg: CallLeg) -> None:
        key = (call_id, agent_id)
        try:
            await leg.until_answered()
        except LegEnded as ended:
            if self.offers.get(key) is leg:  # not withdrawn by us: the phone said no
                del self.offers[key]
                entry = self.entries.get(call_id)
                if entry:
                    self.stats.offer_lost(entry.queue, time.time(), call_id, agent_id,
                                          "busy" if ended.code in BUSY_CODES else "rejected")
                self.agent_times.offer_lost(agent_id, "rejected", time.time())
                log.info("agent did not take the call", call_id=call_id, agent=agent_id,
                         code=ended.code)
                self.feed(ev.OfferRejected(self.now(), call_id, agent_id,
                                           busy=ended.code in BUSY_CODES))
            return
        if self.offers.get(key) is not leg:  # answered just as we withdrew the offer
            leg.end()
            return
        self.feed_raw(ev.EV_OFFER_ANSWERED, self.now(), call_id, agent_id)
        await leg.ended
        entry = self.entries.get(call_id)
        if entry is not None:
            self.agent_hung_up(entry, leg)

    def agent_hung_up(self, entry: QueueEntry, leg: CallLeg) -> None:
        """The agent's phone hung up: the talk is over, unless the agent was
        consulting (then the caller stays with the consulted party)."""
        if entry.agent_leg is leg and entry.state is EntryState.TALKING:
            if not self.operations.agent_left(entry):
                self.talk_over(entry, "agent")

    # -- what the callback code (and the runtime itself) does to an entry -----------
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg:
        """An outgoing leg from the engine's account (to an agent, or a customer)."""
        return dial(self._account(), uri, label=label, headers=headers)

    def talk_over(self, entry: QueueEntry, side: str) -> None:
        """One side (``caller`` or ``agent``) hung up: the agent goes to wrap-up."""
        entry.advance(EntryEvent.HUNG_UP)
        entry.changed.set()
        self.agent_leaves(entry, side)
        if entry.agent_leg is not None:
            entry.agent_leg.end()
        if entry.callback:
            self.callbacks.finished(entry)

    def agent_leaves(self, entry: QueueEntry, side: str) -> None:
        """The agent's part of the call is over (a hang-up, or ``side`` =
        ``transfer``): its talk and hold are counted and it goes to wrap-up."""
        conversation, entry.conversation = entry.conversation, None
        hold = 0.0
        if entry.agent_leg is not None:
            self.operations.by_agent_call.pop(entry.agent_leg.sip_call_id, None)
        if conversation is not None:
            hold = conversation.hold_seconds()
            if conversation.consulted is not None:       # the call ended mid-consultation
                conversation.consulted.end()
            conversation.move(Move.END, by=side)
            self.operations.conversation_ended(entry, side)
        talk = self.now() - (entry.answered_at or self.now())
        wrap_up = wrap_up_of(self.lines, entry.agent_id, self.settings[entry.queue].wrap_up)
        transfer = self.operations.transfer_row(entry.transfer) if side == "transfer" else None
        self.stats.handled(entry.queue, time.time(), talk, wrap_up, entry.call_id,
                           entry.agent_id, side, hold=hold, transfer=transfer)
        self.feed_raw(ev.EV_CALL_ENDED, self.now(), entry.call_id)

    def attempt_over(self, entry: QueueEntry) -> None:
        """A callback's customer did not answer: the agent on the line wraps up."""
        wrap_up = wrap_up_of(self.lines, entry.agent_id, self.settings[entry.queue].wrap_up)
        self.stats.wrap_up_started(time.time(), entry.agent_id, entry.queue, entry.call_id,
                                   wrap_up)
        self.feed_raw(ev.EV_CALL_ENDED, self.now(), entry.call_id)

    def add_callback(self, entry: QueueEntry, *, offered: bool = True) -> None:
        """A callback entry (no live call) joins the line; a retry is not offered again."""
        self.entries[entry.call_id] = entry
        if offered:
            self.stats.offered(entry.queue, time.time(), entry.call_id)
        self.feed(ev.CallArrived(self.now(), entry.call_id, entry.queue, 0, (), True))

    def hold_music(self, queue: str):
        return self._hold_music(queue)

    def beep(self):
        return self._prompts.beep()

    def prompt(self, name: str):
        """A catalogue prompt's file (rendered at start, so no synthesis here)."""
        return self._prompts.path(name, self._prompts.language)

    async def run_flow(self, call, spec: str) -> None:
        await self._run_flow(call, spec)

    def agent_queues(self, agent_id: str) -> list[str]:
        return self._agent_queues.get(agent_id, [])

    def serve_queues(self, agent_id: str, queues: dict[str, int] | None) -> None:
        """An agent added, changed (``queues``: queue -> penalty) or removed
        (None) at run time, by ``agent_admin``: the queues a transfer to it
        joins and its click-to-call's queue follow."""
        if queues is None:
            self._agent_queues.pop(agent_id, None)
            self._queue_order.pop(agent_id, None)
            self.agent_times.forget(agent_id)
        else:
            self._agent_queues[agent_id] = sorted(queues, key=lambda q: queues[q])
            self._queue_order[agent_id] = list(queues)

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with: the runtime no longer looks it up."""
        self.entries.pop(entry.call_id, None)

    def _connect(self, call_id: str, agent_id: str) -> None:
        leg = self.offers.pop((call_id, agent_id), None)
        entry = self.entries.get(call_id)
        if leg is None or entry is None:
            log.error("connect for an unknown offer", call_id=call_id, agent=agent_id)
            return
        entry.advance(EntryEvent.CONNECTED)
        entry.agent_id = agent_id
        entry.agent_leg = leg
        entry.answered_at = self.now()
        wait = entry.answered_at - entry.entered
        self.metrics.offers.labels(entry.queue, "answered").inc()
        entry.changed.set()
        if entry.callback:
            self.callbacks.agent_ready(entry, leg)
            return
        self.stats.answered(entry.queue, time.time(), wait, call_id, agent_id)
        self.agent_times.handled(agent_id, time.time())
        entry.hold.stop()
        log.info("caller connected to agent", call_id=call_id, agent=agent_id, wait=round(wait, 3))
        self.spawn(self.operations.converse(entry))

    bridge_when_ready = staticmethod(bridge_when_ready)   # for callback.QueueLine

    # -- agent control (HTTP API) and read-outs: see agents.py ---------------------
    def agent_command(self, agent_id: str, command: str, reason: str = "") -> None:
        if agent_id not in self.lines:
            raise KeyError(agent_id)
        event = command_event(command, self.now(), agent_id, reason)
        before = self.scheduler.agent_state(agent_id)
        kind = command_log_kind(command, before)
        if kind:  # before the feed: a LOGIN may be followed at once by an OFFER
            self.stats.agent(time.time(), agent_id, kind, reason or None)
        self.feed(event)
        self._seen(agent_id)
        log.info("agent control", agent=agent_id, command=command, before=before,
                 after=self.scheduler.agent_state(agent_id))

    def agents(self) -> list[dict]:
        rows = agent_rows(self.lines, self.scheduler,
                          (e for e in self.entries.values() if e.state is EntryState.TALKING),
                          ringing=((agent, self.entries[call]) for call, agent in self.offers
                                   if call in self.entries),
                          times=self.agent_times, t_wall=time.time(), now=self.now())
        outbound = self.outbound.rows()
        for row in rows:
            row["call"] = row["call"] or outbound.get(row["agent"])
        return rows

    def snapshot(self) -> dict:
        return queue_snapshot(self.scheduler, self.settings, self.now())

    def spawn(self, coro) -> asyncio.Task:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
