"""A call on the test phone (phone.py): the leg, its tone and recording, and
the rules by which the phone answers.

A leg reports what pjsua2 tells it as events and otherwise leaves the work
to the phone: it never releases itself inside its own callback.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

from simphones import tones
from simphones.ua_process import CALL_STATES, Account, guarded


class Phone(Protocol):
    """What a leg and an account need of the phone they belong to (phone.py)."""
    loop: asyncio.AbstractEventLoop

    def emit(self, **event: Any) -> None: ...
    def on_incoming(self, account: "PhoneAccount", prm: Any) -> None: ...
    def hangup_call(self, name: str, code: int | None) -> None: ...
    def release_call(self, name: str) -> None: ...


@dataclass
class AnswerRule:
    """How the phone answers calls to one user (or to any: "*")."""
    after: float = 0.0
    code: int | None = 200
    tone: float | None = None
    record: str | None = None
    hangup_after: float | None = None


class PhoneAccount(Account):
    """One caller identity (sip:user@ip:port); incoming calls go to the phone."""

    def __init__(self, ua: "Phone", user: str):
        super().__init__(ua)
        self.user = user

    @guarded
    def onRegState(self, prm):
        # A registration at a registrar (Kamailio in the cluster tests):
        # every answer is reported, so a test can wait for the 200.
        info = self.getInfo()
        self.owner.emit(ev="registered", user=self.user, code=prm.code,
                        active=info.regIsActive, expires=info.regExpiresSec)


MEDIA_STATUS = {pj.PJSUA_CALL_MEDIA_NONE: "none", pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
                pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
                pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
                pj.PJSUA_CALL_MEDIA_ERROR: "error"}


class PhoneCall(pj.Call):
    """One call leg plus the media the phone attaches to it: a looping tone
    it plays, a WAV recording of what it hears."""

    def __init__(self, ua: "Phone", acc: PhoneAccount, name: str,
                 call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.ua = ua
        self.name = name
        self.tone: float | None = None
        self.record: str | None = None
        self.hangup_after: float | None = None
        self.player: pj.ToneGenerator | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.media_reported = False
        self.last_state: tuple[str, int] | None = None
        self.disconnected = False
        self.timers: list[asyncio.TimerHandle] = []
        self.timers_armed = False
        self.audio: pj.AudioMedia | None = None     # the call's audio, once active
        self.bursts: list[pj.ToneGenerator] = []    # markers playing (cmd "burst")

    @guarded
    def onCallState(self, prm):
        ci = self.getInfo()
        state = CALL_STATES.get(ci.state, str(ci.state))
        code = int(ci.lastStatusCode)
        # EARLY repeats for 180 then 183; report each distinct (state, code).
        if (state, code) != self.last_state:
            self.last_state = (state, code)
            self.ua.emit(ev="state", call=self.name, state=state, code=code,
                         reason=ci.lastReason, at=time.monotonic())
        if state == "CONFIRMED" and self.hangup_after is not None and not self.timers_armed:
            self.timers_armed = True
            self.timers.append(self.ua.loop.call_later(
                self.hangup_after, self.ua.hangup_call, self.name, None))
        if state == "DISCONNECTED":
            self.disconnected = True
            # Releasing the Call inside its own callback would free the C++
            # object pjsua2 is still using; let the loop do it next.
            self.ua.loop.call_soon(self.ua.release_call, self.name)

    @guarded
    def onCallMediaState(self, prm):
        ci = self.getInfo()  # keep ci alive while iterating ci.media
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if self.media_reported:
                self.ua.emit(ev="media_state", call=self.name,
                             status=MEDIA_STATUS.get(mi.status, str(mi.status)))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                             pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
                # A re-INVITE may rebuild the stream (a new conference
                # slot): the tone and the recorder are connected again.
                self.attach_media(self.getAudioMedia(mi.index))

    @guarded
    def onCallTransferStatus(self, prm):
        self.ua.emit(ev="xfer_status", call=self.name, code=int(prm.statusCode),
                     reason=prm.reason, final=bool(prm.finalNotify))

    def attach_media(self, am: pj.AudioMedia) -> None:
        self.audio = am
        if self.tone:
            if self.player is None:
                self.player = tones.tone_source(self.tone)
            self.player.startTransmit(am)
        if self.record:
            if self.recorder is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.record)), exist_ok=True)
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.record)
            am.startTransmit(self.recorder)
        if not self.media_reported:
            self.media_reported = True
            # `at` (CLOCK_MONOTONIC, shared by the processes of a machine)
            # is when the recording started: tests place other processes'
            # events on it.
            self.ua.emit(ev="media", call=self.name, at=time.monotonic())

    def play_burst(self, freq_hz: float, ms: int, amplitude: float) -> float:
        """Start a marker: `ms` of a sine into the call, once.  Returns the
        time (monotonic) it was handed to the bridge, which sends it from its
        next tick on; the generator is released by `end_burst`."""
        if self.audio is None:
            raise RuntimeError(f"call {self.name!r} has no active audio yet")
        gen = pj.ToneGenerator()
        gen.createToneGenerator(tones.SAMPLE_RATE, 1)
        tone = pj.ToneDesc()
        tone.freq1, tone.freq2 = int(round(freq_hz)), 0
        tone.on_msec, tone.off_msec = int(ms), 0
        tone.volume = int(amplitude * 32767)
        desc = pj.ToneDescVector()
        desc.append(tone)
        gen.play(desc, False)
        gen.startTransmit(self.audio)
        self.bursts.append(gen)
        return time.monotonic()

    def end_burst(self, gen: pj.ToneGenerator) -> None:
        if gen in self.bursts:
            self.bursts.remove(gen)
            if self.audio is not None and not self.disconnected:
                try:
                    gen.stopTransmit(self.audio)
                except pj.Error:
                    pass

    @guarded
    def onDtmfDigit(self, prm):
        self.ua.emit(ev="dtmf", call=self.name, digit=prm.digit)
