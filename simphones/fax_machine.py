"""A SIP fax terminal in its own process: one call, one document, G.711.

    python -m simphones.fax_machine --port P --mode send|receive --tiff PATH
        [--dial sip:..]            dial this URI (default: answer the first call)
        [--t30 calling|answering]  T.30 role (default: calling iff we dial)
        [--ident ID] [--jitter-ms 240|0] [--codec PCMA|PCMU] [--timeout S]
        [--dtmf KEYS] [--fax-after S]   a person at the handset: keys, then Start
        [--hangup-after-pages N]        hang up during the page after page N

Why a process of its own: a fax between two processes is the case that
matters (each has its own media clock, and audio crosses real RTP), and
pjsua2 allows one library per process.  The tests and benchmarks start one
sender and one receiver.

stdout carries JSON events, one per line:
    {"ev":"ready","port":P,"ip":IP}
    {"ev":"state","state":"CONFIRMED","code":200}
    {"ev":"media","slot":N,"jitter_discard":"none",..}  fax port attached
    {"ev":"progress","negotiated":true,"pages":1,"line_seconds":..}
    {"ev":"t38_rejected"}                     a re-INVITE offered T.38: 488
    {"ev":"fax", ...FaxSession.poll() result, "cpu_seconds":..}
    {"ev":"exit"}
    {"ev":"ok"|"error","id":..}              the answer to a command
stdin: a line {"cmd":"quit"} or EOF ends the process; so do SIGTERM/SIGINT
and --timeout.  ({"cmd":"ping"} is answered too.)

The process (the pjsua2 library, stdin and stdout, start and shutdown) is
ua_process.py's, shared with the phone: pjsua2 lives in the asyncio loop's
thread (threadCnt = 0, mainThreadOnly).  The fax modem runs in C on the
bridge's clock thread; its results come back through the session's eventfd
(add_reader).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys

import pjsua2 as pj

from simphones.ua_process import (CALL_STATES, Account, Library, UAProcess, guarded,
                                   run_process)
from sipagent.mediaports import jitter
from sipagent.mediaports.fax import FaxSession
from sipagent.sip import fax_media


class FaxCall(pj.Call):
    def __init__(self, term: "FaxTerminal", acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.term = term

    @guarded
    def onCallState(self, prm):
        ci = self.getInfo()
        self.term.emit(ev="state", state=CALL_STATES.get(ci.state, str(ci.state)),
                       code=int(ci.lastStatusCode), reason=ci.lastReason)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.term.loop.call_soon(self.term.call_ended)

    @guarded
    def onStreamPreCreate(self, prm):
        self.term.jitter.apply(prm.streamInfo)

    @guarded
    def onCallMediaState(self, prm):
        audio = fax_media.active_audio(self)
        if audio is not None:
            self.term.media_ready(*audio)

    @guarded
    def onCallRxReinvite(self, prm):
        if fax_media.reject_t38(prm):
            self.term.emit(ev="t38_rejected")

    @guarded
    def onCallRxOffer(self, prm):
        if fax_media.reject_t38(prm):
            self.term.emit(ev="t38_rejected")


class FaxTerminal(UAProcess):
    """The fax machine: one call, one FaxSession on it."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(args.ip, args.port)
        self.args = args
        # Per call: the process-wide jitter settings stay pjsua's defaults.
        self.jitter = fax_media.JitterPolicy(args.jitter_ms or None, discard=args.jitter_discard)
        self.account: Account | None = None
        self.call: FaxCall | None = None
        self.call_id: int | None = None
        self.fax: FaxSession | None = None
        self.result: dict | None = None
        self.cpu_at_media = 0.0
        self.recorders: list[pj.AudioMediaRecorder] = []
        self.media_seen = False
        self.cutting = False

    # --- library ------------------------------------------------------------
    def start(self) -> None:
        a = self.args
        self.lib = Library(ip=a.ip, port=a.port, user_agent="sipacd-fax-machine", max_calls=4,
                           log_level=a.log_level)
        fax_media.configure_codecs(self.lib.ep, a.codec)
        self.account = Account(self)
        self.account.create(self.lib.account_config("fax", a.rtp_port), True)

    def started(self) -> None:
        if self.args.dial:
            self.dial(self.args.dial)

    # --- the call -------------------------------------------------------------
    def dial(self, uri: str) -> None:
        self.call = FaxCall(self, self.account)
        self.call.makeCall(uri, pj.CallOpParam(True))
        self.call_id = self.call.getId()
        self.jitter.claim(self.call_id)       # the stream comes with the answer

    def on_incoming(self, acc, prm) -> None:
        call = FaxCall(self, acc, prm.callId)
        op = pj.CallOpParam(True)
        if self.call is not None:
            op.statusCode = 486          # one fax at a time
            call.hangup(op)
            return
        self.call = call
        self.call_id = prm.callId
        self.jitter.claim(prm.callId)            # before answer() creates the stream
        op.statusCode = 200
        call.answer(op)

    def media_ready(self, med_idx: int, slot: int) -> None:
        if self.fax is not None or self.media_seen:
            return                       # a re-INVITE refreshed media; same slot
        self.media_seen = True
        a = self.args
        if a.dtmf:
            # RFC 4733, like a fax machine's handset keypad on a SIP line.
            self.loop.call_later(1.0, self.send_dtmf, a.dtmf)
        if a.fax_after:
            self.loop.call_later(a.fax_after, self.start_fax, med_idx, slot)
        else:
            self.start_fax(med_idx, slot)

    def send_dtmf(self, keys: str) -> None:
        if self.call is not None:
            self.call.dialDtmf(keys)
            self.emit(ev="dtmf", keys=keys)

    def start_fax(self, med_idx: int, slot: int) -> None:
        if self.call is None or self.fax is not None:
            return
        a = self.args
        calling = a.t30 == "calling" if a.t30 else bool(a.dial)
        self.fax = FaxSession(a.mode, a.tiff, calling=calling, ident=a.ident,
                              ecm=not a.no_ecm, log_level=a.spandsp_log)
        self.cpu_at_media = resource.getrusage(resource.RUSAGE_SELF)
        port = self.fax.attach(slot)
        self.start_recordings(slot)
        self.loop.add_reader(self.fax.fileno(), self.fax_event)
        self.emit(ev="media", slot=port,
                  jitter_discard=jitter.stream_discard(self.call_id, med_idx),
                  process_jitter_discard=jitter.get_discard())

    def start_recordings(self, call_slot: int) -> None:
        """Line recordings for diagnosis: what we heard, what we sent."""
        a = self.args
        if a.record_rx:
            self.recorders.append(pj.AudioMediaRecorder())
            self.recorders[-1].createRecorder(a.record_rx)
            self.call.getAudioMedia(-1).startTransmit(self.recorders[-1])
        if a.record_tx:
            self.recorders.append(pj.AudioMediaRecorder())
            self.recorders[-1].createRecorder(a.record_tx)
            self.fax.tap(self.recorders[-1].getPortId())

    def fax_event(self) -> None:
        self.fax.drain()
        result = self.fax.poll()
        if result is None:
            progress = self.fax.progress()
            self.emit(ev="progress", **progress)
            cut = self.args.hangup_after_pages
            if cut and progress["pages"] >= cut and not self.cutting:
                # Late enough that the far end has our confirmation of page
                # N and is sending the next page: a hang-up mid-page.
                self.cutting = True
                self.loop.call_later(self.args.hangup_delay, self.hangup)
                self.emit(ev="cutting", after_pages=progress["pages"])
            return
        self.loop.remove_reader(self.fax.fileno())
        self.finish(result)

    def finish(self, result: dict) -> None:
        if self.result is not None:
            return
        ru = resource.getrusage(resource.RUSAGE_SELF)
        # Process CPU from media start to phase E: RTP, bridge and modem.
        result["cpu_seconds"] = round(ru.ru_utime + ru.ru_stime - self.cpu_at_media.ru_utime
                                      - self.cpu_at_media.ru_stime, 3) if self.cpu_at_media else None
        self.result = result
        self.emit(ev="fax", **result)
        # Let the last T.30 frames (MCF/DCN) drain through the jitter buffer
        # before the BYE; the peer usually hangs up first anyway.
        self.loop.call_later(self.args.linger, self.hangup)

    def hangup(self) -> None:
        if self.call is not None:
            try:
                self.call.hangup(pj.CallOpParam(True))
            except pj.Error:
                pass

    def call_ended(self) -> None:
        self.release_fax()
        if self.call_id is not None:
            self.jitter.release(self.call_id)
            self.call_id = None
        if self.result is None:
            self.finish({"ok": False, "status": -1, "status_text": "call ended before phase E"})
        self.call = None
        gc.collect()
        self.stopping.set()

    def release_fax(self) -> None:
        if self.fax is None:
            return
        try:
            self.loop.remove_reader(self.fax.fileno())
        except (RuntimeError, ValueError):
            pass
        self.fax.detach()
        result = self.fax.poll()
        self.fax.close()                 # closes the received TIFF
        self.fax = None
        if result is not None and self.result is None:
            self.finish(result)

    async def shutdown(self) -> None:
        if self.result is None and self.fax is not None:
            why = f"timeout after {self.args.timeout} s" if self.timed_out else "stopped"
            self.finish(self.fax.poll() or {"ok": False, "status": -1,
                                            "status_text": f"{why} before phase E",
                                            **self.fax.progress()})
        self.hangup()
        end = self.loop.time() + 3
        while self.call is not None and self.loop.time() < end:
            self.lib.ep.libHandleEvents(10)
            await asyncio.sleep(0)
        self.release_fax()
        self.call = None
        if self.recorders:
            # A recorder's WAV header is written on a later bridge tick.
            self.recorders.clear()
            gc.collect()
            for _ in range(20):
                self.lib.ep.libHandleEvents(10)
        if self.account is not None:
            self.account.shutdown()
        self.account = None
        await super().shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simphones.fax_machine", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="SIP UDP port")
    ap.add_argument("--ip", default="127.0.0.1")
    ap.add_argument("--rtp-port", type=int, default=4000)
    ap.add_argument("--mode", choices=("send", "receive"), required=True)
    ap.add_argument("--tiff", required=True, help="document to send / file to receive into")
    ap.add_argument("--dial", help="SIP URI to call (default: answer the first call)")
    ap.add_argument("--t30", choices=("calling", "answering"),
                    help="T.30 role (default: calling iff we dial)")
    ap.add_argument("--ident", default="", help="TSI/CSI, at most 20 characters")
    ap.add_argument("--no-ecm", action="store_true")
    ap.add_argument("--codec", choices=("PCMA", "PCMU"), default="PCMA")
    ap.add_argument("--jitter-ms", type=int, default=fax_media.JitterPolicy.fixed_ms,
                    help="fixed jitter-buffer prefetch without discard; 0 = pjsua's adaptive default")
    ap.add_argument("--jitter-discard", choices=("none", "static", "progressive"), default="none",
                    help="this call's jitter-buffer frame discard (pjmedia's default: progressive)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--dtmf", help="keys to press (RFC 4733) 1 s after the call is up")
    ap.add_argument("--fax-after", type=float, default=0.0,
                    help="seconds after the call is up before the modem starts (pressing Start)")
    ap.add_argument("--hangup-after-pages", type=int, default=0,
                    help="hang up during the transfer of the page after this many")
    ap.add_argument("--hangup-delay", type=float, default=4.0,
                    help="seconds after that page's confirmation before hanging up")
    ap.add_argument("--linger", type=float, default=3.0,
                    help="seconds before BYE after phase E (the sender reaches it about 1 s after the receiver)")
    ap.add_argument("--log-level", type=int, default=2, help="pjsip log level")
    ap.add_argument("--spandsp-log", type=int, default=0, help="spandsp log level (5 = T.30 flow)")
    ap.add_argument("--record-rx", help="WAV of the audio received from the call")
    ap.add_argument("--record-tx", help="WAV of the audio the modem sends")
    ap.add_argument("--no-stdin", action="store_true",
                    help="ignore stdin (when started in a shell's background)")
    args = ap.parse_args(argv)
    return run_process(lambda: FaxTerminal(args), stdin=not args.no_stdin, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
