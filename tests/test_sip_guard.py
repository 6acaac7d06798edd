"""The engine's SIP front door: who may send what (the request guard), what
a malformed request gets, where media binds, and how refusals are logged."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from engine_proc import Engine, base_config
from rawsip import SDP, SipSocket
from sipagent.config.load import ConfigError, config_from_dict
from sipagent.sip.rejections import RejectionLog

ALLOW_ONLY_LOCALHOST = {"allow": ["127.0.0.1/32"]}


def guarded_engine(ports, workdir, prompts_dir, **sections) -> Engine:
    return Engine(workdir, base_config(ports, workdir, prompts_dir, trunk=ALLOW_ONLY_LOCALHOST,
                                       **sections))


@pytest.mark.sip
def test_no_subscription_from_anyone_and_no_notify_to_a_third_party(ports, workdir, prompts_dir):
    with guarded_engine(ports, workdir, prompts_dir) as engine, \
            SipSocket(engine.sip_port) as victim, \
            SipSocket(engine.sip_port, source="127.0.0.2") as stranger, \
            SipSocket(engine.sip_port) as trunk:
        contact = {"Contact": f"<sip:victim@127.0.0.1:{victim.port}>", "Event": "presence",
                   "Expires": "3600"}
        assert stranger.final(stranger.request("SUBSCRIBE", edits=contact)).code == 403
        assert stranger.final(stranger.request("MESSAGE", body="hi", edits={
            "Content-Type": "text/plain"})).code == 403
        assert stranger.final(stranger.request("OPTIONS")).code == 403
        # From the trunk itself: still never served, and said so.
        for method, code in (("SUBSCRIBE", 405), ("MESSAGE", 405), ("REGISTER", 405),
                             ("PUBLISH", 405), ("FROB", 501)):
            answer = trunk.final(trunk.request(method, edits=contact))
            assert answer.code == code, (method, str(answer))
            allow = {m.strip() for m in answer.header("allow").split(",")}
            assert "INVITE" in allow and "SUBSCRIBE" not in allow, (method, allow)
        assert victim.drain(2.0) == [], "the engine sent something to the third party"
        assert engine.metric("sipacd_sip_rejected_total", reason="forbidden") == 3
        assert engine.metric("sipacd_sip_rejected_total", reason="method_not_allowed") == 4
        assert engine.metric("sipacd_sip_rejected_total", reason="not_implemented") == 1
        # pjsua's own OPTIONS answer no longer claims what is refused.
        allow = trunk.final(trunk.request("OPTIONS")).header("allow")
        assert "SUBSCRIBE" not in allow and "MESSAGE" not in allow and "INVITE" in allow


@pytest.mark.sip
def test_malformed_invite_gets_400_and_an_unknown_dialog_481(ports, workdir, prompts_dir):
    sdp = SDP.format(src="127.0.0.1", rtp=40000)
    with guarded_engine(ports, workdir, prompts_dir) as engine, SipSocket(engine.sip_port) as s:
        assert s.final(s.request("INVITE", body=sdp, edits={"CSeq": "1 BYE"})).code == 400
        assert s.final(s.request("INVITE", body=sdp, content_length=len(sdp) + 100)).code == 400
        assert s.final(s.request("BYE")).code == 481
        assert s.final(s.request("BYE", to_tag="no-such-dialog")).code == 481
        assert engine.metric("sipacd_sip_rejected_total", reason="bad_request") == 2
        assert s.final(s.request("OPTIONS")).code == 200


def udp_sockets_of(pid: int) -> list[tuple[str, int]]:
    out = subprocess.run(["ss", "-Hulnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if f"pid={pid}," in line:
            host, _, port = line.split()[3].rpartition(":")
            found.append((host.strip("[]"), int(port)))
    return found


def call_once(sock: SipSocket, call_id: str) -> tuple[str, int, str]:
    """INVITE and ACK; the address and port the engine's SDP answer named,
    and the engine's To tag (for the BYE)."""
    invite = sock.request("INVITE", body=SDP.format(src="127.0.0.1", rtp=40000), call_id=call_id)
    answer = sock.final(invite, timeout=5.0)
    assert answer is not None and answer.code == 200, answer
    tag = re.search(r"tag=([^;>\s]+)", answer.header("to")).group(1)
    sock.send(sock.request("ACK", call_id=call_id, to_tag=tag))
    address = re.search(r"c=IN IP4 (\S+)", answer.body).group(1)
    port = int(re.search(r"m=audio (\d+)", answer.body).group(1))
    return address, port, tag


@pytest.mark.sip
def test_media_binds_the_listen_address_and_stays_in_rtp_ports(ports, workdir, prompts_dir):
    base = ports.block(9)
    low = base + base % 2
    high = low + 7                  # four RTP/RTCP pairs
    sip = {"max_calls": 4, "rtp_ports": f"{low}-{high}"}
    with guarded_engine(ports, workdir, prompts_dir, sip=sip) as engine, \
            SipSocket(engine.sip_port) as s:
        seen = []
        for n in range(6):
            address, port, tag = call_once(s, f"media-{n}")
            assert address == "127.0.0.1"           # not the machine's other interface
            rtp = [p for h, p in udp_sockets_of(engine.proc.pid) if p != engine.sip_port]
            assert rtp and all(low <= p <= high for p in rtp), rtp
            assert all(h == "127.0.0.1" for h, _ in udp_sockets_of(engine.proc.pid))
            seen.append(port)
            assert s.final(s.request("BYE", call_id=f"media-{n}", cseq=2, to_tag=tag),
                           timeout=2.0).code == 200
        assert seen[:4] == [low, low + 2, low + 4, low + 6]
        assert seen[4] == low, f"no wrap inside {low}-{high}: {seen}"


