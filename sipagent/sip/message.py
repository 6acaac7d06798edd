"""Reading the parts of a raw SIP request that pjsua2 does not hand over
parsed: the request URI's user and the header fields."""
from __future__ import annotations

import ipaddress
import re

_HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*:[ \t]*(.*)$")
_REQUEST_LINE = re.compile(r"^[A-Z]+\s+(\S+)\s+SIP/2\.0", re.I)
_USER = re.compile(r"sips?:([^@;>:]+)@", re.I)
# A name-addr's display name: quoted ("Ann \"A\" Lee" <sip:..>) or bare (Ann <sip:..>).
_DISPLAY_NAME = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<')
DISPLAY_NAME_MAX = 80


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


def display_name(headers: dict[str, str] | None) -> str:
    """The display name of a request's From header ('' if none), unquoted
    and cut to ``DISPLAY_NAME_MAX`` characters: it is caller-supplied text."""
    value = next((v for k, v in (headers or {}).items() if k.lower() in ("from", "f")), "")
    m = _DISPLAY_NAME.match(value)
    if not m:
        return ""
    name = m.group(1) if m.group(1) is not None else (m.group(2) or "")
    return re.sub(r"\\(.)", r"\1", name).strip()[:DISPLAY_NAME_MAX]


def uri_user(uri: str) -> str:
    """The user part of a SIP URI or name-addr ('' when it has none)."""
    m = _USER.search(uri)
    return m.group(1) if m else ""


def request_user(whole_msg: str) -> str:
    """The user part of the request URI: the called number of an INVITE."""
    m = _REQUEST_LINE.match(whole_msg)
    return uri_user(m.group(1)) if m else ""


_STATIC_PAYLOADS = {"0": "PCMU", "8": "PCMA"}   # RFC 3551's static G.711 types


def offers_audio(whole_msg: str, codecs: tuple[str, ...]) -> bool:
    """Whether the request's SDP offer, if it has one, has an audio stream
    (port not 0) with one of ``codecs``, and every connection address is
    an IP address (pjsua cannot send to 999.1.1.1, and would resolve a host
    name on the loop's thread).  pjsua accepts such an INVITE and
    only fails when the flow answers it; refusing it up front with 488 is
    what the caller would get anyway, minus a flow error."""
    head, _, body = whole_msg.replace("\r\n", "\n").partition("\n\n")
    fields = headers(head)
    ctype = fields.get("Content-Type") or fields.get("c") or ""
    if not body.strip() or ctype.split(";")[0].strip().lower() != "application/sdp":
        return True             # no offer here: pjsua makes one
    wanted = {c.upper() for c in codecs}
    streams: list[tuple[str, list[str]]] = []   # (port, payload types) of audio lines
    names: dict[str, str] = dict(_STATIC_PAYLOADS)
    for line in body.split("\n"):
        line = line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) >= 4 and parts[0] == "audio":
                streams.append((parts[1].split("/")[0], parts[3:]))
        elif line.startswith("c="):
            parts = line[2:].split()
            try:
                ipaddress.ip_address(parts[2].split("/")[0] if len(parts) > 2 else "")
            except ValueError:
                return False
        elif line.startswith("a=rtpmap:"):
            pt, _, encoding = line[9:].partition(" ")
            names[pt] = encoding.split("/")[0].upper()
    return any(port != "0" and any(names.get(pt) in wanted for pt in pts)
               for port, pts in streams)
