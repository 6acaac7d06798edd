"""One side of the pjsua2 capacity benchmark (benchmarks/pjsua2_capacity.py):
the port layout, the pjsua2 library with its account, and the answering
side (``--role uas``), which the calling side starts as its child."""
from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from pathlib import Path

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simphones.event_stdout import claim_stdout  # noqa: E402
from simphones.ua_process import Library  # noqa: E402

MAX_CALLS = 1024            # uaConfig.maxCalls on both sides (the build's cap)
PCMU = "PCMU/8000/1"


# --- ports ------------------------------------------------------------------
def rtp_span(calls: int) -> int:
    """RTP ports per process: a pair per call plus slack for busy ports."""
    span = 2 * calls + max(64, calls // 4)
    return span + span % 2


def ports_needed(calls: int) -> int:
    return 2 + 2 * rtp_span(calls)


def port_layout(base: int, calls: int) -> dict[str, int]:
    span = rtp_span(calls)
    return {"uac_sip": base, "uas_sip": base + 1, "uac_rtp": base + 2,
            "uas_rtp": base + 2 + span, "rtp_span": span}


# --- /proc ---------------------------------------------------------------------
def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped for a full socket receive buffer,
    machine-wide (/proc/net/snmp): lost INVITEs show up as SIP retransmits."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


# --- shared pjsua2 set-up -----------------------------------------------------
def log(role: str, msg: str) -> None:
    sys.stderr.write(f"pjsua2_capacity[{role} {os.getpid()}]: {msg}\n")
    sys.stderr.flush()


class Ua(Library):
    """One pjsua2 library in this process (set up as for the test phones)
    with its one account."""

    def __init__(self, role: str, sip_port: int, rtp_port: int, rtp_range: int,
                 log_level: int, account_cls):
        super().__init__(ip="127.0.0.1", port=sip_port, user_agent=f"sipacd-capacity-{role}",
                         max_calls=MAX_CALLS, log_level=log_level)
        self.role = role
        self.use_codecs(PCMU)
        self.acc = account_cls()
        self.acc.create(self.account_config(role, rtp_port, rtp_range), True)

    def poll(self, ms: int) -> None:
        self.ep.libHandleEvents(ms)

    def destroy(self) -> None:
        """Call only once every Call has been dropped by the caller."""
        self.acc.shutdown()
        self.acc = None
        super().destroy()


# --- UAS ----------------------------------------------------------------------
class UasCall(pj.Call):
    def __init__(self, uas: "Uas", acc, call_id: int, seq: int):
        super().__init__(acc, call_id)
        self.uas = uas
        self.seq = seq
        self.confirmed = False

    def onCallState(self, prm):
        try:
            state = self.getInfo().state
            if state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
                self.confirmed = True
                self.uas.up += 1
                self.uas.max_up = max(self.uas.max_up, self.uas.up)
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                if self.confirmed:
                    self.uas.up -= 1
                # Dropping the Call inside its own callback would free what
                # pjsua2 is still using: release it after libHandleEvents.
                self.uas.ended.append(self.seq)
        except Exception:
            log("uas", "onCallState:\n" + traceback.format_exc())


class UasAccount(pj.Account):
    uas: "Uas"

    def onIncomingCall(self, prm):
        try:
            self.uas.answer(self, prm.callId)
        except Exception:
            log("uas", "onIncomingCall:\n" + traceback.format_exc())


class Uas:
    def __init__(self):
        self.calls: dict[int, UasCall] = {}
        self.ended: list[int] = []
        self.seq = 0
        self.answered = self.answer_errors = self.up = self.max_up = 0

    def answer(self, acc, call_id: int) -> None:
        self.seq += 1
        call = UasCall(self, acc, call_id, self.seq)
        self.calls[self.seq] = call   # pjsua2 needs our reference to live
        op = pj.CallOpParam(True)
        op.statusCode = 200
        try:
            call.answer(op)
            self.answered += 1
        except pj.Error as e:
            self.answer_errors += 1
            log("uas", f"answer failed: {e.info()}")

    def release_ended(self) -> None:
        while self.ended:
            self.calls.pop(self.ended.pop(), None)


def run_uas(args) -> int:
    out = claim_stdout()
    layout = port_layout(args.port_base, args.calls)
    raise_fd_limit(4 * MAX_CALLS + 256)
    deadline = time.monotonic() + args.timeout + 20
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    uas = Uas()
    UasAccount.uas = uas
    try:
        ua = Ua("uas", layout["uas_sip"], layout["uas_rtp"], layout["rtp_span"],
                args.log_level, UasAccount)
    except Exception as e:
        log("uas", f"start failed: {e}")
        out.write(json.dumps({"fatal": str(e)}) + "\n")
        return 2
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    stdin_fd = sys.stdin.fileno()
    while not stop and time.monotonic() < deadline:
        ua.poll(10)
        uas.release_ended()
        if select.select([stdin_fd], [], [], 0)[0]:
            data = os.read(stdin_fd, 4096)
            if not data or b"quit" in data:
                break
    summary = {"answered": uas.answered, "answer_errors": uas.answer_errors,
               "max_confirmed": uas.max_up, "live_at_quit": len(uas.calls)}
    # Normally the UAC has hung up everything already.
    ua.ep.hangupAllCalls()
    end = time.monotonic() + 3
    while uas.calls and time.monotonic() < end:
        ua.poll(10)
        uas.release_ended()
    uas.calls.clear()
    ua.destroy()
    out.write(json.dumps({"summary": summary}) + "\n")
    return 0
