"""Supervisors on a connected call: listen, whisper, barge.

A mixin of :class:`sipagent.queue.operations.CallOperations`.  A session
has two ways in, and one body:

* the API (``monitor``) rings the supervisor's phone; once it answers,
* the phone keypad (``monitor_leg``, from sipagent/calls/supervisor_keypad.py)
  brings the supervisor's own incoming call, already answered;

either way the leg joins the conversation's mix in a mode
(sipagent/queue/conversation.py says who then hears whom), the
supervisor's digits switch modes, and the session is audited in the event
log: MONITOR_START/MODE/END rows carry the agent, the supervisor's id and
how the session came (``data.via``), the END row its length.  Hanging up
ends the session; so does the monitored call's end, which hangs up the
supervisor's leg.  A supervisor limited to some queues
(``[supervisors.<id>] queues``, :class:`Supervisor` below) is refused the
others' calls before anything rings.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Mapping

import structlog

from sipagent.queue.conversation import Conversation, Monitor, NotConnected
from sipagent.queue.entry import QueueEntry
from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.queue.monitoring")

DEFAULT_KEYS = {"1": "listen", "2": "whisper", "3": "barge"}


# -- who supervises: built from [supervisors.<id>] (sipagent/config/supervisors.py);
# the scope is checked here, so the API and the phone keypad refuse the same calls.
class OutOfScope(PermissionError):
    """The supervisor may not monitor this queue's calls (403 to the API)."""


@dataclass(frozen=True)
class Supervisor:
    supervisor_id: str
    phone: str | None = None          # where an API session rings
    number: str | None = None         # what they key in from another phone
    pin_hash: str | None = None       # None: no keypad identification from another phone
    queues: frozenset[str] | None = None   # None: every queue

    def check_scope(self, queue: str) -> None:
        if self.queues is not None and queue not in self.queues:
            raise OutOfScope(f"queue {queue!r} is outside supervisor {self.supervisor_id!r}'s "
                             f"queues ({', '.join(sorted(self.queues)) or 'none'})")


@dataclass(frozen=True)
class SupervisorDirectory:
    people: Mapping[str, Supervisor] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)   # API token name -> supervisor id

    def for_token(self, token_name: str) -> Supervisor | None:
        sid = self.tokens.get(token_name)
        return None if sid is None else self.people[sid]


class Monitoring:
    # Set by the engine from [supervisors] and the tokens that name one.
    supervisors: SupervisorDirectory = SupervisorDirectory()

    def monitor_mode(self, name: str) -> Monitor:
        try:
            return Monitor(name)
        except ValueError:
            raise ValueError(f"unknown mode {name!r}; one of "
                             f"{', '.join(m.value for m in Monitor)}") from None

    def agent_call(self, agent_id: str) -> str | None:
        """The call id of the agent's connected queue call, if any."""
        return next((c["call_id"] for c in self.conversations() if c["agent"] == agent_id),
                    None)

    def monitor(self, call_id: str, mode: Monitor, *, phone: str, supervisor: str,
                person: Supervisor | None = None) -> None:
        """Ring the supervisor's phone; once answered, it joins the call in
        ``mode`` (keypad digits switch modes).  Raises at once if the call
        is not connected, outside ``person``'s queues (OutOfScope) or
        already monitored."""
        entry, conversation = self._claim(call_id, person)
        try:
            leg = self.line.dial_out(phone, label=f"{call_id}~monitor",
                                     headers={"X-Sipacd-Call-Id": call_id,
                                              "X-Sipacd-Monitor": mode.value,
                                              "X-Sipacd-Agent": entry.agent_id or ""})
        except Exception:
            conversation.monitoring = False     # nothing rang: the call may be monitored
            raise
        self.line.track_leg(leg)
        self.line.spawn(self.monitor_session(entry, conversation, leg, mode, supervisor,
                                             via="api"))

    async def monitor_leg(self, call_id: str, leg: CallLeg, mode: Monitor, *,
                          person: Supervisor) -> None:
        """The supervisor's own answered leg joins the call; returns when the
        session is over (the leg is then hung up).  Raises as ``monitor``."""
        entry, conversation = self._claim(call_id, person)
        leg.digit_buffer.clear()     # keys typed past the agent's number are no mode
        await self.monitor_session(entry, conversation, leg, mode, person.supervisor_id,
                                   via="keypad")

    def _claim(self, call_id: str, person: Supervisor | None) -> tuple[QueueEntry, Conversation]:
        entry, conversation = self.talking(call_id)
        if person is not None:
            person.check_scope(entry.queue)
        if conversation.supervisor is not None or conversation.monitoring:
            raise NotConnected(f"call {call_id!r} is already monitored")
        conversation.monitoring = True
        return entry, conversation

    async def monitor_session(self, entry: QueueEntry, conversation: Conversation,
                              leg: CallLeg, mode: Monitor, supervisor: str, *,
                              via: str) -> None:
        settings = self.monitor_settings
        keys = settings.keys if settings else DEFAULT_KEYS
        timeout = settings.ring_timeout if settings else 30.0
        over = asyncio.ensure_future(conversation.over.wait())
        stats = self.line.stats

        def audit(kind: str, mode: str | None, seconds: float | None = None) -> None:
            stats.monitor(entry.queue, time.time(), entry.call_id, conversation.agent_id,
                          kind, supervisor, mode, seconds, via=via)

        try:
            try:
                await leg.until_answered(timeout)
                await asyncio.wait_for(leg.media_ready.wait(), 5.0)
            except Exception:
                log.info("supervisor did not answer", call_id=entry.call_id)
                return
            if conversation.phase.value == "over" or leg.is_ended:
                return
            started = self.line.now()
            conversation.set_monitor(leg, mode)
            audit("MONITOR_START", mode.value)
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
                audit("MONITOR_MODE", new)
            audit("MONITOR_END", conversation.monitor.value if conversation.monitor else None,
                  self.line.now() - started)
        finally:
            over.cancel()
            conversation.set_monitor(None, None)
            conversation.monitoring = False
            leg.end()
