"""The process's one pjsua2 endpoint: created, polled and destroyed in the
asyncio loop's thread.

pjsua2 runs with no worker threads of its own (``threadCnt = 0``,
``mainThreadOnly = True``): every SIP callback then fires inside
``libHandleEvents`` on the loop thread, so callbacks may touch asyncio
objects directly and nothing needs a lock.  Media (RTP, the conference
bridge) still runs on pjmedia's own threads, in C.
"""
from __future__ import annotations

import asyncio
import gc
import os
import socket
from typing import Callable, Sequence

import structlog

log = structlog.get_logger("sipagent.sip.endpoint")

# pjsua's compiled-in limit (scripts/build-pjsua2 sets PJSUA_MAX_CALLS).
PJSUA_CALL_LEGS = 1024

# How often the loop polls pjsua when nothing arrived, s.  Without the
# packet wake-up, every SIP message waited for this poll: 5 ms.  With it,
# the poll serves only what no socket announces: pjsip's timers (500 ms
# and longer), callbacks other threads queue for this one (a DTMF digit
# from the RTP thread), and TCP.  50 ms delays those by less than a
# listener notices (a digit's tone lasts longer) and costs a tenth of the
# wake-ups: an idle engine used 1.4 % of a core in this thread at 5 ms,
# 1 % at 20 ms.  Under load the packets' handling serves pjsua often
# enough, and the poll only looks at the clock (_poll).
IDLE_POLL = 0.005
WOKEN_POLL = 0.050


def start_rtp_poller() -> None:
    """Receive RTP on our own thread instead of pjmedia's, whose 500 ms poll
    timeout stalls every call's audio for half a second whenever another
    call's media starts (sipagent/mediaports/rtp_poller.pyx).  After
    libInit; every pjsua2 process of the project should do it."""
    from sipagent.mediaports import rtp_poller

    rtp_poller.start(10)


def stop_rtp_poller() -> None:
    """Before libDestroy, which frees the ioqueue our thread polls."""
    from sipagent.mediaports import rtp_poller

    rtp_poller.stop()


def udp_socket_fds(port: int) -> list[int]:
    """This process's UDP sockets bound to ``port``: pjsip's SIP transport,
    whose socket pjsua2 does not hand out.  Empty where /proc is missing."""
    found = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            probe = socket.socket(fileno=os.dup(fd))   # a duplicate: ours to close
        except OSError:
            continue
        try:
            if probe.type == socket.SOCK_DGRAM and probe.getsockname()[1] == port:
                found.append(fd)
        except (OSError, IndexError, TypeError):
            pass
        finally:
            probe.close()
    return found


# What a SIP socket may queue while its reader is busy.  Linux's default
# (net.core.rmem_default, ~208 KB) holds about 90 loopback datagrams at
# their true size; at 50 calls/s, a pause of a tenth of a second in the
# reader (a GC pass, a slow flow step) overflowed it, and every request
# lost cost a retransmission 0.5 s later (a 50 calls/s run of
# benchmarks/b2bua_churn.py that fell over had thousands of drops on both
# ends' SIP sockets; tests/test_sip_wakeup.py lost 834 of a burst of 1,000).
# 4 MB (the kernel books twice that) holds a few thousand.
SIP_RECEIVE_BUFFER = 4 * 1024 * 1024
# Linux's SO_RCVBUFFORCE, which Python's socket module does not name.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def widen_receive_buffer(fd: int, size: int = SIP_RECEIVE_BUFFER) -> int:
    """Give the socket ``fd`` a receive buffer of ``size`` bytes; returns
    what the kernel granted (it doubles the request for its bookkeeping).
    SO_RCVBUFFORCE passes net.core.rmem_max where the process may
    (CAP_NET_ADMIN); elsewhere the kernel caps SO_RCVBUF at rmem_max."""
    sock = socket.socket(fileno=os.dup(fd))     # a duplicate: ours to close
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:     # not permitted (or not Linux)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        sock.close()


def widen_sip_receive_buffers(port: int) -> list[int]:
    """widen_receive_buffer on every UDP socket of ours bound to ``port``
    (pjsip's SIP transport); the sizes granted."""
    return [widen_receive_buffer(fd) for fd in udp_socket_fds(port)]


