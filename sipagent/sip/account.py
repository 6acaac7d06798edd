"""The engine's SIP identity toward the trunk: receives INVITEs, places agent
calls, and registers with the PBX when the config asks for it."""
from __future__ import annotations

import ipaddress
from typing import Callable

import pjsua2 as pj
import structlog

from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.sip.account")


class TrunkAccount(pj.Account):
    def __init__(self, on_incoming: Callable[[CallLeg, object], None]):
        super().__init__()
        self._on_incoming = on_incoming

    @classmethod
    def open(cls, sip, config, on_incoming) -> "TrunkAccount":
        acc = cls(on_incoming)
        cfg = pj.AccountConfig()
        host = str(config.sip.listen)
        if ":" in host:
            host = f"[{host}]"
        cfg.idUri = f"sip:sipacd@{host}:{config.sip.port}"
        # pjsua picks accounts by the To header; pin the transport so replies
        # and agent calls leave from the trunk-facing socket.
        cfg.sipConfig.transportId = sip.transport_ids.get("udp", next(iter(sip.transport_ids.values())))
        media_transport(cfg.mediaConfig.transportConfig, config.sip)
        reg = config.trunk.registration
        if reg is not None:
            cfg.regConfig.registrarUri = reg.registrar
            cfg.regConfig.timeoutSec = reg.expires
            cred = pj.AuthCredInfo("digest", reg.realm, reg.username, 0, reg.password)
            cfg.sipConfig.authCreds.append(cred)
            cfg.idUri = f"sip:{reg.username}@{reg.registrar.split(':', 1)[1].split(';')[0]}"
        else:
            cfg.regConfig.registrarUri = ""
        acc.create(cfg, True)
        return acc

    def onIncomingCall(self, prm):
        try:
            leg = CallLeg(self, prm.callId, label=f"in-{prm.callId}")
            self._on_incoming(leg, prm.rdata)
        except Exception:
            log.exception("incoming call could not be handled")

    def onRegState(self, prm):
        log.info("trunk registration", code=prm.code, reason=prm.reason, expiration=prm.expiration)


def media_transport(tcfg, sip) -> None:
    """RTP of every call of the account binds ``sip.media_host`` and takes
    its ports from ``sip.rtp_ports``.  Without an explicit public address
    pjsua would announce the machine's first interface in the SDP, even for
    a socket bound to 127.0.0.1, so a bound address is announced as itself."""
    host = sip.media_host
    tcfg.boundAddress = host
    if not ipaddress.ip_address(host).is_unspecified:
        tcfg.publicAddress = host
    if sip.rtp_ports is not None:
        # pjsua wraps to `port` once the next RTP port would pass
        # port + portRange, and RTCP takes RTP + 1: so the last RTP port
        # is high - 1 and RTCP never leaves the range.
        tcfg.port = sip.rtp_ports.low
        tcfg.portRange = sip.rtp_ports.high - sip.rtp_ports.low - 1
