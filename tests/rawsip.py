"""Hand-written SIP over a plain UDP socket: send exactly the bytes a test
wants (malformed ones included) and read what comes back."""
from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field

SDP = ("v=0\r\no=- 1 1 IN IP4 {src}\r\ns=-\r\nc=IN IP4 {src}\r\nt=0 0\r\n"
       "m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


@dataclass
class Answer:
    code: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)   # lower-case names
    body: str = ""

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


def parse_answer(data: bytes) -> Answer | None:
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None            # a request (a NOTIFY, say), not an answer
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


class SipSocket:
    """A UDP socket bound to ``source`` that talks to the engine's SIP port."""

    def __init__(self, engine_port: int, source: str = "127.0.0.1", engine: str = "127.0.0.1"):
        self.engine = (engine, engine_port)
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method: str, *, uri: str | None = None, edits: dict | None = None,
                body: str = "", content_length: int | None = None, call_id: str | None = None,
                cseq: int = 1, to_tag: str = "", from_tag: str = "caller") -> str:
        """A request's text: the usual headers, then ``edits`` applied
        ({"Name": value} replaces, {"Name": None} removes, {"+Name": value}
        appends another one), then Content-Length (the body's, or the one given)."""
        host, port = self.engine
        to = f"<sip:100@{host}>" + (f";tag={to_tag}" if to_tag else "")
        fields = [
            ("Via", f"SIP/2.0/UDP {self.source}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:caller@{self.source}>;tag={from_tag}"),
            ("To", to),
            ("Call-ID", call_id or uuid.uuid4().hex),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:caller@{self.source}:{self.port}>"),
        ]
        if body:
            fields.append(("Content-Type", "application/sdp"))
        for name, value in (edits or {}).items():
            if name.startswith("+"):
                fields.append((name[1:], value))
                continue
            at = [i for i, (n, _) in enumerate(fields) if n.lower() == name.lower()]
            if value is None:
                fields = [f for i, f in enumerate(fields) if i not in at]
            elif at:
                fields[at[0]] = (name, value)
            else:
                fields.append((name, value))
        length = len(body.encode()) if content_length is None else content_length
        lines = [f"{method} {uri or f'sip:100@{host}:{port}'} SIP/2.0"]
        lines += [f"{n}: {v}" for n, v in fields]
        lines.append(f"Content-Length: {length}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def send(self, data: str | bytes) -> None:
        self.sock.sendto(data.encode() if isinstance(data, str) else data, self.engine)

    def answers(self, timeout: float = 1.0) -> list[Answer]:
        """Answers until a final one (or ``timeout`` of silence)."""
        out: list[Answer] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                break
            answer = parse_answer(data)
            if answer is None:
                continue
            out.append(answer)
            if answer.code >= 200:
                break
        return out

    def final(self, text: str, timeout: float = 1.0) -> Answer | None:
        """Send ``text``; its final answer (None: none came)."""
        self.send(text)
        got = [a for a in self.answers(timeout) if a.code >= 200]
        return got[0] if got else None

    def drain(self, seconds: float = 0.2) -> list[bytes]:
        """Whatever arrives within ``seconds`` (NOTIFYs, retransmissions)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(65535))
            except socket.timeout:
                break
        return got
