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
    {"cmd":"register","user":"alice","registrar":"sip:127.0.0.1:5060","expires":300}
         an account sip:alice@<registrar> registered there (its contact:
         this phone); answers come as {"ev":"registered",...,"code":200}
    {"cmd":"auto_answer","user":"alice"|"*","after":0.5,"code":200,
     "tone":880,"record":"/x.wav","hangup_after":null}
         code 200 answers (183 = early media); 4xx-6xx rejects; null never
         answers (rings forever). "{call}" and "{user}" in record are
         replaced per call, so one rule can record many calls.
    {"cmd":"answer","call":"in1","code":200,"tone":880,"record":"/x.wav"}
         manual answer/reject of a ringing incoming call (no rule matched)
    {"cmd":"call","call":"c1","to":"sip:..","from_user":"caller1",
     "tone":440,"record":"/p.wav","headers":{"X-Foo":"1"},"hangup_after":null}
         "from_name": "Ann" adds a display name to the From header (an
         account of its own per user and name)
    {"cmd":"dtmf","call":"c1","digits":"1#","method":"rfc2833"|"info"}
    {"cmd":"hangup","call":"c1","code":603}   (code optional)
    {"cmd":"hold","call":"c1"}       re-INVITE with a=sendonly
    {"cmd":"unhold","call":"c1"}     re-INVITE with a=sendrecv again
    {"cmd":"xfer","call":"c1","to":"sip:.."}            blind transfer (REFER)
    {"cmd":"xfer_replaces","call":"c1","other":"c2"}    attended transfer:
         REFER on c1 whose Refer-To replaces the phone's call c2
    {"cmd":"burst","call":"c1","freq":1000,"ms":40,"amplitude":0.3}
         a marker for delay measurements: `ms` of a sine into the call,
         once; answered by {"ev":"burst","call":"c1","at":T} (T: when it
         was handed to the bridge, which sends it from its next tick on)
    {"cmd":"jbuf","call":"c1"}
         the call's receive jitter buffer now: {"ev":"jbuf","call":"c1",
         "size":..,"prefetch":..,"burst":.. (frames), "avgDelayMsec":..,
         "discard":..,"lost":..,"empty":..}
    {"cmd":"hangup_all"}
    {"cmd":"ping"}
    {"cmd":"quit"}          also on stdin EOF, SIGTERM and SIGINT

  events:
    {"ev":"ready","port":P,"ip":IP}
    {"ev":"incoming","call":"in1","user":"alice","from":"<sip:..>",
     "from_user":"bob","to":"<sip:..>","headers":{"X-Foo":"1"}}
    {"ev":"state","call":"c1","state":"CALLING"|"INCOMING"|"EARLY"|
     "CONNECTING"|"CONFIRMED"|"DISCONNECTED","code":200,"reason":"OK","at":T}
    {"ev":"media","call":"c1","at":T}   the tone and the recording start
         (T: time.monotonic(), one clock for all processes of the machine)
    {"ev":"dtmf","call":"c1","digit":"1"}
    {"ev":"recorded","call":"c1","path":"/p.wav","seconds":2.3}
    {"ev":"registered","user":"alice","code":200,"active":true,"expires":300}
    {"ev":"media_state","call":"c1","status":"active"|"local_hold"|
     "remote_hold"|"none"|"error"}   every media change after the first
    {"ev":"xfer_status","call":"c1","code":200,"reason":"OK","final":true}
         the NOTIFYs the far end sends about a transfer this phone asked for
    {"ev":"exit"}           last line before a clean exit
    {"ev":"fatal","msg":..} start-up failed (e.g. port in use); exit code 2

The process itself (the pjsua2 library, stdin and stdout, start and
shutdown) is ua_process.py's, shared with the fax machine; a call and the
answer rules are phone_call.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys

import pjsua2 as pj

from simphones import tones
from simphones.phone_call import AnswerRule, PhoneAccount, PhoneCall
from simphones.ua_process import Library, UAProcess, guarded, log, run_process
from sipagent.sip import message as sip_message

# PJSUA_MAX_ACC as compiled by scripts/build-pjsua2; SWIG does not expose it.
MAX_ACCOUNTS = int(os.environ.get("SIPACD_PJSUA_MAX_ACC", "32"))


# Header lines of the received INVITE; compact forms included because a
# PBX may well send "t:" and "f:".
def header(headers: dict[str, str], *names: str) -> str:
    wanted = {n.lower() for n in names}
    for k, v in headers.items():
        if k.lower() in wanted:
            return v
    return ""


