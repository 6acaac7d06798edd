"""What agents and supervisors do with a connected call.  This file: the
conversation's start, hold, blind transfer and carrying the caller on; the
mixins (one file each) add consultation, the phone's own consultation,
call keys, monitoring, talk limits and recording control.  The HTTP API,
the phones' signalling (a REFER, a hold re-INVITE) and keys all come here,
so the accounting is the same whichever way an operation was asked for.

This module knows the runtime only through ``OperationsLine`` below (it
never imports runtime.py): runtime -> operations -> conversation, one way.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping, Protocol

import structlog

from ivrflows.call import CallerHangup, QueueOutcome
from sipagent.queue.bridging import MEDIA_WAIT
from sipagent.queue.conversation import Conversation, Move, NotConnected, media_of
from sipagent.queue.call_keys import CallKeys
from sipagent.queue.consultation import Consultation
from sipagent.queue.entry import EntryEvent, EntryState, InvalidEntryTransition, QueueEntry
from sipagent.queue.monitoring import Monitoring
from sipagent.queue.phone_consult import PhoneConsult, PhoneConsultation
from sipagent.queue.recording_control import RecordingControl
from sipagent.queue.recordings import Recordings
from sipagent.queue.stats import QueueStats
from sipagent.queue.talk_limit import TalkLimit
from sipagent.queue.transfer import (BadTransferTarget, CallRestricted, TransferOrder,
                                     TransferTarget, agent_skill, dial_uri, parse_target,
                                     resolve_extension, ring)
from sipagent.sip.leg import CallLeg
from sipagent.sip.message import uri_user

log = structlog.get_logger("sipagent.queue.operations")

# A caller passed on more often than this in one call is sent to the apology:
# two agents transferring a caller back and forth would otherwise never end.
MAX_TRANSFERS = 10


class OperationsLine(Protocol):
    """What the operations need from the queue runtime, and nothing more."""
    entries: dict[str, QueueEntry]
    settings: Mapping[str, Any]
    stats: QueueStats
    lines: Mapping[str, Any]
    track_leg: Callable[[CallLeg], None]

    def now(self) -> float: ...
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg: ...
    def agent_leaves(self, entry: QueueEntry, side: str) -> None: ...
    def agent_queues(self, agent_id: str) -> list[str]: ...
    def hold_music(self, queue: str): ...
    def beep(self): ...
    def prompt(self, name: str): ...
    def spawn(self, coro) -> asyncio.Task: ...
    async def enqueue(self, call, queue: str, *, priority: int, skills: Mapping[str, int],
                      data: Mapping[str, str], depth: int = 0) -> QueueOutcome: ...
    async def run_flow(self, call, spec: str) -> None: ...


class CallOperations(Consultation, PhoneConsult, CallKeys, Monitoring, TalkLimit,
                     RecordingControl):
    def __init__(self, line: OperationsLine, transfer=None, monitor=None,
                 recordings: Recordings | None = None, call_keys=None):
        self.line = line
        self.call_keys = call_keys            # config [call_keys] (None: no keys)
        self.recordings = recordings
        if recordings is not None:
            recordings.stats = line.stats
        self.transfer_settings = transfer     # config [transfer] (None: defaults)
        self.monitor_settings = monitor       # config [monitor]
        # Connected entries by their agent leg's SIP Call-ID: a phone's REFER
        # names its dialog, and so the call it transfers.
        self.by_agent_call: dict[str, QueueEntry] = {}
        # Consultations placed from agents' phones, by that call's SIP Call-ID
        # (what a REFER's Replaces names); and agents by their phone's user.
        self.phone_consults: dict[str, PhoneConsultation] = {}
        self._phone_users: dict[str, str] | None = None

    # -- the conversation ------------------------------------------------------------
    async def converse(self, entry: QueueEntry) -> None:
        """Bridge caller and agent as a conversation, once both have media."""
        line = self.line
        caller, agent = entry.call.leg, entry.agent_leg
        if not await media_of([caller, agent], MEDIA_WAIT):
            for leg in (caller, agent):
                if not leg.media_ready.is_set():
                    log.error("leg has no media; ending it", call_id=entry.call_id,
                              leg=leg.label)
                    leg.end()
            return
        if entry.state is not EntryState.TALKING or entry.agent_leg is not agent:
            return
        entry.conversation = Conversation(
            entry.call_id, caller, agent, entry.agent_id, music=line.hold_music(entry.queue),
            clock=line.now, on_hold=self.hold_changed)
        entry.conversation.start()
        self.by_agent_call[agent.sip_call_id] = entry
        own = line.lines[entry.agent_id].talk_limit if entry.agent_id in line.lines else None
        limit = line.settings[entry.queue].talk_limit if own is None else own
        if limit > 0:
            line.spawn(self.talk_limit(entry, entry.conversation, limit, line.beep()))
        self.conversation_started(entry)
        line.spawn(self.listen_to_agent_keys(entry, entry.conversation))

    # -- read-outs ------------------------------------------------------------------
    def talking(self, call_id: str) -> tuple[QueueEntry, Conversation]:
        entry = self.line.entries.get(call_id)
        if entry is None:
            raise NotConnected(f"no call {call_id!r} in a queue")
        if entry.state is not EntryState.TALKING or entry.conversation is None:
            raise NotConnected(f"call {call_id!r} is {entry.state.value}, not connected")
        return entry, entry.conversation

    def conversations(self) -> list[dict]:
        now = self.line.now()
        out = []
        for e in self.line.entries.values():
            c = e.conversation
            if e.state is not EntryState.TALKING or c is None:
                continue
            out.append({"call_id": e.call_id, "queue": e.queue, "caller": e.caller,
                        "agent": e.agent_id, "phase": c.phase.value,
                        "talk_seconds": round(now - (e.answered_at or now), 3),
                        "hold_seconds": round(c.hold_seconds(), 3),
                        "monitor": c.monitor.value if c.monitor else None})
        return out

    # -- hold ----------------------------------------------------------------------------
    def hold(self, call_id: str, *, resume: bool = False) -> str:
        _, conversation = self.talking(call_id)
        return conversation.move(Move.RESUME if resume else Move.HOLD, by="api").value

    def hold_changed(self, conversation: Conversation, held: bool) -> None:
        entry = self.line.entries.get(conversation.call_id)
        if entry is None:
            return
        seconds = 0.0 if held else conversation.hold_total
        self.line.stats.hold(entry.queue, time.time(), entry.call_id, conversation.agent_id,
                             held, seconds)

    # -- transfer --------------------------------------------------------------------------
    def target(self, text: str) -> TransferTarget:
        s = self.transfer_settings
        return parse_target(text, queues=self.line.settings, agents=self.line.lines,
                            number_uri=s and s.number_uri,
                            extensions=s.extensions if s else {})

    def phone_target(self, user: str) -> TransferTarget:
        s = self.transfer_settings
        return resolve_extension(user, queues=self.line.settings, agents=self.line.lines,
                                 number_uri=s and s.number_uri,
                                 extensions=s.extensions if s else {})

    def transfer(self, call_id: str, target: TransferTarget, *, origin: str) -> TransferOrder:
        """Blind transfer: the agent leaves now (wrap-up), the caller goes on
        in its own task (``carry``)."""
        entry, conversation = self.talking(call_id)
        if target.kind == "agent" and target.value == entry.agent_id:
            raise BadTransferTarget(f"the call is already with agent {target.value!r}")
        self.check_restrictions(entry, target)
        order = TransferOrder(target, by=entry.agent_id, origin=origin, mode="blind",
                              from_queue=entry.queue)
        entry.transfer = order
        entry.advance(EntryEvent.TRANSFERRED)
        self.line.agent_leaves(entry, "transfer")
        log.info("call transferred", call_id=call_id, agent=order.by, to=str(target),
                 origin=origin)
        entry.changed.set()
        return order

    def check_restrictions(self, entry: QueueEntry, target: TransferTarget) -> None:
        """A number an agent sends a caller to obeys the agent's call
        restrictions, as its own click-to-call would (sipagent/queue/restrictions.py)."""
        outbound = getattr(self.line, "outbound", None)
        if target.kind != "number" or outbound is None or outbound.restrictions is None:
            return
        rule = outbound.check_number(entry.agent_id, "agent", target.value)
        if rule:
            raise CallRestricted(f"number {target.value} refused by call restriction {rule!r}")

    def phone_refer(self, handle: int, sip_call_id: str, refer_to: str) -> int:
        """A REFER from a phone (sipagent/sip/refer.pyx): 202 if taken, else
        the refusal.  Runs inside pjsua's poll: it only looks up and
        schedules."""
        entry = self.by_agent_call.get(sip_call_id)
        if entry is None or entry.state is not EntryState.TALKING:
            return 603           # not an agent's leg of a connected queue call
        uri = refer_to.strip()
        if uri.startswith("<"):
            uri = uri[1:].split(">", 1)[0]
        if "replaces=" in uri.lower():
            consultation = self.replaces_consultation(entry, uri)
            if consultation is None:
                return 603       # names no consultation of this call
            asyncio.get_running_loop().call_soon(self._phone_hand_over, handle, consultation)
            return 202
        try:
            target = self.phone_target(uri_user(uri))
        except BadTransferTarget as exc:
            log.info("REFER to an unknown target refused", call_id=entry.call_id,
                     refer_to=refer_to, error=str(exc))
            return 603
        asyncio.get_running_loop().call_soon(self._phone_transfer, handle, entry.call_id, target)
        return 202

    def _phone_transfer(self, handle: int, call_id: str, target: TransferTarget) -> None:
        from sipagent.sip import refer

        try:
            self.transfer(call_id, target, origin="phone")
        except (NotConnected, BadTransferTarget) as exc:
            log.info("phone transfer refused", call_id=call_id, error=str(exc))
            refer.notify(handle, 603, "Declined")
            return
        # The caller is ours to carry on: to the phone, the transfer is done.
        refer.notify(handle, 200, "OK")

    def _phone_hand_over(self, handle: int, consultation: PhoneConsultation) -> None:
        from sipagent.sip import refer

        try:
            self.hand_over(consultation)
        except (NotConnected, InvalidEntryTransition) as exc:
            log.info("phone hand-over refused", call_id=consultation.entry.call_id,
                     error=str(exc))
            refer.notify(handle, 603, "Declined")
            return
        refer.notify(handle, 200, "OK")

    def transfer_row(self, order: TransferOrder) -> dict:
        return {"mode": order.mode, "from": order.by, "to": str(order.target),
                "origin": order.origin}

    async def carry(self, call, entry: QueueEntry, outcome: QueueOutcome,
                    depth: int) -> QueueOutcome:
        """The caller's side of a transfer, on the caller's own task."""
        order = entry.transfer
        target = order.target
        line = self.line
        if depth >= MAX_TRANSFERS:
            log.warning("too many transfers; ending the call", call_id=entry.call_id)
            await call.hangup()
            return outcome
        settings = self.transfer_settings
        result, reached = "done", order.reached
        if reached is not None:          # attended: the target answered already
            self._result(order, entry, "done")
            return await self._talk_on(call, entry, reached, outcome)
        if target.kind in ("queue", "agent"):
            self._result(order, entry, "done")
            if target.kind == "queue":
                queue, skills = target.value, entry.skills
            else:
                queue = self._queue_for_agent(target.value, entry.queue)
                skills = {agent_skill(target.value): 1}
            given = line.settings[queue].transfer_priority
            return await line.enqueue(call, queue,
                                      priority=entry.priority if given is None else given,
                                      skills=skills, data=entry.data, depth=depth + 1)
        if target.kind in ("flow", "mailbox"):
            self._result(order, entry, "done")
            if target.kind == "mailbox":
                call.vars["mailbox"] = target.value
                await line.run_flow(call, settings.mailbox_flow if settings else "voicemail")
            else:
                await line.run_flow(call, target.value)
            return outcome
        uri = dial_uri(target, settings and settings.number_uri)
        music = line.hold_music(entry.queue)
        music.start(call.leg)
        try:
            reached, result = await ring(line, uri, call_id=entry.call_id, caller=entry.caller,
                                         timeout=settings.ring_timeout if settings else 30.0)
        finally:
            music.stop(call.leg)
        if call.leg.is_ended:
            if reached is not None:
                reached.end()
            self._result(order, entry, "caller_gone")
            raise CallerHangup(entry.call_id)
        if reached is None:
            self._result(order, entry, result)
            return await self._fallback(call, entry, outcome, depth)
        self._result(order, entry, "done")
        return await self._talk_on(call, entry, reached, outcome)

    async def _talk_on(self, call, entry: QueueEntry, reached: CallLeg,
                       outcome: QueueOutcome) -> QueueOutcome:
        """The caller and a party outside the queue talk until either hangs up."""
        if self.recordings is not None:
            await self.recordings.agent_changed(entry.call_id, reached, str(entry.transfer.target),
                                                entry.queue)
        if await self.line.bridge_when_ready(call.leg, reached, entry.call_id):
            await asyncio.wait([reached.ended, call.leg.ended],
                               return_when=asyncio.FIRST_COMPLETED)
        reached.end()
        call.leg.end()
        return outcome

    def _result(self, order: TransferOrder, entry: QueueEntry, result: str) -> None:
        self.line.stats.transfer_result(order.from_queue, time.time(), entry.call_id, order.by,
                                        order.mode, order.target.kind, result)

    async def _fallback(self, call, entry: QueueEntry, outcome: QueueOutcome,
                        depth: int) -> QueueOutcome:
        settings = self.transfer_settings
        spec = (settings and settings.fallback) or f"queue:{entry.queue}"
        kind, _, arg = spec.partition(":")
        log.info("transfer failed; caller to the fallback", call_id=entry.call_id,
                 fallback=spec)
        if kind == "queue":
            # Back at the front: this caller has waited once already.
            return await self.line.enqueue(call, arg, priority=entry.priority + 1,
                                           skills=entry.skills, data=entry.data,
                                           depth=depth + 1)
        if kind == "flow":
            await self.line.run_flow(call, arg)
        else:
            if arg:
                await call.play(arg)
            await call.hangup()
        return outcome

    def _queue_for_agent(self, agent_id: str, current: str) -> str:
        queues = self.line.agent_queues(agent_id)
        if current in queues or not queues:
            return current
        return queues[0]
