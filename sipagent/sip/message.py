"""Reading the parts of a raw SIP request that pjsua2 does not hand over
parsed: the request URI's user and the header fields."""
from __future__ import annotations

import re

_HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*:[ \t]*(.*)$")
_REQUEST_LINE = re.compile(r"^[A-Z]+\s+(\S+)\s+SIP/2\.0", re.I)
_USER = re.compile(r"sips?:([^@;>:]+)@", re.I)


def headers(whole_msg: str) -> dict[str, str]:
    """Header name (as sent) -> value of its first occurrence; stops at the body."""
    out: dict[str, str] = {}
    for line in whole_msg.replace("\r\n", "\n").split("\n")[1:]:
        if not line:
            break
        m = _HEADER.match(line)
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def uri_user(uri: str) -> str:
    """The user part of a SIP URI or name-addr ('' when it has none)."""
    m = _USER.search(uri)
    return m.group(1) if m else ""


def request_user(whole_msg: str) -> str:
    """The user part of the request URI: the called number of an INVITE."""
    m = _REQUEST_LINE.match(whole_msg)
    return uri_user(m.group(1)) if m else ""
