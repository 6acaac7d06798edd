"""A scriptable SIP user agent in its own process: the callers and agents of
the test suite and the demo.

    python -m simphones.phone --port P [--ip 127.0.0.1]

Why a separate process: pjsua2 allows one library instance per process, and
the engine under test is itself a pjsua2 process. Real callers and agents
must be real SIP endpoints on other ports, with their own RTP clock, so that
tests see what a PBX trunk would really send.

Protocol (one JSON object per line; stdin = commands, stdout = events,
stderr = pjsip's and our log):

  commands (an optional "id" is echoed in {"ev":"ok","id":..} or
  {"ev":"error","id":..,"msg":..}):
    {"cmd":"account","user":"alice"}
    {"cmd":"auto_answer","user":"alice"|"*","after":0.5,"code":200,
     "tone":880,"record":"/x.wav","hangup_after":null}
         code 200 answers (183 = early media); 4xx-6xx rejects; null never
         answers (rings forever). "{call}" and "{user}" in record are
         replaced per call, so one rule can record many calls.
    {"cmd":"answer","call":"in1","code":200,"tone":880,"record":"/x.wav"}
         manual answer/reject of a ringing incoming call (no rule matched)
    {"cmd":"call","call":"c1","to":"sip:..","from_user":"caller1",
     "tone":440,"record":"/p.wav","headers":{"X-Foo":"1"},"hangup_after":null}
    {"cmd":"dtmf","call":"c1","digits":"1#","method":"rfc2833"|"info"}
    {"cmd":"hangup","call":"c1","code":603}   (code optional)
    {"cmd":"hangup_all"}
    {"cmd":"ping"}
    {"cmd":"quit"}          also on stdin EOF, SIGTERM and SIGINT

  events:
    {"ev":"ready","port":P,"ip":IP}
    {"ev":"incoming","call":"in1","user":"alice","from":"<sip:..>",
     "from_user":"bob","to":"<sip:..>","headers":{"X-Foo":"1"}}
    {"ev":"state","call":"c1","state":"CALLING"|"INCOMING"|"EARLY"|
     "CONNECTING"|"CONFIRMED"|"DISCONNECTED","code":200,"reason":"OK"}
    {"ev":"media","call":"c1"}
    {"ev":"dtmf","call":"c1","digit":"1"}
    {"ev":"recorded","call":"c1","path":"/p.wav","seconds":2.3}
    {"ev":"exit"}           last line before a clean exit
    {"ev":"fatal","msg":..} start-up failed (e.g. port in use); exit code 2

Threading follows the engine's rule: pjsua2 is created with threadCnt=0 and
mainThreadOnly, and is only ever touched from the asyncio loop in the main
thread. stdin is read by a plain thread that never calls pjsua2; it only
hands lines to the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from simphones import tones
from sipagent.sip import message as sip_message
from simphones.event_stdout import claim_stdout

# PJSUA_MAX_ACC as compiled by scripts/build-pjsua2; SWIG does not expose it.
MAX_ACCOUNTS = int(os.environ.get("SIPACD_PJSUA_MAX_ACC", "32"))

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}

# Header lines of the received INVITE; compact forms included because a
# PBX may well send "t:" and "f:".


def log(msg: str) -> None:
    sys.stderr.write(f"uaproc[{os.getpid()}]: {msg}\n")
    sys.stderr.flush()


def guarded(fn):
    """pjsua2 prints and swallows exceptions raised in callbacks; log them
    ourselves with a traceback so a broken handler is visible in test logs."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            log(f"exception in {fn.__name__}:\n{traceback.format_exc()}")
    wrapper.__name__ = fn.__name__
    return wrapper


def header(headers: dict[str, str], *names: str) -> str:
    wanted = {n.lower() for n in names}
    for k, v in headers.items():
        if k.lower() in wanted:
            return v
    return ""


@dataclass
class AnswerRule:
    after: float = 0.0
    code: int | None = 200
    tone: float | None = None
    record: str | None = None
    hangup_after: float | None = None


class UserAccount(pj.Account):
    def __init__(self, ua: "UserAgent", user: str):
        super().__init__()
        self.ua = ua
        self.user = user

    @guarded
    def onIncomingCall(self, prm):
        self.ua.on_incoming(self, prm)


