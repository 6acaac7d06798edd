"""The caller's side of the queue runtime: joining a queue, waiting, the
keys pressed while waiting, hanging up, and where the caller goes after.

A mixin of :class:`sipagent.queue.runtime.QueueRuntime` (its state is the
runtime's: entries, the ACD core, stats); kept apart so that the runtime's
own file is the core loop and the agents' side.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from typing import Mapping

import structlog

from acdcore import events as ev
from ivrflows.call import CallerHangup, QueueOutcome
from sipagent.queue.entry import EntryEvent, EntryState, QueueEntry, exit_target
from sipagent.queue.hold import CallerHold

log = structlog.get_logger("sipagent.queue.runtime")


class CallerSide:
    async def enqueue(self, call, queue: str, *, priority: int, skills: Mapping[str, int],
                      data: Mapping[str, str], depth: int = 0) -> QueueOutcome:
        if queue not in self.settings:
            raise ValueError(f"no queue named {queue!r}")
        if call.call_id in self.entries:
            raise RuntimeError(f"call {call.call_id} is already queued")
        s = self.settings[queue]
        await self.operations.recording_consent(call, s)
        entry = QueueEntry(call_id=call.call_id, queue=queue, entered=self.now(),
                           caller=call.caller, called=call.called, data=dict(data), call=call,
                           priority=priority, skills=dict(skills))
        # The hold reaches its entry through a weak reference: a strong one
        # (entry -> hold -> on_key -> entry) made every queued call a cycle
        # that only the cyclic GC freed, with its legs, in pauses of tens of
        # milliseconds on the loop.
        entry_ref = weakref.ref(entry)
        entry.hold = CallerHold(call.leg, s, moh=self._hold_music(queue), prompts=self._prompts,
                                position=lambda: self._position(call.call_id),
                                on_key=lambda key: self._key_pressed(entry_ref(), key),
                                call_id=call.call_id, callback_slots=self.callbacks.slots(queue))
        self.entries[call.call_id] = entry
        self.stats.offered(queue, time.time(), call.call_id,
                           self.scheduler.waiting_count(queue) + 1, priority)
        entry.hold.start()
        log.info("caller queued", call_id=call.call_id, queue=queue, priority=priority)
        if skills:
            self.feed(ev.CallArrived(entry.entered, call.call_id, queue, priority,
                                     tuple(sorted(skills.items()))))
        else:
            self.feed_raw(ev.EV_CALL_ARRIVED, entry.entered, call.call_id, None, queue, priority)
        try:
            outcome = await self._wait(entry)
        finally:
            entry.hold.stop()
            if entry.agent_leg is not None and entry.callback is None:
                entry.agent_leg.end()
            if entry.callback is None:
                self.entries.pop(call.call_id, None)
        if outcome.result == "callback":
            try:
                await self.callbacks.confirm(call, entry)
                await call.hangup()
            except CallerHangup:
                pass
            return outcome
        if entry.transfer is not None:
            return await self.operations.carry(call, entry, outcome, depth)
        if outcome.result == "answered":
            return outcome
        return await self._follow_target(call, s, outcome, priority, skills, data, depth)

    async def _wait(self, entry: QueueEntry) -> QueueOutcome:
        call = entry.call
        while True:
            state, waited = entry.state, self.now() - entry.entered
            if entry.callback is not None and state is not EntryState.EXITED:
                # Handed over to a callback: whatever the entry does next (wait,
                # ring an agent, dial the customer) no longer concerns this call.
                return QueueOutcome("callback", entry.queue, waited, data=entry.data)
            if call.leg.is_ended:
                self._caller_gone(entry)  # abandons if waiting, ends the talk if talking
                raise CallerHangup(call.call_id)
            if state is EntryState.EXITED:
                return QueueOutcome(entry.exit_reason, entry.queue, waited, data=entry.data)
            if state is EntryState.OVER:
                return QueueOutcome("answered", entry.queue, entry.answered_at - entry.entered,
                                    agent=entry.agent_id, data=entry.data)
            entry.changed.clear()
            waiter = asyncio.ensure_future(entry.changed.wait())
            try:
                await asyncio.wait([waiter, call.leg.ended], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def _follow_target(self, call, s, outcome: QueueOutcome, priority, skills, data,
                             depth: int) -> QueueOutcome:
        target = exit_target(s, outcome.result)
        if not target:
            return outcome
        kind, _, arg = target.partition(":")
        log.info("queue exit target", call_id=call.call_id, reason=outcome.result, target=target)
        if kind == "queue" and depth < 5:
            return await self.enqueue(call, arg, priority=priority, skills=skills, data=data,
                                      depth=depth + 1)
        if kind == "flow":
            await self._run_flow(call, arg)
        elif kind == "hangup":
            if arg:
                await call.play(arg)
            await call.hangup()
        return outcome

    def _key_pressed(self, entry: QueueEntry | None, key: str) -> None:
        if entry is None or entry.state is not EntryState.WAITING:
            return
        log.info("caller pressed a queue key", call_id=entry.call_id, key=key)
        if key == "exit_key":
            entry.advance(EntryEvent.EXIT_KEY)
            self.stats.exited(entry.queue, time.time(), entry.exit_reason, entry.call_id,
                              self.now() - entry.entered)
            self.feed(ev.CallWithdrawn(self.now(), entry.call_id, "exit_key"))
        elif key == "callback":
            self.callbacks.requested_in_queue(entry)
        entry.changed.set()

    def _caller_gone(self, entry: QueueEntry) -> None:
        if entry.state is EntryState.WAITING:
            entry.advance(EntryEvent.ABANDONED)
            wait = self.now() - entry.entered
            position, _ = self._position(entry.call_id)
            self.stats.abandoned(entry.queue, time.time(), wait, entry.call_id, position)
            log.info("caller abandoned", call_id=entry.call_id, queue=entry.queue,
                     wait=round(wait, 3))
            self.feed_raw(ev.EV_CALL_ABANDONED, self.now(), entry.call_id)
        elif entry.state is EntryState.TALKING:
            self.talk_over(entry, "caller")

    def _position(self, call_id: str) -> tuple[int | None, float | None]:
        try:
            return self.scheduler.queue_position(call_id), self.scheduler.ewt(call_id)
        except Exception:
            return None, None

