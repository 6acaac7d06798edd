"""Fax over real SIP between two processes on 127.0.0.1.

Two processes, not one: each has its own media clock and the audio crosses
real RTP and a jitter buffer each way.  With pjsua's default jitter buffer
(progressive discard) the first frames of T.30 already fail; these tests hold
the fix (fixed prefetch, no discard: sipagent/fax_call.py) in place.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from faxkit import FaxUA, assert_pixel_identical, make_document

pytestmark = [pytest.mark.sip, pytest.mark.slow]

# 2 pages take about 35 s of line time at 14400 bit/s with ECM.
FAX_TIMEOUT = 150


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    return make_document(tmp_path_factory.mktemp("faxsip") / "doc.tif", pages=2, lines=5)


def _terminal(name, workdir, port, rtp_port, *args):
    return FaxUA(name, workdir, "--port", str(port), "--rtp-port", str(rtp_port),
                 "--timeout", str(FAX_TIMEOUT), *args)


def _transfer(document, workdir, ports, *, answerer_sends: bool):
    rx_path = workdir / "received.tif"
    a_port, b_port = ports(), ports()
    if answerer_sends:
        # Fax-on-demand: the engine answers the SIP call and transmits,
        # taking the *calling* role in T.30; the caller's machine answers.
        answer_args = ("--mode", "send", "--tiff", str(document), "--t30", "calling",
                       "--ident", "SIPACD FOD")
        dial_args = ("--mode", "receive", "--tiff", str(rx_path), "--t30", "answering",
                     "--ident", "CALLER FAX")
    else:
        answer_args = ("--mode", "receive", "--tiff", str(rx_path), "--ident", "SIPACD FOD")
        dial_args = ("--mode", "send", "--tiff", str(document), "--ident", "CALLER FAX")
    with _terminal("answerer", workdir, a_port, ports.block(4), *answer_args) as answerer:
        answerer.wait_event("ready", 10)
        with _terminal("caller", workdir, b_port, ports.block(4), *dial_args,
                       "--dial", f"sip:fax@127.0.0.1:{a_port}") as caller:
            # Per call: the process keeps pjmedia's progressive discard.
            for t in (answerer, caller):
                media = t.wait_event("media", 20)
                assert (media["jitter_discard"], media["process_jitter_discard"]) == \
                    ("none", "progressive"), media
            got_a = answerer.wait_event("fax", FAX_TIMEOUT + 10)
            got_c = caller.wait_event("fax", 20)
            caller.wait_event("exit", 15)
        answerer.wait_event("exit", 15)
    sent, received = (got_a, got_c) if answerer_sends else (got_c, got_a)
    assert sent["ok"], sent
    assert received["ok"], received
    assert sent["pages"] == received["pages"] == 2
    assert sent["remote_ident"] == ("CALLER FAX" if answerer_sends else "SIPACD FOD")
    assert received["bit_rate"] == 14400
    assert_pixel_identical(document, rx_path)
    return sent, received


def test_fax_between_two_processes_is_pixel_identical(document, workdir, ports):
    _transfer(document, workdir, ports, answerer_sends=False)


def test_fax_on_demand_answerer_transmits(document, workdir, ports):
    _transfer(document, workdir, ports, answerer_sends=True)


def test_hangup_mid_transfer_fails_cleanly_on_both_sides(document, workdir, ports):
    # The receiver quits once T.30 has negotiated: its fax port leaves the
    # bridge while the bridge is running, the BYE ends the sender's call
    # mid-transfer.
    a_port = ports()
    with _terminal("answerer", workdir, a_port, ports.block(4), "--mode", "receive",
                   "--tiff", str(workdir / "partial.tif")) as answerer:
        answerer.wait_event("ready", 10)
        with _terminal("caller", workdir, ports(), ports.block(4), "--mode", "send",
                       "--tiff", str(document), "--dial", f"sip:fax@127.0.0.1:{a_port}") as caller:
            answerer.wait_event("progress", 60, negotiated=True)
            assert answerer.close() == 0
            got = answerer.wait_event("fax", 1)
            assert not got["ok"] and got["status_text"] == "stopped before phase E"
            sent = caller.wait_event("fax", 20)
            assert not sent["ok"]
            caller.wait_event("exit", 15)
        assert caller.proc.returncode == 0


_SIPP_T38 = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="G.711 call, then T.38 re-INVITEs: image only, then audio + image">
  <send retrans="500"><![CDATA[
INVITE sip:fax@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
ACK sip:fax@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="500"/>
  <send retrans="500"><![CDATA[
INVITE sip:fax@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 2 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=image [media_port] udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxUdpEC:t38UDPRedundancy
]]></send>
  <recv response="100" optional="true"/>
  <recv response="488"/>
  <send><![CDATA[
ACK sip:fax@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
INVITE sip:fax@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 3 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
m=image [media_port] udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxUdpEC:t38UDPRedundancy
]]></send>
  <recv response="100" optional="true"/>
  <recv response="488"/>
  <send><![CDATA[
ACK sip:fax@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
BYE sip:fax@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fax@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 4 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian: sip-tester) is not installed")
def test_t38_reinvite_is_answered_488_and_the_call_stays_up(document, workdir, ports):
    scenario = workdir / "t38.xml"
    scenario.write_text(_SIPP_T38)
    a_port, sipp_port, media_port = ports(), ports(), ports.block(4)
    with _terminal("answerer", workdir, a_port, ports.block(4), "--mode", "receive",
                   "--tiff", str(workdir / "rx.tif")) as answerer:
        answerer.wait_event("ready", 10)
        run = subprocess.run(
            ["sipp", f"127.0.0.1:{a_port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
             "-p", str(sipp_port), "-mp", str(media_port), "-timeout", "20s",
             "-timeout_error", "-trace_err", "-error_file", str(workdir / "sipp_err.log")],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=40)
        errors = (workdir / "sipp_err.log").read_text(errors="replace") \
            if (workdir / "sipp_err.log").exists() else ""
        assert run.returncode == 0, f"sipp exit {run.returncode}: {run.stderr.decode()[-500:]}\n{errors[-2000:]}"
        # pjsua alone would refuse the image-only offer, but accept the
        # audio + image one with the image stream disabled (a 200 that sipp
        # fails on): the explicit 488 is ours.
        assert [e for e in answerer.events if e.get("ev") == "t38_rejected"], answerer.events
        # The BYE (after the 488) ended the call: phase E never came.
        result = answerer.wait_event("fax", 15)
        assert not result["ok"]
        answerer.wait_event("exit", 15)
