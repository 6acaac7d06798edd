"""The flow verbs (ivrflows.Call) implemented on a real SIP call leg."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Mapping

from ivrflows.call import CallerHangup, Prompt, QueueOutcome, Recording, gather_with_tries
from ivrflows.schedule import is_open as schedule_is_open
from ivrflows.schedule import next_opening
from sipagent.sip.leg import CallLeg, LegEnded, dial
from sipagent.media.playback import play_prompt
from sipagent.media.recording import record_caller
from sipagent.fax.verbs import FaxVerbs
from sipagent.voicemail.verbs import VoicemailVerbs

if TYPE_CHECKING:
    from sipagent.calls.services import CallServices

# How long a caller's media may take to come up after our 200 OK.
MEDIA_TIMEOUT = 5.0
TRANSFER_RING_TIMEOUT = 30.0


class SipCall(VoicemailVerbs, FaxVerbs):
    def __init__(self, leg: CallLeg, *, call_id: str, caller: str, called: str,
                 headers: Mapping[str, str], services: CallServices, route, log):
        self.leg = leg
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.headers = dict(headers)
        self.vars: dict[str, str] = {}
        self.language = services.prompts.language
        self.answered = False
        self.log = log
        self._services = services
        self._route = route
        self._last_queue: str | None = None
        self._released = False      # hung up or transferred by the flow itself
        # For the agent's screen pop and the live channels list (api/desktop.py):
        self.flow = getattr(route, "flow", None)
        self.started = time.time()
        self.ivr: list[dict] = []   # the caller's menu choices: {"prompt", "digits"}

    def _alive(self) -> None:
        if self.leg.is_ended or self._released:
            raise CallerHangup(self.call_id)

    # -- the line ---------------------------------------------------------------------
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
        self._released = True
        self.leg.end(None if self.answered or cause == 200 else cause)

    # -- saying things ------------------------------------------------------------------
    async def play(self, *prompts: str, barge_in: bool = False) -> str | None:
        for name in prompts:
            self._alive()
            # A prompt heard for the first time is synthesized: not on the loop.
            path = await asyncio.to_thread(self._services.prompts.path, name, self.language)
            try:
                digit = await play_prompt(self.leg, path, barge_in=barge_in)
            except LegEnded:     # hung up while the prompt was being found
                raise CallerHangup(self.call_id) from None
            self._alive()
            if digit is not None:
                return digit
        return None

    async def say(self, text: str, *, language: str | None = None, voice: str | None = None,
                  barge_in: bool = False) -> str | None:
        self._alive()
        # espeak-ng runs once per distinct text (cached), in a thread: the
        # loop keeps serving every other call meanwhile.
        path = await asyncio.to_thread(self._services.prompts.speech, text, voice or language
                                       or self.language)
        return await self.play(str(path), barge_in=barge_in)

    # -- listening ----------------------------------------------------------------------
    async def gather(self, prompt: Prompt | None = None, *, max_digits: int = 1,
                     timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                     terminators: str = "#", min_digits: int = 1, tries: int = 1,
                     valid: str | None = None, invalid_prompt: str | None = None,
                     no_input_prompt: str | None = None, barge_in: bool = True) -> str:
        async def attempt(p: Prompt | None) -> str:
            if p:
                names = [p] if isinstance(p, str) else list(p)
                if not barge_in:
                    await self.play(*names)
                    self.leg.digit_buffer.clear()  # keys during a non-interruptible prompt
                else:
                    await self.play(*names, barge_in=True)
            return await self._collect(max_digits, timeout, inter_digit_timeout, terminators)

        digits = await gather_with_tries(attempt, self.play, prompt, tries=tries,
                                         min_digits=min_digits, valid=valid,
                                         invalid_prompt=invalid_prompt,
                                         no_input_prompt=no_input_prompt)
        # Only how many: a gather may be a PIN or a card number, which the
        # log must never hold (a flow logs the choices it wants logged).
        self.log.info("digits gathered", count=len(digits))
        if digits and (valid is not None or max_digits == 1):
            # A choice among keys, never free entry (a PIN, a card number).
            self.ivr.append({"prompt": prompt if prompt is None or isinstance(prompt, str)
                             else ",".join(prompt), "digits": digits})
        return digits

    async def _collect(self, max_digits: int, timeout: float, inter_digit: float,
                       terminators: str) -> str:
        digits = ""
        while len(digits) < max_digits:
            digit = self.leg.take_digit()
            if digit is None:
                self._alive()
                try:
                    await asyncio.wait_for(self.leg.digit_arrived.wait(),
                                           timeout if not digits else inter_digit)
                except TimeoutError:
                    break
                continue
            if digit in terminators:
                break
            digits += digit
        self._alive()
        return digits

    async def record(self, prompt: Prompt | None = None, *, beep: bool = True,
                     max_length: float = 120.0, silence: float = 5.0,
                     terminators: str = "#") -> Recording:
        if prompt:
            await self.play(*([prompt] if isinstance(prompt, str) else prompt))
        if beep:
            await self.play(str(self._services.prompts.beep()))
        self._alive()
        self.leg.digit_buffer.clear()  # a key pressed before the beep is not a terminator
        return await record_caller(self.leg, self._services.recordings_dir, max_length=max_length,
                                   silence=silence, terminators=terminators)

    # -- where the call goes -----------------------------------------------------------
    async def enqueue(self, queue: str, *, priority: int = 0,
                      skills: Mapping[str, int] | None = None,
                      data: Mapping[str, str] | None = None) -> QueueOutcome:
        self._alive()
        outcome = await self._services.queues.enqueue(self, queue, priority=priority,
                                                      skills=skills or {}, data=data or {})
        if outcome.answered:
            self._last_queue = queue
            self.vars["_last_agent"] = outcome.agent or ""
        return outcome

    async def transfer(self, target: str) -> bool:
        """Blind transfer done by the engine itself (re-dial and bridge), so it
        works whatever the caller's side supports; returns once the
        transferred call is over."""
        self._alive()
        uri = target if target.startswith(("sip:", "sips:")) else self._trunk_uri(target)
        self.log.info("transferring", target=uri)
        other = dial(self._services.account(), uri, label=f"{self.call_id}=>transfer",
                     headers={"X-Sipacd-Call-Id": self.call_id,
                              "X-Sipacd-Caller": self.caller or "anonymous"})
        self._services.track_leg(other)
        try:
            await other.until_answered(TRANSFER_RING_TIMEOUT)
        except (LegEnded, TimeoutError):
            other.end()
            self.log.info("transfer target did not answer", target=uri)
            self._alive()
            return False
        if not await self._services.queues.bridge_when_ready(self.leg, other, self.call_id):
            other.end()
            self._alive()
            return False
        self._released = True
        await asyncio.wait([other.ended, self.leg.ended], return_when=asyncio.FIRST_COMPLETED)
        other.end()
        self.leg.end()
        return True

    def _trunk_uri(self, number: str) -> str:
        host = self.leg.getInfo().remoteContact
        host = host.split("@", 1)[-1].split(">", 1)[0].split(";", 1)[0]
        return f"sip:{number}@{host}"

    async def goto_flow(self, flow: str) -> None:
        self._alive()
        await self._services.run_flow(self, flow)

    # -- the business ------------------------------------------------------------------
    def is_open(self, schedule: str | None = None) -> bool:
        name = schedule or getattr(self._route, "schedule", None)
        if not name:
            return True
        return schedule_is_open(self._services.schedules[name], datetime.now(timezone.utc))

    async def request_callback(self, number: str, *, queue: str,
                               data: Mapping[str, str] | None = None,
                               at: datetime | None = None) -> str:
        if at is None:
            name = getattr(self._route, "schedule", None)
            if name and not self.is_open():
                at = next_opening(self._services.schedules[name], datetime.now(timezone.utc))
        return self._services.queues.callbacks.request_web(
            number, queue, None if at is None else at.timestamp())

    async def record_survey(self, score: int, *, scale: int = 5,
                            question: str = "satisfaction") -> None:
        self._services.eventlog.survey_answer(self.call_id, score, scale, queue=self._last_queue)
        self._services.metrics.surveys.labels(self._last_queue or "", str(score)).inc()
        self.log.info("survey answer", score=score, scale=scale, question=question)

    async def _until_ended(self, aw, timeout: float) -> None:
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait([task, self.leg.ended], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
