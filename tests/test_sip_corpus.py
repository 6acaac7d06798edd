"""A corpus of malformed, hostile and unwanted SIP requests, sent raw over
UDP to one engine; after each, an OPTIONS from an allowed source must still
get 200 (the engine is alive and answering), and the answer to the case
itself must be the expected one: a 4xx, or no answer at all where pjsip's
parser discards the datagram (no Via to answer to, a header it cannot
parse).  Never a 500, never a crash.

The engine allows only 127.0.0.1; 127.0.0.2 is the stranger.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine_proc import Engine, base_config
from portlocks import Ports
from rawsip import SDP, SipSocket

pytestmark = pytest.mark.sip

ALLOWED, STRANGER = "127.0.0.1", "127.0.0.2"
NOTHING = None          # pjsip discards the datagram unanswered
GOOD_SDP = SDP.format(src=ALLOWED, rtp=40000)
LONG = "x" * 3000


@dataclass
class Case:
    name: str
    method: str = "OPTIONS"
    expect: tuple = (NOTHING,)      # final status codes accepted (NOTHING: silence)
    edits: dict = field(default_factory=dict)
    body: str = ""
    content_length: int | None = None
    source: str = ALLOWED
    to_tag: str = ""
    uri: str | None = None
    raw: str | bytes | None = None  # sent as is instead of a built request

    def __str__(self) -> str:
        return self.name


def sdp_with(*replace: tuple[str, str], extra: str = "") -> str:
    text = GOOD_SDP
    for old, new in replace:
        text = text.replace(old, new)
    return text + extra


CASES = [
    # -- mandatory headers missing: pjsip's parser drops these -----------------
    Case("no-via", edits={"Via": None}),
    Case("no-from", edits={"From": None}),
    Case("no-to", edits={"To": None}),
    Case("no-call-id", edits={"Call-ID": None}),
    Case("no-cseq", edits={"CSeq": None}),
    Case("empty-call-id", edits={"Call-ID": ""}),
    Case("no-max-forwards-is-tolerated", edits={"Max-Forwards": None}, expect=(200,)),
    # -- mandatory headers twice ---------------------------------------------------
    Case("two-cseq", edits={"+CSeq": "2 OPTIONS"}, expect=(400,)),
    Case("two-call-id", edits={"+Call-ID": "second@elsewhere"}, expect=(400,)),
    Case("two-from", edits={"+From": "<sip:other@127.0.0.1>;tag=2"}, expect=(400,)),
    Case("two-to", edits={"+To": "<sip:other@127.0.0.1>"}, expect=(400,)),
    Case("two-max-forwards", edits={"+Max-Forwards": "10"}, expect=(400,)),
    Case("two-content-type", method="INVITE", body=GOOD_SDP,
         edits={"+Content-Type": "text/plain"}, expect=(400,)),
    # -- CSeq ---------------------------------------------------------------------
    Case("invite-cseq-says-bye", method="INVITE", body=GOOD_SDP, edits={"CSeq": "1 BYE"},
         expect=(400,)),
    Case("options-cseq-says-invite", edits={"CSeq": "1 INVITE"}, expect=(400,)),
    # pjsip reads known methods in any case: "options" is OPTIONS.
    Case("cseq-method-lowercase", edits={"CSeq": "1 options"}, expect=(200,)),
    Case("cseq-method-other", method="FOO", edits={"CSeq": "1 BAR"}, expect=(400,)),
    Case("cseq-number-not-a-number", edits={"CSeq": "abc OPTIONS"}),
    Case("cseq-without-method", edits={"CSeq": "1"}),
    Case("cseq-number-too-large", edits={"CSeq": "99999999999 OPTIONS"}),
    # -- Content-Length -------------------------------------------------------------
    Case("content-length-beyond-datagram", content_length=500, expect=(400,)),
    Case("invite-content-length-beyond-sdp", method="INVITE", body=GOOD_SDP,
         content_length=len(GOOD_SDP) + 200, expect=(400,)),
    Case("content-length-negative", content_length=-5),
    Case("content-length-not-a-number", edits={"Content-Length": "ten"},
         content_length=None),
    Case("content-length-over-int", content_length=3000000000, expect=(400,)),
    # pjsip reads 2**32 as 0 (it wraps): an empty body, which is what came.
    Case("content-length-wraps-to-zero", content_length=4294967296, expect=(200,)),
    # -- broken and hostile SDP -------------------------------------------------------
    Case("sdp-garbage", method="INVITE", body="hello, this is not SDP\r\n", expect=(400,)),
    Case("sdp-no-media", method="INVITE",
         body="v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
         expect=(400,)),
    Case("sdp-video-only", method="INVITE",
         body=sdp_with(("m=audio 40000 RTP/AVP 0 101", "m=video 40000 RTP/AVP 96"),
                       ("a=rtpmap:0 PCMU/8000", "a=rtpmap:96 H264/90000")),
         expect=(488,)),
    Case("sdp-unsupported-codec", method="INVITE",
         body=sdp_with(("RTP/AVP 0 101", "RTP/AVP 18"), ("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000")),
         expect=(488,)),
    Case("sdp-bad-connection-address", method="INVITE",
         body=sdp_with(("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.1.1")), expect=(488,)),
    Case("sdp-host-name-connection", method="INVITE",
         body=sdp_with(("c=IN IP4 127.0.0.1", "c=IN IP4 media.example.invalid")), expect=(488,)),
    Case("sdp-port-zero", method="INVITE", body=sdp_with(("m=audio 40000", "m=audio 0")),
         expect=(488,)),
    # The first audio stream is taken, the other 60 are declined (port 0).
    Case("sdp-sixty-media-lines", method="INVITE",
         body=GOOD_SDP + "m=audio 40002 RTP/AVP 0\r\n" * 60, expect=(200,)),
    Case("sdp-huge-attribute", method="INVITE", body=sdp_with(extra=f"a=x-junk:{LONG}\r\n"),
         expect=(200,)),
    # No SDP part in the multipart body: an INVITE without offer, answered with one.
    Case("sdp-wrong-content-type-multipart", method="INVITE", body=GOOD_SDP,
         edits={"Content-Type": "multipart/mixed;boundary=zz"}, expect=(200,)),
    # -- oversized ------------------------------------------------------------------------
    Case("long-header-fits", edits={"X-Long": LONG}, expect=(200,)),
    Case("datagram-beyond-pjsip-buffer", edits={"X-Long": LONG * 2}, expect=(513,)),
    Case("long-request-uri", uri=f"sip:{LONG}@127.0.0.1", expect=(200, 404)),
    Case("a-hundred-fifty-headers", edits={f"X-H{i}": "v" for i in range(150)}, expect=(200,)),
    # -- methods the engine does not serve ----------------------------------------------
    Case("unknown-method", method="FOO", expect=(501,)),
    Case("unknown-method-lookalike", method="OPTIONSX", expect=(501,)),
    Case("method-lowercase-is-read-as-options", method="options", expect=(200,)),
    Case("subscribe", method="SUBSCRIBE", edits={"Event": "presence", "Expires": "60"},
         expect=(405,)),
    Case("message", method="MESSAGE", edits={"Content-Type": "text/plain"}, body="hi",
         expect=(405,)),
    Case("register", method="REGISTER", expect=(405,)),
    Case("publish", method="PUBLISH", edits={"Event": "presence"}, expect=(405,)),
    Case("notify-out-of-dialog", method="NOTIFY",
         edits={"Event": "message-summary", "Subscription-State": "active"}, expect=(405,)),
    Case("refer-out-of-dialog", method="REFER", edits={"Refer-To": "<sip:1@10.0.0.1>"},
         expect=(405,)),
    Case("info-out-of-dialog", method="INFO", expect=(405,)),
    # -- out-of-dialog requests that need a dialog --------------------------------------
    Case("bye-without-to-tag", method="BYE", expect=(481,)),
    Case("bye-unknown-dialog", method="BYE", to_tag="nosuch", expect=(481,)),
    Case("reinvite-unknown-dialog", method="INVITE", body=GOOD_SDP, to_tag="nosuch",
         expect=(481,)),
    Case("cancel-without-invite", method="CANCEL", expect=(481,)),
    Case("prack-out-of-dialog", method="PRACK", edits={"RAck": "1 1 INVITE"}, expect=(481,)),
    Case("update-out-of-dialog", method="UPDATE", expect=(481,)),
    Case("ack-out-of-dialog", method="ACK"),
    # -- a source not allowed -------------------------------------------------------------
    Case("stranger-options", source=STRANGER, expect=(403,)),
    Case("stranger-invite", method="INVITE", body=GOOD_SDP, source=STRANGER, expect=(403,)),
    Case("stranger-subscribe-third-party-contact", method="SUBSCRIBE", source=STRANGER,
         edits={"Event": "presence", "Expires": "3600", "Contact": "<sip:victim@127.0.0.3:5999>"},
         expect=(403,)),
    Case("stranger-message", method="MESSAGE", source=STRANGER,
         edits={"Content-Type": "text/plain"}, body="hi", expect=(403,)),
    Case("stranger-register", method="REGISTER", source=STRANGER, expect=(403,)),
    Case("stranger-unknown-method", method="FOO", source=STRANGER, expect=(403,)),
    Case("stranger-bye-unknown-dialog", method="BYE", source=STRANGER, to_tag="nosuch",
         expect=(481,)),
    Case("stranger-ack", method="ACK", source=STRANGER),
    # -- not SIP at all ---------------------------------------------------------------------
    Case("empty-lines", raw="\r\n\r\n"),
    Case("binary-garbage", raw=bytes(range(256)) * 4),
    Case("request-line-only", raw="OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n\r\n"),
    Case("wrong-sip-version", raw="OPTIONS sip:100@127.0.0.1 SIP/3.0\r\nVia: x\r\n\r\n"),
]


@pytest.fixture(scope="module")
def engine(port_allocator, tmp_path_factory, prompts_dir):
    workdir = tmp_path_factory.mktemp("corpus")
    cfg = base_config(Ports(port_allocator), workdir, prompts_dir,
                      trunk={"allow": ["127.0.0.1/32"]})
    with Engine(workdir, cfg) as eng:
        yield eng


def send_case(engine, case: Case):
    """The case's final answer (None: silence); a call it set up is ended."""
    with SipSocket(engine.sip_port, source=case.source) as sock:
        if case.raw is not None:
            sock.send(case.raw)
            got = [a for a in sock.answers(0.5) if a.code >= 200]
            return got[0] if got else None
        text = sock.request(case.method, uri=case.uri, edits=case.edits, body=case.body,
                            content_length=case.content_length, to_tag=case.to_tag)
        answer = sock.final(text, timeout=4.0 if case.method == "INVITE" else 0.5)
        if answer is not None and case.method == "INVITE" and 200 <= answer.code < 300:
            end_call(sock, text, answer)
        return answer


