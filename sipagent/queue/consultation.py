"""Attended transfer and three-way conference: the agent consults first.

A mixin of :class:`sipagent.queue.operations.CallOperations`.

    consult     the caller is put on hold (music); the engine dials the
                target; once it answers, the agent and the target talk
                (phase CONSULTING).  Busy or no answer: the caller is taken
                off hold, back with the agent, and the failure is counted.
    complete    the agent leaves (wrap-up at once) and the caller talks to
                the target: the transfer is done.  Hanging up the agent's
                phone while consulting or in a conference does the same.
    cancel      the target is hung up; caller and agent talk again.
    conference  caller, agent and target all hear each other; the target
                or the agent may then leave, the other two stay.

Targets are numbers and SIP addresses (the parties a consultation reaches
by dialling); queues, agents, flows and mailboxes take a blind transfer.
"""
from __future__ import annotations

import asyncio
import time

import structlog

from sipagent.queue.conversation import (Conversation, InvalidConversationMove, Move,
                                         NotConnected, Phase, media_of)
from sipagent.queue.entry import EntryEvent, QueueEntry
from sipagent.queue.transfer import (BadTransferTarget, TransferOrder, TransferTarget, dial_uri,
                                     ring)
from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.queue.consultation")

CONSULTED_MEDIA_WAIT = 5.0


class Consultation:
    def consult(self, call_id: str, target: TransferTarget) -> None:
        entry, conversation = self.talking(call_id)
        self.check_restrictions(entry, target)
        settings = self.transfer_settings
        uri = dial_uri(target, settings and settings.number_uri)
        if uri is None:
            raise BadTransferTarget("an attended transfer dials a number or a SIP address; "
                                    f"{target.kind} targets take a blind transfer")
        if conversation.consulting or conversation.consulted is not None:
            raise InvalidConversationMove(f"call {call_id!r} is already consulting")
        if conversation.phase is Phase.TALKING:
            conversation.move(Move.HOLD, by="consult")
        conversation.consulting = True
        conversation.consult_target = target
        self.line.spawn(self._consult(entry, conversation, target, uri))

    async def _consult(self, entry: QueueEntry, conversation: Conversation,
                       target: TransferTarget, uri: str) -> None:
        settings = self.transfer_settings
        try:
            leg, result = await ring(self.line, uri, call_id=entry.call_id, caller=entry.caller,
                                     timeout=settings.ring_timeout if settings else 30.0)
            if leg is not None and not await media_of([leg], CONSULTED_MEDIA_WAIT):
                leg.end()
                leg, result = None, "failed"
        finally:
            conversation.consulting = False
        if conversation.phase is Phase.OVER or not conversation.consulting_wanted:
            if leg is not None:
                leg.end()
            conversation.consulting_wanted = True
            if conversation.phase is Phase.HELD and conversation.held_by == "consult":
                conversation.move(Move.RESUME, by="consult")
            return
        if leg is None:
            log.info("consulted party not reached; the caller is back with the agent",
                     call_id=entry.call_id, target=str(target), result=result)
            self.line.stats.transfer_result(entry.queue, time.time(), entry.call_id, entry.agent_id,
                                            "attended", target.kind, result)
            if conversation.phase is Phase.HELD and conversation.held_by == "consult":
                conversation.move(Move.RESUME, by="consult")
            return
        conversation.join_consulted(leg)
        leg.ended.add_done_callback(
            lambda _f: asyncio.get_running_loop().call_soon(self._consulted_gone,
                                                            conversation, leg))

    def _consulted_gone(self, conversation: Conversation, leg: CallLeg) -> None:
        if conversation.consulted is not leg or conversation.phase is Phase.OVER:
            return
        conversation.drop_consulted()
        if conversation.phase is Phase.HELD:
            conversation.move(Move.RESUME, by="consult")

    def cancel_consult(self, call_id: str) -> str:
        _, conversation = self.talking(call_id)
        leg = conversation.consulted
        if leg is None:
            if not conversation.consulting:
                raise InvalidConversationMove(f"call {call_id!r} is not consulting")
            conversation.consulting_wanted = False      # still ringing: dropped when it answers
            return conversation.phase.value
        conversation.drop_consulted()
        leg.end()
        if conversation.phase is Phase.HELD:
            conversation.move(Move.RESUME, by="consult")
        return conversation.phase.value

    def conference(self, call_id: str) -> str:
        _, conversation = self.talking(call_id)
        return conversation.move(Move.MERGE).value

    def complete_consult(self, call_id: str, *, origin: str) -> TransferOrder:
        """The agent leaves; the caller and the consulted party talk on."""
        entry, conversation = self.talking(call_id)
        reached = conversation.consulted
        if reached is None or reached.is_ended:
            raise InvalidConversationMove(f"call {call_id!r} has nobody consulted to hand over to")
        mode = "conference" if conversation.phase is Phase.CONFERENCE else "attended"
        conversation.drop_consulted(quietly=True)
        order = TransferOrder(conversation.consult_target, by=entry.agent_id, origin=origin,
                              mode=mode, from_queue=entry.queue, reached=reached)
        entry.transfer = order
        entry.advance(EntryEvent.TRANSFERRED)
        self.line.agent_leaves(entry, "transfer")
        if entry.agent_leg is not None:
            entry.agent_leg.end()
        log.info("call handed over", call_id=call_id, agent=order.by, to=str(order.target),
                 mode=mode, origin=origin)
        entry.changed.set()
        return order

    def agent_left(self, entry: QueueEntry) -> bool:
        """The agent's phone hung up: while consulting or in a conference the
        caller stays with the consulted party (True); else False."""
        conversation = entry.conversation
        if conversation is None or conversation.consulted is None \
                or conversation.consulted.is_ended:
            return False
        try:
            self.complete_consult(entry.call_id, origin="hangup")
        except (NotConnected, InvalidConversationMove):
            return False
        return True