class UACall(pj.Call):
    """One call leg plus the media this UA attaches to it."""

    def __init__(self, ua: "UserAgent", acc: UserAccount, name: str,
                 call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.ua = ua
        self.name = name
        self.tone: float | None = None
        self.record: str | None = None
        self.hangup_after: float | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.media_reported = False
        self.last_state: tuple[str, int] | None = None
        self.disconnected = False
        self.timers: list[asyncio.TimerHandle] = []
        self.timers_armed = False

    @guarded
    def onCallState(self, prm):
        ci = self.getInfo()
        state = STATE_NAMES.get(ci.state, str(ci.state))
        code = int(ci.lastStatusCode)
        # EARLY repeats for 180 then 183; report each distinct (state, code).
        if (state, code) != self.last_state:
            self.last_state = (state, code)
            self.ua.emit(ev="state", call=self.name, state=state, code=code,
                         reason=ci.lastReason)
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
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.attach_media(self.getAudioMedia(mi.index))

    def attach_media(self, am: pj.AudioMedia) -> None:
        if self.tone:
            if self.player is None:
                self.player = pj.AudioMediaPlayer()
                # options 0 = loop forever (PJMEDIA_FILE_NO_LOOP would stop)
                self.player.createPlayer(str(self.ua.tone_path(self.tone)), 0)
            self.player.startTransmit(am)
        if self.record:
            if self.recorder is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.record)), exist_ok=True)
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.record)
            am.startTransmit(self.recorder)
        if not self.media_reported:
            self.media_reported = True
            self.ua.emit(ev="media", call=self.name)

    @guarded
    def onDtmfDigit(self, prm):
        self.ua.emit(ev="dtmf", call=self.name, digit=prm.digit)


