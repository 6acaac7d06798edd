"""Keys the agent presses during a connected call: transfer, consult,
conference, pause the recording.

A mixin of :class:`sipagent.queue.operations.CallOperations`.  The digits
come from the agent's leg only (RFC 2833 events or SIP INFO end in that
leg's buffer; the conference bridge carries audio, so they never reach
the caller).  A code is matched as it is typed; a transfer code is
followed by the target and # (or a pause), said to the agent alone by a
prompt.  The codes are ``[call_keys]``; "" turns one off.
"""
from __future__ import annotations

import asyncio

import structlog

from sipagent.media.playback import play_prompt
from sipagent.queue.conversation import (Conversation, InvalidConversationMove,
                                         NotConnected, Phase)
from sipagent.queue.entry import QueueEntry
from sipagent.queue.recordings import RecordingRefused
from sipagent.queue.transfer import BadTransferTarget

log = structlog.get_logger("sipagent.queue.call_keys")

# A code's keys must follow each other within this many seconds.
KEY_GAP = 2.0


class CallKeys:
    def _codes(self) -> dict[str, str]:
        keys = self.call_keys
        if keys is None:
            return {}
        codes = {"blind_transfer": keys.blind_transfer,
                 "attended_transfer": keys.attended_transfer,
                 "conference": keys.conference, "cancel_consult": keys.cancel_consult,
                 "recording_pause": keys.recording_pause}
        return {code: action for action, code in codes.items() if code}

    async def listen_to_agent_keys(self, entry: QueueEntry, conversation: Conversation) -> None:
        codes = self._codes()
        if not codes:
            return
        leg = conversation.agent
        typed = ""
        while conversation.phase is not Phase.OVER and not leg.is_ended:
            digit = leg.take_digit()
            if digit is None:
                try:
                    await asyncio.wait_for(_first(leg.digit_arrived.wait(), conversation.over.wait()),
                                           KEY_GAP if typed else None)
                except TimeoutError:
                    typed = ""
                continue
            typed += digit
            if typed in codes:
                action, typed = codes[typed], ""
                await self._key_action(entry, conversation, action)
            elif not any(code.startswith(typed) for code in codes):
                typed = typed[-1] if any(c.startswith(typed[-1]) for c in codes) else ""

    async def _key_action(self, entry: QueueEntry, conversation: Conversation,
                          action: str) -> None:
        call_id = entry.call_id
        log.info("agent pressed a call key", call_id=call_id, agent=entry.agent_id,
                 action=action)
        try:
            if action in ("blind_transfer", "attended_transfer"):
                number = await self._key_target(conversation)
                if not number:
                    return
                target = self.phone_target(number)
                if action == "blind_transfer":
                    self.transfer(call_id, target, origin="keys")
                else:
                    self.consult(call_id, target)
            elif action == "conference":
                self.conference(call_id)
            elif action == "cancel_consult":
                self.cancel_consult(call_id)
            elif action == "recording_pause":
                state = self.recordings and self.recordings.state(call_id)
                if state == "recording":
                    self.recording(call_id, "pause")
                elif state == "paused":
                    self.recording(call_id, "resume")
        except (BadTransferTarget, NotConnected, InvalidConversationMove,
                RecordingRefused) as exc:
            log.info("call key refused", call_id=call_id, action=action, error=str(exc))
            await self._say_to_agent(conversation, "invalid")

    async def _key_target(self, conversation: Conversation) -> str:
        """The target the agent keys in after a transfer code, ended by #."""
        leg = conversation.agent
        await self._say_to_agent(conversation, "transfer-target")
        timeout = self.call_keys.target_timeout
        number = ""
        while not leg.is_ended:
            digit = leg.take_digit()
            if digit is None:
                try:
                    await asyncio.wait_for(leg.digit_arrived.wait(), timeout)
                except TimeoutError:
                    break
                continue
            if digit == "#":
                break
            number += digit
        return number

    async def _say_to_agent(self, conversation: Conversation, prompt: str) -> None:
        if conversation.agent.is_ended:
            return
        try:
            await play_prompt(conversation.agent, self.line.prompt(prompt))
        except Exception as exc:          # the agent hung up meanwhile
            log.debug("prompt to the agent not played", error=str(exc))


async def _first(*aws) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