def pj_error_text(exc: Exception) -> str:
    """pj.Error's str() is empty; its info() carries the reason."""
    info = getattr(exc, "info", None)
    if callable(info):
        try:
            return info()
        except Exception:
            pass
    return str(exc) or type(exc).__name__


class SipEndpoint:
    def __init__(self, *, listen: str, port: int, transports=("udp",), codecs=("PCMU", "PCMA"),
                 user_agent: str = "sipacd", pjsip_level: int = 2, concealment: bool = True,
                 allow: Sequence[str] | None = None,
                 on_rejected: Callable[[str, str, str], None] | None = None,
                 on_refer: Callable[[int, str, str], int] | None = None):
        self.listen = listen
        self.port = port
        self.transports = tuple(transports)
        self.codecs = tuple(codecs)
        self.user_agent = user_agent
        self.pjsip_level = pjsip_level
        # False for a process that carries fax: an invented (concealed)
        # frame corrupts a modem signal more than the silence it replaces.
        self.concealment = concealment
        # With an allow-list (CIDR strings) the request guard answers every
        # request before pjsua does (sipagent/sip/request_guard.pyx);
        # on_rejected(reason, method, source) hears of each refusal.
        self.allow = None if allow is None else tuple(allow)
        self.on_rejected = on_rejected
        # With on_refer, REFERs are the engine's (sipagent/sip/refer.pyx),
        # not pjsua's own "dial the Refer-To address".
        self.on_refer = on_refer
        self.ep = None
        self.transport_ids: dict[str, int] = {}
        self._log_writer = None
        self._poller: asyncio.Handle | None = None   # the next poll
        self._woken_by: list[int] = []      # fds the loop watches for SIP packets
        self._handled_at = 0.0      # loop time pjsua last handled events for a packet
        self._loop: asyncio.AbstractEventLoop | None = None
        # Idle poll, s: pjsip's timers (and TCP) are served at least this
        # often; UDP packets wake the loop at once (start_polling), and then
        # a slower poll will do (WOKEN_POLL).
        self.idle_poll = IDLE_POLL
        self.receive_buffer = 0     # bytes the SIP socket may queue (start_polling)

    def start(self) -> None:
        import pjsua2 as pj

        from sipagent.logs import pjsip_log_writer

        ep = pj.Endpoint()
        # pj_init logs a few lines to stdout before any writer can be set;
        # send them to stderr so stdout stays clean for the caller.
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            ep.libCreate()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = PJSUA_CALL_LEGS
        cfg.uaConfig.userAgent = self.user_agent
        self._log_writer = pjsip_log_writer()
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.level = self.pjsip_level
        # The writer only sees entries at or below consoleLevel.
        cfg.logConfig.consoleLevel = self.pjsip_level
        cfg.logConfig.decor = 0
        med = cfg.medConfig
        med.clockRate = 8000
        med.sndClockRate = 8000
        med.channelCount = 1
        med.noVad = True
        med.ecTailLen = 0
        # With the null device a recorder's WAV header is only written when
        # the bridge keeps ticking; never auto-close the (null) sound device.
        med.sndAutoCloseTime = -1
        ep.libInit(cfg)
        try:
            for kind in self.transports:
                tcfg = pj.TransportConfig()
                tcfg.port = self.port
                tcfg.boundAddress = self.listen
                ttype = pj.PJSIP_TRANSPORT_UDP if kind == "udp" else pj.PJSIP_TRANSPORT_TCP
                self.transport_ids[kind] = ep.transportCreate(ttype, tcfg)
        except Exception as exc:
            ep.libDestroy()
            raise OSError(f"cannot listen for SIP on {self.listen}:{self.port}: {pj_error_text(exc)}") from None
        ep.libStart()
        if self.allow is not None:
            from sipagent.sip import request_guard

            request_guard.install(self.allow, self.on_rejected)
        if self.on_refer is not None:
            from sipagent.sip import refer

            refer.install(self.on_refer)
        ep.audDevManager().setNullDev()
        start_rtp_poller()
        # Every call's audio is read from answer on, listened to or not, so
        # that a bridge never starts on a stale jitter buffer
        # (sipagent/mediaports/drain.pyx).
        from sipagent.mediaports import drain

        drain.install()
        self._restrict_codecs(ep)
        if not self.concealment:
            from sipagent.sip.fax_media import without_concealment

            without_concealment(ep)
        self.ep = ep
        log.info("sip endpoint started", listen=self.listen, port=self.port,
                 transports=list(self.transports), pjsip=ep.libVersion().full)

    def _restrict_codecs(self, ep) -> None:
        # Other codecs cost up to 5x the CPU of G.711 (measured); offer only these.
        wanted = {f"{c}/8000/1": 255 - i for i, c in enumerate(self.codecs)}
        for info in ep.codecEnum2():
            ep.codecSetPriority(info.codecId, wanted.get(info.codecId, 0))

    def start_polling(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._poller = loop.call_soon(self._poll)
        # A SIP packet is handled the moment it arrives, not at the next
        # idle poll (up to 5 ms later: a BYE that frees an agent, an answer
        # that connects a caller, waited that long).  The poll stays, for
        # pjsip's timers and the TCP transport's connections.
        port = self._udp_port()
        self._woken_by = udp_socket_fds(port) if port else []
        for fd in self._woken_by:
            loop.add_reader(fd, self._packet)
            self.receive_buffer = widen_receive_buffer(fd)
        if self._woken_by and set(self.transport_ids) == {"udp"}:
            self.idle_poll = max(self.idle_poll, WOKEN_POLL)
        log.info("sip packets wake the loop", fds=self._woken_by, port=port,
                 receive_buffer=self.receive_buffer)
        if self._woken_by and self.receive_buffer < SIP_RECEIVE_BUFFER:
            log.warning("SIP socket's receive buffer capped by net.core.rmem_max: a burst "
                        "while the loop is busy may be dropped", granted=self.receive_buffer,
                        wanted=SIP_RECEIVE_BUFFER)

    def _udp_port(self) -> int | None:
        tid = self.transport_ids.get("udp")
        if tid is None:
            return None
        try:
            return int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        except (ValueError, IndexError):
            return None

    def _packet(self) -> None:
        self._handled_at = self._loop.time()
        try:
            self.ep.libHandleEvents(0)
        except Exception:
            log.exception("libHandleEvents failed")

    def _poll(self) -> None:
        # A plain callback, not a task: a coroutine's sleep costs several
        # times a call_later.
        loop = self._loop
        since = loop.time() - self._handled_at
        if since < self.idle_poll:
            # A packet's handling ran pjsua's timers and queued callbacks
            # meanwhile: what the poll is for is served until a poll after it.
            self._poller = loop.call_later(self.idle_poll - since, self._poll)
            return
        try:
            n = self.ep.libHandleEvents(0)
        except Exception:
            log.exception("libHandleEvents failed")
            n = 0
        # Busy: poll again at once; idle: wait (a packet wakes us sooner).
        self._poller = loop.call_soon(self._poll) if n > 0 else \
            loop.call_later(self.idle_poll, self._poll)

    def _stop_waking(self) -> None:
        """Before libDestroy closes the sockets (a closed loop forgot them)."""
        if self._woken_by and self._loop is not None and not self._loop.is_closed():
            for fd in self._woken_by:
                self._loop.remove_reader(fd)
        self._woken_by = []

    async def pump(self, seconds: float) -> None:
        """Let pjsua2 process events for a while (used during shutdown)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.ep.libHandleEvents(0)
            await asyncio.sleep(0.01)

    def destroy(self) -> None:
        """Caller must have dropped every Call, player and recorder first."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._stop_waking()
        if self.ep is None:
            return
        if self.allow is not None:
            from sipagent.sip import request_guard

            request_guard.uninstall()
        if self.on_refer is not None:
            from sipagent.sip import refer

            refer.uninstall()
        gc.collect()
        stop_rtp_poller()
        self.ep.libDestroy(1)  # PJSUA_DESTROY_NO_RX_MSG: 0.02 s instead of ~1 s
        self.ep = None
        self._log_writer = None
        log.info("sip endpoint destroyed")