class UserAgent:
    def __init__(self, ip: str, port: int, log_level: int, rtp_port: int, max_calls: int = 64):
        self.max_calls = max_calls
        self.ip = ip
        self.port = port
        self.log_level = log_level
        self.rtp_port = rtp_port
        self.loop = asyncio.get_running_loop()
        self.ep: pj.Endpoint | None = None
        self.log_writer: PjLog | None = None
        self.transport_id: int | None = None
        self.accounts: dict[str, UserAccount] = {}
        self.default_account: UserAccount | None = None
        self.calls: dict[str, UACall] = {}
        self.rules: dict[str, AnswerRule] = {}
        self.incoming_seq = 0
        self.pending_recordings: set[asyncio.Task] = set()
        self.stopping = asyncio.Event()
        self.tone_dir = os.path.join(tempfile.gettempdir(), "sipacd-tones")

    # --- output ---------------------------------------------------------
    def emit(self, **event: Any) -> None:
        try:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            # Our controller is gone: nobody can tell us to quit any more.
            self.stopping.set()

    def tone_path(self, freq: float):
        return tones.tone_file(freq, self.tone_dir)

    # --- library lifetime ------------------------------------------------
    def start(self) -> None:
        ep = self.ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = self.max_calls
        cfg.uaConfig.userAgent = "sipacd-uaproc"
        # The writer only sees entries at or below consoleLevel.
        self.log_writer = PjLog()
        cfg.logConfig.writer = self.log_writer
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        cfg.logConfig.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_MICRO_SEC | pj.PJ_LOG_HAS_SENDER
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        # Without this the null device closes when idle and recorders'
        # WAV headers may never get written (see PJSIP notes).
        cfg.medConfig.sndAutoCloseTime = -1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = self.port
        tcfg.boundAddress = self.ip
        tcfg.publicAddress = self.ip
        try:
            self.transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        except pj.Error as e:
            # str() of a pj.Error is empty; info() has the reason.
            raise RuntimeError(f"cannot bind SIP UDP {self.ip}:{self.port}: {e.info()}") from None
        ep.libStart()
        ep.audDevManager().setNullDev()
        # G.711 only: other codecs cost CPU and would muddy frequency checks.
        for ci in ep.codecEnum2():
            prio = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(ci.codecId, 0)
            ep.codecSetPriority(ci.codecId, prio)
        self.default_account = self._create_account("ua", default=True)

    def _create_account(self, user: str, default: bool = False) -> UserAccount:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:{user}@{self.ip}:{self.port}"
        cfg.sipConfig.transportId = self.transport_id
        cfg.mediaConfig.transportConfig.port = self.rtp_port
        cfg.mediaConfig.transportConfig.boundAddress = self.ip
        acc = UserAccount(self, user)
        try:
            acc.create(cfg, default)
        except pj.Error as e:
            # Typically PJSUA_MAX_ACC (32 in scripts/build-pjsua2): spread
            # many caller identities over several UA processes.
            raise RuntimeError(f"cannot create account {user!r} "
                               f"(have {len(self.accounts) + 1}): {e.info()}") from None
        return acc

    def account(self, user: str | None) -> UserAccount:
        if not user or user == "*":
            return self.default_account
        if user not in self.accounts:
            if len(self.accounts) + 1 >= MAX_ACCOUNTS:
                # pjsua_acc_add() asserts (aborting the process) past its
                # table size instead of returning an error.
                raise RuntimeError(
                    f"account limit: {MAX_ACCOUNTS} per process incl. the default "
                    f"(PJSUA_MAX_ACC); use another UA process for more caller ids")
            self.accounts[user] = self._create_account(user)
        return self.accounts[user]

    async def poll(self) -> None:
        while not self.stopping.is_set():
            n = self.ep.libHandleEvents(0)
            await asyncio.sleep(0.005 if n <= 0 else 0)

    async def pump(self, seconds: float) -> None:
        """Keep pjsip running for a while (used during shutdown, when the
        poller has already stopped)."""
        end = self.loop.time() + seconds
        while self.loop.time() < end:
            n = self.ep.libHandleEvents(0)
            await asyncio.sleep(0.005 if n <= 0 else 0)

    async def shutdown(self) -> None:
        self.hangup_all()
        # Let BYEs/CANCELs complete and calls reach DISCONNECTED.
        end = self.loop.time() + 3.0
        while self.calls and self.loop.time() < end:
            await self.pump(0.02)
        for name in list(self.calls):
            self.release_call(name)
        if self.pending_recordings:
            await asyncio.wait(self.pending_recordings, timeout=3.0)
        accounts = list(self.accounts.values()) + [self.default_account]
        self.accounts.clear()
        self.default_account = None
        for acc in accounts:
            acc.shutdown()
        accounts = acc = None
        # Anything pjsua2 that outlives libDestroy aborts the process.
        gc.collect()
        # Calls are already gone, so there is nothing to wait for on the wire.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        self.ep = None
        self.log_writer = None
        gc.collect()

    # --- incoming calls ---------------------------------------------------
    def on_incoming(self, acc: UserAccount, prm) -> None:
        self.incoming_seq += 1
        name = f"in{self.incoming_seq}"
        call = UACall(self, acc, name, prm.callId)
        self.calls[name] = call
        hdrs = sip_message.headers(prm.rdata.wholeMsg)
        to = header(hdrs, "To", "t")
        frm = header(hdrs, "From", "f")
        user = sip_message.uri_user(to)
        self.emit(ev="incoming", call=name, user=user, to=to, **{"from": frm},
                  from_user=sip_message.uri_user(frm),
                  headers={k: v for k, v in hdrs.items() if k.lower().startswith("x-")})
        self._respond(call, 180)
        rule = self.rules.get(user) or self.rules.get("*")
        if rule is None:
            return  # rings until an "answer" command
        call.tone, call.hangup_after = rule.tone, rule.hangup_after
        if rule.record:
            # One rule serves many calls; without a per-call name each call
            # would overwrite the previous recording.
            call.record = rule.record.replace("{call}", name).replace("{user}", user)
        if rule.code is None:
            return
        call.timers.append(self.loop.call_later(rule.after, self.answer_call, name, rule.code))

    def _respond(self, call: UACall, code: int) -> None:
        op = pj.CallOpParam(True)
        op.statusCode = code
        if code < 300:
            call.answer(op)
        else:
            call.hangup(op)

    @guarded
    def answer_call(self, name: str, code: int) -> None:
        call = self.calls.get(name)
        if call is None or call.disconnected:
            return
        self._respond(call, code)

    # --- call teardown ----------------------------------------------------
    @guarded
    def hangup_call(self, name: str, code: int | None) -> None:
        call = self.calls.get(name)
        if call is None or call.disconnected:
            return
        op = pj.CallOpParam(True)
        if code:
            op.statusCode = code
        call.hangup(op)

    def hangup_all(self) -> None:
        for name in list(self.calls):
            self.hangup_call(name, None)

    def release_call(self, name: str) -> None:
        call = self.calls.pop(name, None)
        if call is None:
            return
        for t in call.timers:
            t.cancel()
        record_path = call.record if call.recorder is not None else None
        # Dropping the recorder destroys its port; the bridge writes the WAV
        # header on a later tick, so the file is final only after a while.
        call.player = None
        call.recorder = None
        del call
        gc.collect()
        if record_path:
            task = self.loop.create_task(self._report_recording(name, record_path))
            self.pending_recordings.add(task)
            task.add_done_callback(self.pending_recordings.discard)

    async def _report_recording(self, name: str, path: str) -> None:
        end = self.loop.time() + 3.0
        while not tones.wav_is_complete(path) and self.loop.time() < end:
            await self.pump(0.02) if self.stopping.is_set() else await asyncio.sleep(0.02)
        if not tones.wav_is_complete(path):
            log(f"recording {path} of {name}: WAV header still not final")
        try:
            secs = round(tones.duration(path), 3)
        except Exception:
            secs = None
        self.emit(ev="recorded", call=name, path=path, seconds=secs)

    # --- commands ---------------------------------------------------------
    def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        cmd_id = None
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("command must be a JSON object")
            cmd_id = msg.pop("id", None)
            cmd = msg.pop("cmd", None)
            handler = getattr(self, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
            if handler is None:
                raise ValueError(f"unknown command {cmd!r}")
            handler(**msg)
        except pj.Error as e:
            self.emit(ev="error", id=cmd_id, msg=f"pjsua2: {e.info()}")
        except Exception as e:
            log(f"command failed: {line}\n{traceback.format_exc()}")
            self.emit(ev="error", id=cmd_id, msg=f"{type(e).__name__}: {e}")
        else:
            self.emit(ev="ok", id=cmd_id)

    def _call(self, name: str) -> UACall:
        call = self.calls.get(name)
        if call is None:
            raise KeyError(f"no such call {name!r}")
        return call

    def cmd_ping(self) -> None:
        pass

    def cmd_account(self, user: str) -> None:
        self.account(user)

    def cmd_auto_answer(self, user: str = "*", after: float = 0.0, code: int | None = 200,
                        tone: float | None = None, record: str | None = None,
                        hangup_after: float | None = None) -> None:
        # No account is needed to receive: the rule is matched on the To
        # user, and accounts are a scarce compile-time resource.
        self.rules[user] = AnswerRule(after, code, tone, record, hangup_after)

    def cmd_answer(self, call: str, code: int = 200, tone: float | None = None,
                   record: str | None = None, hangup_after: float | None = None) -> None:
        c = self._call(call)
        c.tone = tone if tone is not None else c.tone
        c.record = record if record is not None else c.record
        c.hangup_after = hangup_after if hangup_after is not None else c.hangup_after
        self._respond(c, code)

    def cmd_call(self, call: str, to: str, from_user: str | None = None,
                 tone: float | None = None, record: str | None = None,
                 headers: dict[str, str] | None = None,
                 hangup_after: float | None = None) -> None:
        if call in self.calls:
            raise ValueError(f"call {call!r} already exists")
        c = UACall(self, self.account(from_user), call)
        c.tone, c.record, c.hangup_after = tone, record, hangup_after
        op = pj.CallOpParam(True)
        for k, v in (headers or {}).items():
            h = pj.SipHeader()
            h.hName = k
            h.hValue = str(v)
            op.txOption.headers.append(h)
        self.calls[call] = c
        try:
            c.makeCall(to, op)
        except Exception:
            self.calls.pop(call, None)
            raise

    def cmd_dtmf(self, call: str, digits: str, method: str = "rfc2833") -> None:
        c = self._call(call)
        if method == "rfc2833":
            c.dialDtmf(digits)
        elif method == "info":
            p = pj.CallSendDtmfParam()
            p.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            p.digits = digits
            p.duration = 160
            c.sendDtmf(p)
        else:
            raise ValueError(f"unknown DTMF method {method!r} (rfc2833|info)")

    def cmd_hangup(self, call: str, code: int | None = None) -> None:
        self._call(call)
        self.hangup_call(call, code)

    def cmd_hangup_all(self) -> None:
        self.hangup_all()

    def cmd_quit(self) -> None:
        self.stopping.set()


class PjLog(pj.LogWriter):
    def write(self, entry):
        sys.stderr.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")
        sys.stderr.flush()


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """Blocking reads in a plain thread (works for pipes, files and
    /dev/null alike); it never touches pjsua2. None marks EOF."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def main_async(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    ua = UserAgent(args.ip, args.port, args.log_level, args.rtp_port, args.max_calls)
    try:
        ua.start()
    except Exception as e:
        log(f"start failed: {e}")
        ua.emit(ev="fatal", msg=str(e))
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ua.stopping.set)
    lines: asyncio.Queue = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True,
                     name="stdin").start()
    poller = loop.create_task(ua.poll())
    ua.emit(ev="ready", port=args.port, ip=args.ip)

    async def commands() -> None:
        while True:
            line = await lines.get()
            if line is None:
                ua.stopping.set()
                return
            ua.handle_line(line)
            if ua.stopping.is_set():
                return

    reader = loop.create_task(commands())
    await ua.stopping.wait()
    reader.cancel()
    await poller
    await ua.shutdown()
    ua.emit(ev="exit")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simphones.phone", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="SIP UDP port")
    ap.add_argument("--ip", default="127.0.0.1", help="address to bind and advertise")
    ap.add_argument("--rtp-port", type=int, default=4000,
                    help="first RTP port to try (pjsua steps by 2 past busy ones)")
    ap.add_argument("--max-calls", type=int, default=64,
                    help="concurrent calls (the build allows up to 1024)")
    ap.add_argument("--log-level", type=int, default=3, help="pjsip log level 0-5")
    args = ap.parse_args(argv)
    sys.stdout = claim_stdout()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
