"""The process around a simulated SIP user agent: what the test phone
(phone.py), the fax machine (fax_machine.py) and the load benchmark's fleet
(benchmarks/fleet.py) share.

Each is a real SIP endpoint in a process of its own (pjsua2 allows one
library per process, and the engine under test is one), driven by the
process that started it:

- stdin carries commands, one JSON object a line: ``{"cmd": NAME, "id": ..,
  **args}`` calls the user agent's ``cmd_NAME(**args)`` and is answered
  ``{"ev":"ok","id":..}`` or ``{"ev":"error","id":..,"msg":..}``
  (`run_command`); EOF means quit.  A plain thread reads it, for pipes,
  files and /dev/null alike (`read_stdin`); it never calls pjsua2, it only
  hands the lines over.
- stdout carries events, one JSON object a line (`emit`), on a private copy
  of fd 1 (event_stdout.claim_stdout); stderr carries pjsip's log and ours.
- `Library`: the pjsua2 library set up as the engine sets up its own:
  threadCnt = 0 and mainThreadOnly, so pjsua2 is only ever touched from the
  thread that polls it; 8 kHz mono media without VAD or echo canceller; the
  null sound device; one UDP transport.
- `UAProcess` and `run_process()`: the asyncio life of a phone or a fax
  machine: start, ``{"ev":"ready"}``, poll libHandleEvents until asked to
  stop (quit, EOF, SIGTERM, SIGINT), shut down, ``{"ev":"exit"}``; or
  ``{"ev":"fatal","msg":..}`` and exit code 2 when start-up failed.  The
  fleet runs its own timer loop around the same Library and commands.
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

import pjsua2 as pj

from simphones.event_stdout import claim_stdout
from sipagent.sip import fax_media
from sipagent.sip.endpoint import start_rtp_poller, stop_rtp_poller, widen_sip_receive_buffers

CALL_STATES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}


def log(msg: str) -> None:
    """A line on stderr, tagged with the program (phone, fax_machine, fleet)
    and its pid: several of them share one test log."""
    sys.stderr.write(f"{Path(sys.argv[0]).stem}[{os.getpid()}]: {msg}\n")
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


def emit(**event: Any) -> bool:
    """One event line on stdout; False when nobody reads it any more."""
    try:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        return False
    return True


def run_command(agent, line: str) -> None:
    """Run one command line on `agent` (its ``cmd_NAME`` method and its
    ``emit``) and answer it."""
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
        handler = getattr(agent, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
        if handler is None:
            raise ValueError(f"unknown command {cmd!r}")
        handler(**msg)
    except pj.Error as e:
        agent.emit(ev="error", id=cmd_id, msg=f"pjsua2: {e.info()}")
    except Exception as e:
        log(f"command failed: {line}\n{traceback.format_exc()}")
        agent.emit(ev="error", id=cmd_id, msg=f"{type(e).__name__}: {e}")
    else:
        agent.emit(ev="ok", id=cmd_id)


def read_stdin(deliver: Callable[[str | None], None]) -> None:
    """Hand each stdin line to `deliver`, then None at EOF, from a thread of
    its own (blocking reads); `deliver` must be safe to call from there."""
    def read() -> None:
        for line in sys.stdin:
            deliver(line)
        deliver(None)
    threading.Thread(target=read, daemon=True, name="stdin").start()


class StderrLog(pj.LogWriter):
    """pjsip's log, on stderr."""

    def write(self, entry):
        sys.stderr.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")
        sys.stderr.flush()


class Account(pj.Account):
    """A SIP identity whose incoming calls go to its owner's
    ``on_incoming(account, prm)`` (a phone, a fax machine, a fleet)."""

    def __init__(self, owner: Any):
        super().__init__()
        self.owner = owner

    @guarded
    def onIncomingCall(self, prm):
        self.owner.on_incoming(self, prm)


