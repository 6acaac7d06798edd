"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"``
using the key that the secret ``whsec_<base64 key>`` carries; the header
``webhook-signature`` is ``v1,<base64 signature>`` (several, space
separated, while a secret is being rotated).

:func:`verify` is what a receiver runs; it is self-contained (stdlib only)
so that an integrator can copy it as it is.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Mapping

__all__ = ["sign", "headers_for", "verify", "InvalidWebhook", "TOLERANCE"]

#: How far a message's timestamp may be from the receiver's clock (seconds).
TOLERANCE = 300


class InvalidWebhook(ValueError):
    """The message is not one the secret's owner sent (or it is stale)."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers_for(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body),
            "content-type": "application/json"}


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           tolerance: float = TOLERANCE, now: float | None = None) -> Any:
    """Check one received message; returns its JSON payload, or raises
    ``InvalidWebhook``.  ``headers``: any mapping (names in any case)."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, given = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts or not given:
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(ts)
    except ValueError:
        raise InvalidWebhook("webhook-timestamp is not an integer") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise InvalidWebhook("webhook-timestamp too far from now (a replay?)")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in given.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return json.loads(body)
    raise InvalidWebhook("no matching signature")
