"""What a SIP call must look like to carry fax as G.711 audio.

A fax modem tolerates neither lost nor invented samples: spandsp's in-memory
test shows that one sample slipped per second of audio already fails V.17
training (tests/test_fax_engine.py).  Voice-friendly media processing does
exactly that, so a fax call turns it off:

- codecs: G.711 only (PCMA, PCMU); anything compressed destroys modem signals;
- VAD off (silence suppression would drop the quiet parts of the handshake),
  echo canceller off (it would treat the far modem's signal as echo);
- PLC off: a concealed frame is invented audio; silence is less harmful;
- jitter buffer: fixed prefetch and no discard.  pjmedia's default adaptive
  buffer with progressive discard drops frames whenever its level exceeds the
  target, which between two processes (two media clocks ticking with
  scheduling jitter) happens several times a second.

What two faxua processes on 127.0.0.1 showed (2 pages, V.17, ECM; slips =
changes of the delay between what one modem sent and the other heard, from
line recordings):

    prefetch / discard          result                       slips
    pjsua default / progressive failed at DIS (bad CRCs) or  ~11 per minute, each
                                OK but 56 s instead of 31 s  80 or 160 samples
    fixed 120 ms / progressive  failed after page 1           13-22 per minute
    fixed 120 ms / static       OK, 45 s (ECM resends)        11 (a 100 ms refill, then 80s)
    adaptive / none             OK (one run: one 160 jump)    0-1
    fixed 120 ms / none         OK, 31 s, pixel-identical     0  (default now 240 ms)

The slices are whole 10 ms G.711 codec frames (80 samples): the jitter
buffer works in codec frames, two per 20 ms packet.  Fixed prefetch with
progressive discard is the worst: the discard keeps trimming the level the
prefetch asks for.

The jitter buffer is set per call (JitterPolicy: prefetch from pjsua2's
onStreamPreCreate, discard through a C hook in mediaports/jitter.pyx), so
voice calls keep pjmedia's defaults.  VAD, the echo canceller and PLC are
endpoint-wide in pjsua2 2.12.1: `configure_media`/`configure_codecs` belong
to a process that carries fax (and suit voice well enough: PLC off only
trades concealment of lost packets for silence).

pjsua2 has no T.38, so a re-INVITE offering T.38 is answered 488 and the
call stays on G.711 (`reject_t38`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pjsua2 as pj

G711 = ("PCMA/8000/1", "PCMU/8000/1")


@dataclass(frozen=True)
class JitterPolicy:
    """A fax call's jitter buffer.  `fixed_ms` of prefetch absorbs a stall of
    the sending side's media clock up to that long (a longer one empties the
    buffer, and the refill inserts silence: one slip); `max_ms` is the
    ceiling past which frames must go anyway; `discard` is the per-call
    frame-discard policy.  Latency is harmless to T.30 (its timers are
    seconds), so the prefetch is generous: on these shared VMs (up to 60 %
    CPU steal seen) media-clock stalls of a few hundred ms do happen.  A
    clock more than 500 ms late skips its missed ticks (pjmedia's
    MAX_JUMP_MSEC): audio lost that no buffer can restore.
    fixed_ms=None / discard=None leave pjsua's settings (for comparison)."""
    fixed_ms: int | None = 240
    max_ms: int = 1000
    discard: str | None = "none"

    def claim(self, call_id: int) -> None:
        """Before the call's media exists: before answer(), or right after
        makeCall() (its stream is made when the answer arrives)."""
        if self.discard is not None:
            from sipagent.mediaports import jitter

            jitter.set_call_discard(call_id, self.discard)

    def release(self, call_id: int) -> None:
        """When the call has ended: pjsua reuses call ids."""
        from sipagent.mediaports import jitter

        jitter.clear_call(call_id)

    def apply(self, si: "pj.StreamInfo") -> None:
        """From Call.onStreamPreCreate: the prefetch."""
        if self.fixed_ms is None:
            return
        si.jbInit = si.jbMinPre = si.jbMaxPre = self.fixed_ms
        si.jbMax = self.max_ms
        # jbDiscardAlgo cannot be set here (SWIG wraps the enum as an opaque
        # type): claim() sets it in C for this call instead.


def configure_media(med: "pj.MediaConfig") -> None:
    """Endpoint media settings for fax (before libInit)."""
    med.clockRate = 8000
    med.sndClockRate = 8000
    med.channelCount = 1
    med.noVad = True
    med.ecTailLen = 0


def configure_jitter(discard: str = "none") -> None:
    """Process-wide: no frame discard for every stream created from now on
    (after libInit).  Simpler than JitterPolicy.claim() per call, and the
    only way for a call that turns into a fax after its media exists; costs
    voice calls pjmedia's latency trimming after bursts."""
    from sipagent.mediaports import jitter

    jitter.set_discard(discard)


def configure_codecs(ep: "pj.Endpoint", prefer: str = "PCMA") -> None:
    """G.711 only, `prefer` first; PLC and VAD off in both (after libStart)."""
    order = sorted(G711, key=lambda c: not c.startswith(prefer))
    # 254 down: pjmedia demotes 255 to 254 after sorting, which would tie.
    prio = {c: 254 - i for i, c in enumerate(order)}
    for info in ep.codecEnum2():
        ep.codecSetPriority(info.codecId, prio.get(info.codecId, 0))
    without_concealment(ep)


def without_concealment(ep: "pj.Endpoint") -> None:
    """PLC and VAD off in both G.711 codecs, for every call of the process
    (pjsua2 2.12.1 has no per-call codec settings)."""
    for codec in G711:
        param = ep.codecGetParam(codec)
        param.setting.plc = False
        param.setting.vad = False
        ep.codecSetParam(codec, param)


def offers_t38(sdp: str) -> bool:
    """An SDP with an image/T.38 media line (with or without audio)."""
    for line in sdp.splitlines():
        low = line.strip().lower()
        if low.startswith("m=image") and "t38" in low:
            return True
    return False


def reject_t38(prm) -> bool:
    """For Call.onCallRxReinvite / onCallRxOffer: 488 Not Acceptable Here
    to a T.38 offer.  Returns True when it rejected."""
    try:
        sdp = prm.offer.wholeSdp
    except Exception:
        return False
    if offers_t38(sdp):
        prm.statusCode = 488
        return True
    return False


def active_audio(call: "pj.Call") -> tuple[int, int] | None:
    """(media index, conference slot) of the call's active audio, else None."""
    ci = call.getInfo()  # keep ci alive while iterating ci.media
    for mi in ci.media:
        if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            return mi.index, call.getAudioMedia(mi.index).getPortId()
    return None


def audio_slot(call: "pj.Call") -> int | None:
    """The call's conference slot once its audio is active, else None."""
    audio = active_audio(call)
    return audio[1] if audio else None
