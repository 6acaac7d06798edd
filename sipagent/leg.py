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

from sipagent.endpoint import pj_error_text

log = structlog.get_logger("sipagent.leg")


class LegEnded(Exception):
    """The leg was disconnected before it could do what was awaited."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class CallLeg(pj.Call):
    _instances: "weakref.WeakSet[CallLeg]" = weakref.WeakSet()

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

    @classmethod
    def disown_all(cls) -> int:
        """Stop Python from deleting the C++ Call of every leg still alive;
        call right before libDestroy.  Returns how many there were."""
        legs = list(cls._instances)
        for leg in legs:
            leg.thisown = False
        return len(legs)

    # -- pjsua2 callbacks (loop thread, possibly re-entrant) ------------------
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
                if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.media_ready.set()
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
        return self.getAudioMedia(-1)

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
