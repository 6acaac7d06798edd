"""Supervisors on a connected call: listen, whisper, barge.

A mixin of :class:`sipagent.queue.operations.CallOperations`: the session
rings the supervisor's phone, joins the conversation's mix in a mode
(sipagent/queue/conversation.py says who then hears whom), switches modes
on the supervisor's keypad, and is audited in the event log (who, whom,
when, how long).  Ending the monitored call ends the session.
"""
from __future__ import annotations

import asyncio
import time

import structlog

from sipagent.queue.conversation import Conversation, Monitor, NotConnected
from sipagent.queue.entry import QueueEntry
from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.queue.monitoring")


class Monitoring:
    def monitor_mode(self, name: str) -> Monitor:
        try:
            return Monitor(name)
        except ValueError:
            raise ValueError(f"unknown mode {name!r}; one of "
                             f"{', '.join(m.value for m in Monitor)}") from None

    def monitor(self, call_id: str, mode: Monitor, *, phone: str, supervisor: str) -> None:
        """Ring the supervisor's phone; once answered, it joins the call in
        ``mode`` (keypad digits switch modes).  Raises at once if the call
        is not connected or already monitored."""
        entry, conversation = self.talking(call_id)
        if conversation.supervisor is not None or conversation.monitoring:
            raise NotConnected(f"call {call_id!r} is already monitored")
        conversation.monitoring = True
        leg = self.line.dial_out(phone, label=f"{call_id}~monitor",
                                 headers={"X-Sipacd-Call-Id": call_id,
                                          "X-Sipacd-Monitor": mode.value,
                                          "X-Sipacd-Agent": entry.agent_id or ""})
        self.line.track_leg(leg)
        self.line.spawn(self._monitor_session(entry, conversation, leg, mode, supervisor))

    async def _monitor_session(self, entry: QueueEntry, conversation: Conversation,
                               leg: CallLeg, mode: Monitor, supervisor: str) -> None:
        settings = self.monitor_settings
        keys = settings.keys if settings else {"1": "listen", "2": "whisper", "3": "barge"}
        timeout = settings.ring_timeout if settings else 30.0
        over = asyncio.ensure_future(conversation.over.wait())
        try:
            try:
                await asyncio.wait_for(asyncio.shield(leg.confirmed), timeout)
                await asyncio.wait_for(leg.media_ready.wait(), 5.0)
            except Exception:
                log.info("supervisor did not answer", call_id=entry.call_id)
                return
            if conversation.phase.value == "over":
                return
            started = self.line.now()
            conversation.set_monitor(leg, mode)
            stats = self.line.stats
            stats.monitor(entry.queue, time.time(), entry.call_id, conversation.agent_id,
                          "MONITOR_START", supervisor, mode.value)
            while not leg.is_ended and not over.done():
                digit = leg.take_digit()
                if digit is None:
                    waiter = asyncio.ensure_future(leg.digit_arrived.wait())
                    await asyncio.wait([waiter, over, leg.ended],
                                       return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                new = keys.get(digit)
                if new is None or Monitor(new) is conversation.monitor:
                    continue
                conversation.set_monitor(leg, Monitor(new))
                stats.monitor(entry.queue, time.time(), entry.call_id, conversation.agent_id,
                              "MONITOR_MODE", supervisor, new)
            stats.monitor(entry.queue, time.time(), entry.call_id, conversation.agent_id,
                          "MONITOR_END", supervisor, conversation.monitor.value
                          if conversation.monitor else None, self.line.now() - started)
        finally:
            over.cancel()
            conversation.set_monitor(None, None)
            conversation.monitoring = False
            leg.end()