def end_call(sock: SipSocket, invite: str, answer) -> None:
    call_id = next(line.split(":", 1)[1].strip() for line in invite.split("\r\n")
                   if line.startswith("Call-ID:"))
    tag = answer.header("to").split("tag=", 1)[1].split(";")[0]
    sock.send(sock.request("ACK", call_id=call_id, to_tag=tag))
    sock.final(sock.request("BYE", call_id=call_id, to_tag=tag, cseq=2), timeout=2.0)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case_is_answered_as_expected_and_the_engine_lives_on(engine, case):
    answer = send_case(engine, case)
    code = answer.code if answer is not None else NOTHING
    assert code in case.expect, f"{case.name}: answered {answer or 'nothing'}"
    if code in (405, 501):
        allow = {m.strip() for m in answer.header("allow").split(",")}
        assert {"INVITE", "OPTIONS", "BYE"} <= allow and not allow & {"SUBSCRIBE", "MESSAGE"}
    with SipSocket(engine.sip_port) as probe:
        alive = probe.final(probe.request("OPTIONS"), timeout=2.0)
    assert alive is not None and alive.code == 200, f"no OPTIONS answer after {case.name}"
    assert engine.proc.poll() is None, engine.log_tail()


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_after_the_corpus_the_log_holds_no_traceback_and_no_flood(engine):
    text = engine.log_path.read_text(errors="replace")
    bad = [line[:300] for line in text.splitlines()
           if "Traceback" in line or "on_rejected failed" in line]
    assert not bad, bad
    refused = [e for e in engine.log_events() if e.get("event") == "SIP request refused"]
    # One line per reason at most: the rest waits for the summary.
    assert len(refused) == len({e["reason"] for e in refused}), refused
