"""One SIP call leg (a pjsua2 Call) with its outcomes as asyncio objects.

pjsua2 reports a leg's life through callbacks that fire inside
``libHandleEvents`` on the loop thread.  A leg turns them into futures and a
digit buffer that coroutines can await; callbacks never call back into
pjsua2, because they can fire re-entrantly from inside our own pjsua2 calls
(a ``hangup()`` reports DISCONNECTED before it returns).
"""
from __future__ import annotations

import asyncio
import weakref
from collections import deque

import pjsua2 as pj
import structlog

from sipagent.sip import fax_media
from sipagent.sip.endpoint import pj_error_text

log = structlog.get_logger("sipagent.sip.leg")


class LegEnded(Exception):
    """The leg was disconnected before it could do what was awaited."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class CallLeg(pj.Call):
    _instances: "weakref.WeakSet[CallLeg]" = weakref.WeakSet()
    # Counts T.38 offers refused (the engine points it at its metric).
    on_t38_rejected = staticmethod(lambda: None)

    def __init__(self, account, pj_call_id: int = pj.PJSUA_INVALID_ID, *, label: str = ""):
        super().__init__(account, pj_call_id)
        CallLeg._instances.add(self)
        loop = asyncio.get_running_loop()
        self.label = label
        self.sip_call_id = ""
        self.confirmed: asyncio.Future = loop.create_future()
        self.early: asyncio.Future = loop.create_future()   # 180/183 seen
        self.ended: asyncio.Future = loop.create_future()   # -> (code, reason)
        self.media_ready = asyncio.Event()
        self.digit_buffer: deque[str] = deque()
        self.digit_arrived = asyncio.Event()
        self.log = log.bind(leg=label)
        self.media_policy: fax_media.JitterPolicy | None = None
        self._policy_call_id: int | None = None
        # The far end holds the call (its re-INVITE said sendonly/inactive).
        self.remote_hold = False
        # Told (from the loop, never inside the callback) after every media
        # change once media is up: a re-INVITE may rebuild the stream under
        # a new conference slot, so whoever connected it connects it again.
        self.media_listeners: list = []

    @classmethod
    def disown_all(cls) -> int:
        """Stop Python from deleting the C++ Call of every leg still alive;
        call right before libDestroy.  Returns how many there were."""
        legs = list(cls._instances)
        for leg in legs:
            leg.thisown = False
        return len(legs)

    def use_fax_media(self, policy: "fax_media.JitterPolicy") -> None:
        """Fax-safe jitter buffer for this leg's media.  Call before the
        media exists: before answering, or right after makeCall()."""
        self.media_policy = policy
        self._policy_call_id = self.getId()
        policy.claim(self._policy_call_id)

    # -- pjsua2 callbacks (loop thread, possibly re-entrant) ------------------
    def onStreamPreCreate(self, prm):
        if self.media_policy is not None:
            self.media_policy.apply(prm.streamInfo)

    def onCallRxReinvite(self, prm):
        # pjsua2 has no T.38: refuse it and the call stays on G.711.
        if fax_media.reject_t38(prm):
            self.on_t38_rejected()
            self.log.info("T.38 re-INVITE answered 488; staying on G.711")

    def onCallRxOffer(self, prm):
        if fax_media.reject_t38(prm):
            self.on_t38_rejected()
            self.log.info("T.38 offer answered 488; staying on G.711")

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
            if not self.sip_call_id:
                self.sip_call_id = ci.callIdString
            state = ci.state
            if state == pj.PJSIP_INV_STATE_EARLY and not self.early.done():
                self.early.set_result(ci.lastStatusCode)
            elif state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed.done():
                self.confirmed.set_result(True)
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                if self._policy_call_id is not None:
                    # Now, not from a loop callback: pjsua may hand this id
                    # to the next call within the same poll.
                    self.media_policy.release(self._policy_call_id)
                    self._policy_call_id = None
                outcome = (int(ci.lastStatusCode), ci.lastReason)
                for fut in (self.confirmed, self.early):
                    if not fut.done():
                        fut.set_exception(LegEnded(*outcome))
                        fut.exception()  # mark retrieved: nobody may be waiting
                if not self.ended.done():
                    self.ended.set_result(outcome)
                self.digit_arrived.set()  # wake a gather so it sees the hang-up
        except Exception:
            self.log.exception("onCallState failed")

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()
            media = ci.media  # iterate a bound copy: a temporary's vector is freed
            for m in media:
                if m.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                if m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.remote_hold = False
                    self.media_ready.set()
                elif m.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                    self.remote_hold = True
                    self.media_ready.set()
            if self.media_listeners:
                loop = asyncio.get_running_loop()
                for listener in list(self.media_listeners):
                    loop.call_soon(listener, self)
        except Exception:
            self.log.exception("onCallMediaState failed")

    def onDtmfDigit(self, prm):
        self.digit_buffer.append(prm.digit)
        self.digit_arrived.set()

    # -- actions (call from coroutines, never from callbacks) -----------------
    @property
    def is_ended(self) -> bool:
        return self.ended.done()

    def audio(self):
        """The call's audio port.  LegEnded when the call is over: a BYE
        handled while a flow awaited something else leaves no audio to play
        to, before or after the loop saw the DISCONNECTED state."""
        try:
            return self.getAudioMedia(-1)
        except pj.Error:
            if self.is_ended or not self.isActive():
                raise LegEnded(0, "the call ended") from None
            raise

    def respond(self, code: int, headers: dict[str, str] | None = None) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        _add_headers(prm, headers)
        self.answer(prm)

    def end(self, code: int | None = None, headers: dict[str, str] | None = None) -> None:
        """Hang up (or reject/cancel) unless already ended; never raises."""
        if self.ended.done():
            return
        prm = pj.CallOpParam(True)
        if code:
            prm.statusCode = code
        _add_headers(prm, headers)
        try:
            self.hangup(prm)
        except Exception as exc:  # already gone: the DISCONNECTED callback follows
            self.log.debug("hangup failed", error=pj_error_text(exc))

    async def until_answered(self, timeout: float | None = None) -> None:
        """Until the far end answers: LegEnded if the leg ended first,
        TimeoutError after ``timeout`` s (the leg still rings: the caller
        decides what to do with it).

        The LegEnded raised is a copy.  ``confirmed`` keeps the original,
        and a traceback on it would keep the awaiting frames, which hold
        this leg: a cycle per unanswered leg, left to the cyclic GC."""
        try:
            if timeout is None:
                await self.confirmed
            else:
                await asyncio.wait_for(asyncio.shield(self.confirmed), timeout)
        except LegEnded as ended:
            ended.__traceback__ = None
            raise LegEnded(ended.code, ended.reason) from None

    def take_digit(self) -> str | None:
        if self.digit_buffer:
            return self.digit_buffer.popleft()
        if not self.ended.done():
            self.digit_arrived.clear()
        return None


def dial(account, uri: str, *, label: str, headers: dict[str, str] | None = None) -> CallLeg:
    leg = CallLeg(account, label=label)
    prm = pj.CallOpParam(True)
    _add_headers(prm, headers)
    leg.makeCall(uri, prm)
    return leg


def _add_headers(prm, headers: dict[str, str] | None) -> None:
    for name, value in (headers or {}).items():
        h = pj.SipHeader()
        h.hName = name
        h.hValue = value
        prm.txOption.headers.append(h)