class Phone(UAProcess):
    """The user agent: its accounts, calls and answer rules, and the commands."""

    def __init__(self, ip: str, port: int, log_level: int, rtp_port: int, max_calls: int = 64):
        super().__init__(ip, port)
        self.max_calls = max_calls
        self.log_level = log_level
        self.rtp_port = rtp_port
        self.accounts: dict[str, PhoneAccount] = {}
        self.default_account: PhoneAccount | None = None
        self.calls: dict[str, PhoneCall] = {}
        self.rules: dict[str, AnswerRule] = {}
        self.incoming_seq = 0
        self.pending_recordings: set[asyncio.Task] = set()

    # --- library lifetime ------------------------------------------------
    def start(self) -> None:
        self.lib = Library(ip=self.ip, port=self.port, user_agent="sipacd-phone",
                           max_calls=self.max_calls, log_level=self.log_level)
        self.lib.use_codecs("PCMU/8000/1", "PCMA/8000/1")
        self.default_account = self._create_account("ua", default=True)

    def _create_account(self, user: str, default: bool = False,
                        display: str | None = None) -> PhoneAccount:
        cfg = self.lib.account_config(user, self.rtp_port)
        if display is not None:
            # A SIP quoted-string: backslash and double quote escaped.
            quoted = display.replace("\\", "\\\\").replace('"', '\\"')
            cfg.idUri = f'"{quoted}" <{cfg.idUri}>'
        acc = PhoneAccount(self, user)
        try:
            acc.create(cfg, default)
        except pj.Error as e:
            # Typically PJSUA_MAX_ACC (32 in scripts/build-pjsua2): spread
            # many caller identities over several UA processes.
            raise RuntimeError(f"cannot create account {user!r} "
                               f"(have {len(self.accounts) + 1}): {e.info()}") from None
        return acc

    def account(self, user: str | None, display: str | None = None) -> PhoneAccount:
        if display is not None:
            key = f"{user or 'ua'}\x00{display}"
            if key not in self.accounts:
                if len(self.accounts) + 1 >= MAX_ACCOUNTS:
                    raise RuntimeError(f"account limit: {MAX_ACCOUNTS} per process")
                self.accounts[key] = self._create_account(user or "ua", display=display)
            return self.accounts[key]
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
        await super().shutdown()

    # --- incoming calls ---------------------------------------------------
    def on_incoming(self, acc: PhoneAccount, prm) -> None:
        self.incoming_seq += 1
        name = f"in{self.incoming_seq}"
        call = PhoneCall(self, acc, name, prm.callId)
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

    def _respond(self, call: PhoneCall, code: int) -> None:
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
        call.bursts.clear()
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
    def _call(self, name: str) -> PhoneCall:
        call = self.calls.get(name)
        if call is None:
            raise KeyError(f"no such call {name!r}")
        return call

    def cmd_account(self, user: str) -> None:
        self.account(user)

    def cmd_register(self, user: str, registrar: str, expires: int = 300) -> None:
        """Register ``user`` at ``registrar`` (``sip:host:port``): its
        address of record is ``sip:user@host:port``, its contact this phone."""
        if user in self.accounts:
            raise RuntimeError(f"user {user!r} already has an account")
        if len(self.accounts) + 1 >= MAX_ACCOUNTS:
            raise RuntimeError(f"account limit: {MAX_ACCOUNTS} per process incl. the default")
        cfg = self.lib.account_config(user, self.rtp_port)
        cfg.idUri = f"sip:{user}@{registrar.removeprefix('sip:')}"
        cfg.regConfig.registrarUri = registrar
        cfg.regConfig.timeoutSec = int(expires)
        cfg.regConfig.retryIntervalSec = 1
        acc = PhoneAccount(self, user)
        acc.create(cfg, False)
        self.accounts[user] = acc

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
                 hangup_after: float | None = None, from_name: str | None = None) -> None:
        if call in self.calls:
            raise ValueError(f"call {call!r} already exists")
        c = PhoneCall(self, self.account(from_user, from_name), call)
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

    def cmd_burst(self, call: str, freq: float = 1000.0, ms: int = 40,
                  amplitude: float = tones.DEFAULT_AMPLITUDE) -> None:
        c = self._call(call)
        at = c.play_burst(freq, ms, amplitude)
        gen = c.bursts[-1]
        self.emit(ev="burst", call=call, at=at, freq=freq, ms=ms)
        # Disconnected well after the tone has ended (it plays once).
        c.timers.append(self.loop.call_later(ms / 1000 + 0.2, c.end_burst, gen))

    def cmd_jbuf(self, call: str) -> None:
        j = self._call(call).getStreamStat(0).jbuf
        self.emit(ev="jbuf", call=call, **{f: getattr(j, f) for f in (
            "size", "prefetch", "burst", "avgDelayMsec", "discard", "lost", "empty")})

    def cmd_hangup(self, call: str, code: int | None = None) -> None:
        self._call(call)
        self.hangup_call(call, code)

    def cmd_hangup_all(self) -> None:
        self.hangup_all()

    def cmd_hold(self, call: str) -> None:
        self._call(call).setHold(pj.CallOpParam(True))

    def cmd_unhold(self, call: str) -> None:
        op = pj.CallOpParam(True)
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._call(call).reinvite(op)

    def cmd_xfer(self, call: str, to: str) -> None:
        self._call(call).xfer(to, pj.CallOpParam(True))

    def cmd_xfer_replaces(self, call: str, other: str) -> None:
        self._call(call).xferReplaces(self._call(other), pj.CallOpParam(True))


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
    return run_process(lambda: Phone(args.ip, args.port, args.log_level, args.rtp_port, args.max_calls))


if __name__ == "__main__":
    sys.exit(main())
