"""The engine's SIP identity toward the trunk: receives INVITEs, places agent
calls, and registers with the PBX when the config asks for it."""
from __future__ import annotations

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
