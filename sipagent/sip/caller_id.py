"""The engine's identity toward the trunk under another caller id.

pjsua puts an account's own URI in the From header of every INVITE it
sends, and 2.12 has no per-call override, so click-to-call places its
customer legs from a second account: the trunk account's identity with the
configured caller id as user (and display name), bound to the same SIP
transport and the same RTP addresses and ports.

pjsua picks the account of an incoming request by its To header, and a
trunk's INVITE to the caller-id number (often the centre's main number)
would score this account highest: every incoming call is therefore handed
to the trunk account, which handles all of them.
"""
from __future__ import annotations

import pjsua2 as pj
import structlog

from sipagent.sip.account import media_transport

log = structlog.get_logger("sipagent.sip.caller_id")


class CallerIdAccount(pj.Account):
    def __init__(self, trunk: pj.Account):
        super().__init__()
        self._trunk = trunk

    @classmethod
    def open(cls, trunk: pj.Account, sip, registration, caller_id: str,
             display: str | None = None) -> "CallerIdAccount":
        """``sip``: the config's ``[sip]`` section; ``registration``: the
        trunk's (its credentials answer the PBX's challenges), or None."""
        acc = cls(trunk)
        cfg = pj.AccountConfig()
        host = trunk.getInfo().uri.rsplit("@", 1)[-1].rstrip(">")
        uri = f"sip:{caller_id}@{host}"
        cfg.idUri = f'"{display}" <{uri}>' if display else uri
        cfg.sipConfig.transportId = _transport_id(sip.port)
        media_transport(cfg.mediaConfig.transportConfig, sip)
        cfg.regConfig.registrarUri = ""
        if registration is not None:
            cfg.sipConfig.authCreds.append(pj.AuthCredInfo(
                "digest", registration.realm, registration.username, 0, registration.password))
        acc.create(cfg, False)
        log.info("caller-id account ready", uri=cfg.idUri)
        return acc

    def onIncomingCall(self, prm):
        try:
            self._trunk.onIncomingCall(prm)
        except Exception:
            log.exception("incoming call could not be handed to the trunk account")


def _transport_id(port: int) -> int:
    """The SIP transport the trunk listens on: UDP on ``port`` (else the first)."""
    ep = pj.Endpoint.instance()
    ids = list(ep.transportEnum())
    for tid in ids:
        info = ep.transportGetInfo(tid)
        if info.typeName.upper().startswith("UDP") and info.localName.endswith(f":{port}"):
            return tid
    return ids[0]
