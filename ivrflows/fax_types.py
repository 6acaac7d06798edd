"""What flows see of fax: library documents, the result of a transfer, and
why a document was refused.  The verbs are on :class:`ivrflows.call.Call`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RefusalReason = Literal["unknown", "pin"]


@dataclass(frozen=True)
class FaxDocumentInfo:
    """A document of the fax library, by the number callers key in."""
    number: str
    title: str
    pages: int
    protected: bool          # a PIN must be given (fax_unlock) before it is sent


@dataclass(frozen=True)
class FaxResult:
    """How one fax transfer ended.  ``status``/``status_text`` are T.30's
    completion code and its text (0 / "OK" on success); ``pages`` counts
    pages the receiving side confirmed."""
    ok: bool
    status: int
    status_text: str
    pages: int
    bit_rate: int = 0
    resolution: str = ""
    ecm: bool = False
    remote_ident: str = ""
    seconds: float = 0.0
    fax_id: str = ""


class FaxRefused(Exception):
    """A document that may not be sent: ``unknown`` number, or protected
    and not unlocked with its PIN (``pin``).  Nothing was sent or queued."""

    def __init__(self, number: str, reason: RefusalReason):
        super().__init__(f"fax document {number!r} refused: "
                         f"{'no such document' if reason == 'unknown' else 'PIN required'}")
        self.number, self.reason = number, reason


class FaxUnavailable(Exception):
    """Two-call fax-on-demand is not set up (no ``[fax] dial`` in the config)."""
