"""Attended transfer done from the agent's phone, as phones do it.

A mixin of :class:`sipagent.queue.operations.CallOperations`.

1. On a connected queue call, the agent's phone holds the caller and
   places a second call to the engine, dialling the target (a number, or
   an extension that names one: ``[transfer.extensions]``).  The engine
   recognises it as a consultation (the call comes from the agent's own
   phone, the From user of its line's URI, while that agent is on a
   queue call), answers it, dials the target and bridges the two.
2. The phone sends REFER on the caller's dialog with
   ``Refer-To: <target?Replaces=<the consultation's dialog>>``.  The
   engine is both the transferee and the far end of that consultation,
   so it hands over inside: the caller is bridged to the target's leg,
   the agent leaves (wrap-up), the REFER is answered (NOTIFY 200) and the
   consultation dialog with the phone is hung up, as the Replaces
   semantics promise the transferor.

A consultation that ends before the REFER (the phone hangs up, the target
hangs up) ends its other half; the caller stays held until the phone
resumes it.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import unquote

import structlog

from sipagent.queue.entry import EntryEvent, EntryState, QueueEntry
from sipagent.queue.transfer import BadTransferTarget, TransferOrder, TransferTarget, dial_uri, ring
from sipagent.sip.leg import CallLeg
from sipagent.sip.message import uri_user

log = structlog.get_logger("sipagent.queue.phone_consult")

MEDIA_WAIT = 5.0


@dataclass
class PhoneConsultation:
    entry: QueueEntry
    phone_leg: CallLeg          # the agent phone's second call, answered by the engine
    target: TransferTarget
    target_leg: CallLeg | None = None


class PhoneConsult:
    def consulting_agent(self, caller_user: str) -> QueueEntry | None:
        """The connected queue call of the agent whose own phone this is, if any."""
        agent_id = self.agent_by_phone_user().get(caller_user)
        if agent_id is None:
            return None
        for entry in self.line.entries.values():
            if entry.agent_id == agent_id and entry.state is EntryState.TALKING \
                    and entry.conversation is not None:
                return entry
        return None

    def agent_by_phone_user(self) -> dict[str, str]:
        if self._phone_users is None:
            users: dict[str, list[str]] = {}
            for agent_id, line in self.line.lines.items():
                users.setdefault(uri_user(line.uri), []).append(agent_id)
            # Two agents sharing a phone user cannot be told apart: neither is.
            self._phone_users = {u: a[0] for u, a in users.items() if len(a) == 1}
        return self._phone_users

    async def phone_consult(self, entry: QueueEntry, leg: CallLeg, called: str) -> None:
        """Serve a consultation call from the agent's phone (the engine's
        ``_incoming`` hands it here, the leg not yet answered)."""
        try:
            target = self.phone_target(called)
            uri = dial_uri(target, self.transfer_settings and self.transfer_settings.number_uri)
            if uri is None:
                raise BadTransferTarget(f"{target.kind} targets take a blind transfer")
        except BadTransferTarget as exc:
            log.info("consultation from the agent's phone refused", call_id=entry.call_id,
                     called=called, error=str(exc))
            leg.end(404)
            return
        consultation = PhoneConsultation(entry, leg, target)
        leg.respond(180)
        settings = self.transfer_settings
        reached, result = await ring(self.line, uri, call_id=entry.call_id, caller=entry.caller,
                                     timeout=settings.ring_timeout if settings else 30.0)
        if reached is None or leg.is_ended:
            if reached is not None:
                reached.end()
            leg.end(486 if result == "busy" else 480)
            self.line.stats.transfer_result(entry.queue, time.time(), entry.call_id,
                                            entry.agent_id or "", "attended", target.kind,
                                            result if reached is None else "agent_gone")
            return
        consultation.target_leg = reached
        leg.respond(200)
        self.phone_consults[leg.sip_call_id] = consultation
        log.info("consultation from the agent's phone", call_id=entry.call_id,
                 agent=entry.agent_id, target=str(target))
        try:
            if await self.line.bridge_when_ready(leg, reached, entry.call_id):
                await asyncio.wait([leg.ended, reached.ended],
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Handed over: the target is the caller's now, not ours to end.
            if self.phone_consults.pop(leg.sip_call_id, None) is not None:
                reached.end()
            leg.end()

    def replaces_consultation(self, entry: QueueEntry, refer_uri: str) -> PhoneConsultation | None:
        """The consultation a REFER's ``?Replaces=`` names, if it is this call's."""
        _, _, query = refer_uri.partition("?")
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name.lower() == "replaces":
                call_id = unquote(value).split(";", 1)[0]
                found = self.phone_consults.get(call_id)
                if found is not None and found.entry is entry:
                    return found
        return None

    def hand_over(self, consultation: PhoneConsultation) -> TransferOrder:
        """REFER with Replaces: the caller to the consultation's target."""
        entry = consultation.entry
        self.phone_consults.pop(consultation.phone_leg.sip_call_id, None)
        order = TransferOrder(consultation.target, by=entry.agent_id, origin="phone",
                              mode="attended", from_queue=entry.queue,
                              reached=consultation.target_leg)
        entry.transfer = order
        entry.advance(EntryEvent.TRANSFERRED)
        self.line.agent_leaves(entry, "transfer")
        consultation.phone_leg.end()
        log.info("call handed over by the agent's phone", call_id=entry.call_id,
                 agent=order.by, to=str(order.target))
        entry.changed.set()
        return order