class Library:
    """The process's one pjsua2 library, bound to `ip`:`port` over UDP.
    Keep it (its log writer must outlive the library) and destroy() it last."""

    def __init__(self, *, ip: str, port: int, user_agent: str, max_calls: int, log_level: int):
        self.ip, self.port = ip, port
        ep = self.ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = max_calls
        cfg.uaConfig.userAgent = user_agent
        self.log_writer = StderrLog()
        cfg.logConfig.writer = self.log_writer
        # The writer only sees entries at or below consoleLevel.
        cfg.logConfig.level = cfg.logConfig.consoleLevel = log_level
        cfg.logConfig.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_MICRO_SEC | pj.PJ_LOG_HAS_SENDER
        # What a fax needs (no VAD, no echo canceller, 8 kHz mono) does no
        # harm to the voice calls.
        fax_media.configure_media(cfg.medConfig)
        # Without this the null device closes when idle and recorders'
        # WAV headers may never get written (see PJSIP notes).
        cfg.medConfig.sndAutoCloseTime = -1
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = tcfg.publicAddress = ip
        try:
            self.transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        except pj.Error as e:
            # str() of a pj.Error is empty; info() has the reason.
            raise RuntimeError(f"cannot bind SIP UDP {ip}:{port}: {e.info()}") from None
        ep.libStart()
        ep.audDevManager().setNullDev()
        # A phone that falls behind must not drop SIP (endpoint.py says why).
        widen_sip_receive_buffers(port)
        # A phone's RTP thread must not stall either: it would put gaps
        # into recordings that tests blame on the engine.
        start_rtp_poller()

    def use_codecs(self, *codec_ids: str) -> None:
        """Offer only these (e.g. "PCMU/8000/1"), the first preferred: other
        codecs cost CPU and would muddy frequency checks."""
        prio = {c: 255 - i for i, c in enumerate(codec_ids)}
        for ci in self.ep.codecEnum2():
            self.ep.codecSetPriority(ci.codecId, prio.get(ci.codecId, 0))

    def account_config(self, user: str, rtp_port: int, rtp_range: int | None = None) -> pj.AccountConfig:
        """An account ``sip:user@ip:port`` on our transport; RTP from
        `rtp_port` on (pjsua steps by 2 past busy ports)."""
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:{user}@{self.ip}:{self.port}"
        cfg.sipConfig.transportId = self.transport_id
        cfg.mediaConfig.transportConfig.port = rtp_port
        if rtp_range is not None:
            cfg.mediaConfig.transportConfig.portRange = rtp_range
        cfg.mediaConfig.transportConfig.boundAddress = self.ip
        return cfg

    def destroy(self) -> None:
        """Once every Call, player, recorder and account is released:
        anything pjsua2 that outlives libDestroy aborts the process."""
        gc.collect()
        stop_rtp_poller()
        # Calls are already gone, so there is nothing to wait for on the wire.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        self.ep = None
        self.log_writer = None
        gc.collect()


class UAProcess:
    """A simulated user agent on the asyncio loop.  A subclass makes its
    `lib` in start(), may act in started() (after "ready"), has ``cmd_NAME``
    methods for its commands, and releases its calls and accounts in
    shutdown() before this class's shutdown() destroys the library."""

    def __init__(self, ip: str, port: int):
        self.ip, self.port = ip, port
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.timed_out = False          # run_process()'s timeout ended it
        self.lib: Library | None = None

    def emit(self, **event: Any) -> None:
        if not emit(**event):
            # Our controller is gone: nobody can tell us to quit any more.
            self.stopping.set()

    def start(self) -> None:
        raise NotImplementedError

    def started(self) -> None:
        pass

    async def poll(self) -> None:
        while not self.stopping.is_set():
            n = self.lib.ep.libHandleEvents(0)
            await asyncio.sleep(0.005 if n <= 0 else 0)

    async def pump(self, seconds: float) -> None:
        """Keep pjsip running for a while (during shutdown, when the poller
        has already stopped)."""
        end = self.loop.time() + seconds
        while self.loop.time() < end:
            n = self.lib.ep.libHandleEvents(0)
            await asyncio.sleep(0.005 if n <= 0 else 0)

    async def shutdown(self) -> None:
        self.lib.destroy()
        self.lib = None

    def cmd_ping(self) -> None:
        pass

    def cmd_quit(self) -> None:
        self.stopping.set()


async def _serve(make: Callable[[], UAProcess], stdin: bool, timeout: float | None) -> int:
    loop = asyncio.get_running_loop()
    ua = make()
    try:
        ua.start()
    except Exception as e:
        log(f"start failed: {e}")
        ua.emit(ev="fatal", msg=str(e))
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ua.stopping.set)
    lines: asyncio.Queue = asyncio.Queue()
    if stdin:
        read_stdin(lambda line: loop.call_soon_threadsafe(lines.put_nowait, line))
    poller = loop.create_task(ua.poll())
    ua.emit(ev="ready", port=ua.port, ip=ua.ip)
    ua.started()

    async def commands() -> None:
        while not ua.stopping.is_set():
            line = await lines.get()
            if line is None:
                ua.stopping.set()
                return
            run_command(ua, line)

    reader = loop.create_task(commands())
    try:
        await asyncio.wait_for(ua.stopping.wait(), timeout)
    except asyncio.TimeoutError:
        log(f"stopping: {timeout} s are over")
        ua.timed_out = True
    ua.stopping.set()
    reader.cancel()
    await poller
    await ua.shutdown()
    ua.emit(ev="exit")
    return 0


def run_process(make: Callable[[], UAProcess], *, stdin: bool = True,
                timeout: float | None = None) -> int:
    """The whole process: stdout claimed for events, `make()` (called in
    the loop) started and served until quit, EOF (unless not `stdin`), a
    signal or `timeout` seconds.  Returns the exit code."""
    sys.stdout = claim_stdout()
    return asyncio.run(_serve(make, stdin, timeout))
