"""The flow verbs (ivrflows.Call) implemented on a real SIP call leg."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Mapping

from ivrflows.call import CallerHangup, QueueOutcome
from sipagent.leg import CallLeg
from sipagent.media import play_prompt
from sipagent.prompts import PromptLibrary

if TYPE_CHECKING:
    from sipagent.acd import QueueRuntime

# How long a caller's media may take to come up after our 200 OK.
MEDIA_TIMEOUT = 5.0


class SipCall:
    def __init__(self, leg: CallLeg, *, call_id: str, caller: str, called: str,
                 headers: Mapping[str, str], prompts: PromptLibrary, queues: "QueueRuntime",
                 log):
        self.leg = leg
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.headers = dict(headers)
        self.vars: dict[str, str] = {}
        self.answered = False
        self.log = log
        self._prompts = prompts
        self._queues = queues

    def _alive(self) -> None:
        if self.leg.is_ended:
            raise CallerHangup(self.call_id)

    async def answer(self, *, early_media: bool = False) -> None:
        self._alive()
        if self.answered:
            return
        self.leg.respond(183 if early_media else 200)
        if not early_media:
            self.answered = True
        await self._until_ended(self.leg.media_ready.wait(), MEDIA_TIMEOUT)
        self._alive()

    async def hangup(self, cause: int = 200) -> None:
        # Before the answer a cause is a SIP final response (486, 603...).
        self.leg.end(None if self.answered or cause == 200 else cause)

    async def play(self, *prompts: str, barge_in: bool = False) -> str | None:
        for name in prompts:
            self._alive()
            digit = await play_prompt(self.leg, self._prompts.path(name), barge_in=barge_in)
            self._alive()
            if digit is not None:
                return digit
        return None

    async def gather(self, prompt: str | None = None, *, max_digits: int = 1,
                     timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                     terminators: str = "#") -> str:
        if prompt:
            await self.play(prompt, barge_in=True)
        digits = ""
        while len(digits) < max_digits:
            digit = self.leg.take_digit()
            if digit is None:
                self._alive()
                wait = timeout if not digits else inter_digit_timeout
                try:
                    await asyncio.wait_for(self.leg.digit_arrived.wait(), wait)
                except TimeoutError:
                    break
                continue
            if digit in terminators:
                break
            digits += digit
        self.log.info("digits gathered", digits=digits)
        return digits

    async def enqueue(self, queue: str, *, priority: int = 0,
                      skills: Mapping[str, int] | None = None,
                      data: Mapping[str, str] | None = None) -> QueueOutcome:
        self._alive()
        return await self._queues.enqueue(self, queue, priority=priority,
                                          skills=skills or {}, data=data or {})

    async def _until_ended(self, aw, timeout: float) -> None:
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait([task, self.leg.ended], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
