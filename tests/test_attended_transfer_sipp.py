"""A third-party phone does an attended transfer with Replaces against the
real engine: SIPp (tests/sipp/attended_transfer_*.xml) is the agent's phone.

Two SIPp processes joined by 3PCC extended mode play the phone's two lines
(SIPp ties each scenario instance to one Call-ID): the master answers the
engine's offer of a queue call, holds the caller, has the slave place the
consultation call to the engine (From alice, to the target's number) and,
told its Call-ID and tags, REFERs the caller with
``Refer-To: <sip:5550100@engine?Replaces=...>``.  Both scenarios expect what
a phone expects: 202, NOTIFY 100 then 200, and a BYE on each dialog.

The caller and the target are simulated phones; the caller records, and the
target plays a 700 Hz tone, so the recording says whom the caller reached.
"""
from __future__ import annotations

import time

import pytest

from engine_proc import Engine
from simphones.tones import write_tone
from sippkit import HAVE_SIPP, NO_SIPP, Sipp, wait_listening
from sipua import UA
from test_call_operations import ALICE, CALLER, CAROL, MUSIC, hears, level, rows
from test_queue_behaviour import agent_state, config, wait_until

pytestmark = [pytest.mark.sip, pytest.mark.skipif(not HAVE_SIPP, reason=NO_SIPP)]

TARGET = "5550100"


def twins_cfg(workdir, name: str, master: int, slave: int):
    """Each SIPp instance reads its own copy of the 3PCC extended address file."""
    path = workdir / f"twins_{name}.cfg"
    path.write_text(f"m;127.0.0.1:{master}\ns1;127.0.0.1:{slave}\n")
    return str(path)


def lost_teardown_race(consult: Sipp) -> bool:
    """The engine ends both of the phone's dialogs at once.  If the agent
    line's SIPp ends its scenario first, its twin (the consultation line)
    aborts as its peer goes away ("One of the twin instances has ended",
    SIGABRT), even though it received the engine's BYE for the consultation
    dialog: SIPp's teardown race between its own two processes, not the
    engine's.  Anything else stays a failure."""
    messages = consult.messages_path.read_text(errors="replace") \
        if consult.messages_path.is_file() else ""
    errors = consult.errors_path.read_text(errors="replace") \
        if consult.errors_path.is_file() else ""
    return "One of the twin instances has ended" in errors and "\nBYE sip:" in messages


def test_sipp_attended_transfer_with_replaces(ports, workdir, prompts_dir):
    music = workdir / "music.wav"
    write_tone(music, MUSIC, 2.0)
    line1, line2, twin_m, twin_s = ports(), ports(), ports(), ports()
    with UA(ports(), log_dir=workdir, name="target") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user=TARGET, after=0.3, tone=CAROL)
        agents = {"alice": {"uri": f"sip:alice@127.0.0.1:{line1}", "queues": ["support"]}}
        cfg = config(ports, workdir, prompts_dir, agents,
                     {"support": {"moh": str(music), "wrap_up": 30}})
        cfg["transfer"] = {"number_uri": f"sip:{{number}}@127.0.0.1:{phones.port}",
                           "ring_timeout": 5}
        rec = str(workdir / "caller.wav")
        with Engine(workdir, cfg) as engine:
            common = ("-s", "alice", "-key", "target", TARGET, "-i", "127.0.0.1",
                      "-m", "1", "-rtp_echo")
            # The slave first: the master connects to it as it starts.
            with Sipp("consult", workdir, "attended_transfer_consult.xml", engine.uri_base,
                      "-slave", "s1", "-slave_cfg", twins_cfg(workdir, "s1", twin_m, twin_s),
                      "-p", str(line2), "-mp", str(ports.block(4)), *common) as consult:
                wait_listening(twin_s, consult)
                with Sipp("agent", workdir, "attended_transfer_agent.xml", engine.uri_base,
                          "-master", "m", "-slave_cfg", twins_cfg(workdir, "m", twin_m, twin_s),
                          "-p", str(line1), "-mp", str(ports.block(4)), *common) as agent:
                    wait_listening(twin_m, agent)
                    caller.request("call", call="c1", to=engine.number("100"), tone=CALLER,
                                   record=rec)
                    start = caller.wait_event({"ev": "media", "call": "c1"})["at"]
                    target = phones.wait_event({"ev": "incoming", "user": TARGET},
                                               timeout=30)["call"]
                    consulting = time.monotonic()     # the hand-over comes 1.8 s later at least
                    wait_until(lambda: agent_state(engine, "alice") == "wrap_up"
                               or agent.failing() or consult.failing(), 30, "the hand-over")
                    handed = time.monotonic()
                    assert agent_state(engine, "alice") == "wrap_up", \
                        f"{agent.report()}\n{consult.report()}"
                    codes = (agent.wait(20), consult.wait(20))
                    finished = [agent, consult]
                    if codes == (0, -6) and lost_teardown_race(consult):
                        codes, finished = (0, 0), [agent]
                    assert codes == (0, 0), f"{agent.report()}\n{consult.report()}"
                    for sipp in finished:
                        stats = sipp.stats()
                        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) \
                            == ("1", "0"), sipp.report()
            time.sleep(max(0.0, handed + 2.5 - time.monotonic()))
            caller.request("hangup", call="c1")
            phones.wait_state(target, "DISCONNECTED", timeout=5)
            caller.wait_event({"ev": "recorded", "call": "c1"})
            # Held by the phone's re-INVITE while it consults, then handed to the target.
            # (Unheld, the caller would hear its own tone echoed by SIPp, loud.)
            held = {f: level(rec, f, start, consulting + 0.4, consulting + 1.4)
                    for f in (MUSIC, CALLER, CAROL)}
            assert held[MUSIC] > 0.2 > max(held[CALLER], held[CAROL]), held
            assert hears(rec, start, handed + 0.8, handed + 2.3, CAROL, ALICE, MUSIC) == {
                CAROL: True, ALICE: False, MUSIC: False}
            log = [(k, a, r) for k, _, a, r, _, _ in rows(engine)]
            assert any(k == "HOLD" and a == "alice" for k, a, _ in log), log
            assert ("TRANSFER", "alice", "attended") in log, log
            assert agent_state(engine, "alice") == "wrap_up"
