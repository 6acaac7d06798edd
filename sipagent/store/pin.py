"""Mailbox PINs: stored only as salted scrypt hashes, checked in constant time.

A hash is one string, ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<key b64>``, so the
config file may carry a hash instead of a PIN, and the cost can be raised
later without breaking hashes already stored (each carries its own).

A four-digit PIN has ten thousand values; no hash makes that strong.  What
protects a box is the lockout after a few wrong tries (the store keeps it
across restarts), and the hash only keeps the PIN from being read out of
a copied database or config file.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

PIN_PATTERN = re.compile(r"[0-9]{4,12}")
_HASH = re.compile(r"scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")

# n = 2**14, r = 8: about 16 MiB and a few tens of milliseconds per check,
# the interactive-login setting of the scrypt paper.
LOG2_N, R, P = 14, 8, 1
KEY_LEN = 32


def is_pin_hash(value: str) -> bool:
    return _HASH.fullmatch(value) is not None


def check_pin_format(pin: str) -> str:
    if not PIN_PATTERN.fullmatch(pin):
        raise ValueError("a PIN is 4 to 12 digits")
    return pin


def hash_pin(pin: str, *, log2_n: int = LOG2_N) -> str:
    check_pin_format(pin)
    return hash_secret(pin, log2_n=log2_n)


def hash_secret(secret: str, *, log2_n: int = LOG2_N) -> str:
    """A salted scrypt hash of any secret (a console password); checked by
    :func:`verify_pin`, which takes any text."""
    salt = os.urandom(16)
    key = _derive(secret, salt, log2_n, R, P)
    return "$".join(["scrypt", str(log2_n), str(R), str(P),
                     base64.b64encode(salt).decode(), base64.b64encode(key).decode()])


def verify_pin(pin: str, stored: str | None) -> bool:
    """Whether ``pin`` matches ``stored``.  A missing or malformed hash is
    still charged one derivation, so timing does not tell a caller which
    box numbers exist."""
    m = _HASH.fullmatch(stored or "")
    if m is None:
        _derive(pin or "0000", b"\0" * 16, LOG2_N, R, P)
        return False
    log2_n, r, p = int(m[1]), int(m[2]), int(m[3])
    salt, key = base64.b64decode(m[4]), base64.b64decode(m[5])
    return hmac.compare_digest(_derive(pin, salt, log2_n, r, p, len(key)), key)


def _derive(pin: str, salt: bytes, log2_n: int, r: int, p: int, length: int = KEY_LEN) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r + (1 << 20), dklen=length)