@pytest.mark.sip
def test_a_flood_of_refused_invites_logs_one_line_and_a_summary(ports, workdir, prompts_dir):
    sdp = SDP.format(src="127.0.0.2", rtp=40000)
    engine = guarded_engine(ports, workdir, prompts_dir)
    try:
        with SipSocket(engine.sip_port, source="127.0.0.2") as stranger:
            for n in range(300):    # 250/s: the flood was 200/s
                stranger.send(stranger.request("INVITE", body=sdp, call_id=f"flood-{n}"))
                time.sleep(0.004)
            assert engine.wait_metric("sipacd_sip_rejected_total", 300, reason="forbidden") == 300
    finally:
        engine.stop()
    events = engine.log_events()
    lines = [e for e in events if e.get("level") == "warning" and e.get("source") == "127.0.0.2"]
    assert len(lines) == 1, f"{len(lines)} WARNING lines for 300 refusals"
    summaries = [e for e in events if e.get("event") == "SIP requests refused (summary)"]
    assert summaries and sum(s["refused"]["forbidden"]["127.0.0.2"] for s in summaries) == 299


class FakeTimer:
    def __init__(self):
        self.pending = []

    def __call__(self, delay, fn):
        self.pending.append(fn)
        return self

    def cancel(self):
        self.pending.clear()

    def fire(self):
        fns, self.pending = self.pending, []
        for fn in fns:
            fn()


class Lines:
    def __init__(self):
        self.lines = []

    def warning(self, event, **kw):
        self.lines.append((event, kw))


def test_rejection_log_logs_the_first_of_a_reason_then_summaries_then_forgets():
    counted, lines, timer, now = [], Lines(), FakeTimer(), [0.0]
    rl = RejectionLog(counted.append, every=10, logger=lines, clock=lambda: now[0],
                      call_later=timer)
    for n in range(5):
        rl.rejected("forbidden", "10.0.0.9", "refused", method="INVITE")
    rl.rejected("no_dialog", "10.0.0.8", "refused", method="BYE")
    assert len(counted) == 6                       # the metric sees every one
    assert [kw["reason"] for _, kw in lines.lines] == ["forbidden", "no_dialog"]
    now[0] = 10.0
    timer.fire()
    event, summary = lines.lines[-1]
    assert summary["refused"] == {"forbidden": {"10.0.0.9": 4}} and summary["total"] == 4
    # Still flooding: no new full line, only the next summary.
    rl.rejected("forbidden", "10.0.0.9", "refused")
    assert len(lines.lines) == 3
    timer.fire()                                    # a summary of one
    timer.fire()                                    # a quiet period: forgotten
    assert not timer.pending
    rl.rejected("forbidden", "10.0.0.9", "refused")
    assert lines.lines[-1][1].get("reason") == "forbidden"


def test_rejection_log_bounds_the_sources_it_keeps():
    lines, timer = Lines(), FakeTimer()
    rl = RejectionLog(every=10, logger=lines, call_later=timer)
    for n in range(100):
        rl.rejected("forbidden", f"10.0.1.{n}", "refused")
    rl.close()
    refused = lines.lines[-1][1]["refused"]["forbidden"]
    assert len(refused) <= 11 and sum(refused.values()) == 99 and refused["other"] == 89


@pytest.mark.parametrize("value, complaint", [
    ("10001-20000", "LOW must be even"),
    ("20000-10000", "1024 <= LOW < HIGH <= 65535"),
    ("80-2000", "1024 <= LOW < HIGH <= 65535"),
    ("10000-70000", "1024 <= LOW < HIGH <= 65535"),
    ("ten-twenty", "expected 'LOW-HIGH'"),
    (10000, "expected 'LOW-HIGH'"),
    ("10000-10002", "at least two RTP/RTCP port pairs"),
    ("10000-10099", "fewer than sip.max_calls"),
    ("5000-5999", "includes sip.port"),
])
def test_rtp_ports_is_validated_naming_the_key(value, complaint):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"sip": {"rtp_ports": value, "port": 5060, "max_calls": 100}})
    assert "sip.rtp_ports: " in str(err.value) and complaint in str(err.value), str(err.value)


def test_media_address_defaults_to_listen_and_is_checked():
    cfg = config_from_dict({"sip": {"listen": "127.0.0.1", "rtp_ports": "10000-20000"}})
    assert cfg.sip.media_host == "127.0.0.1" and tuple(cfg.sip.rtp_ports) == (10000, 20000)
    assert config_from_dict({"sip": {"media_address": "127.0.0.5"}}).sip.media_host == "127.0.0.5"
    with pytest.raises(ConfigError, match=r"sip\.media_address: not an IP address"):
        config_from_dict({"sip": {"media_address": "media.example.com"}})
