"""The vertical slice over real SIP/RTP on 127.0.0.1: a caller dials the
engine, picks a key in the IVR, waits in the queue and talks to an agent.

The engine runs as its own process (`sipacd run`), callers and agents are
pjsua2 UAs in other processes, so every byte crosses real sockets.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

from engine_proc import Engine, base_config
from simphones.tones import read_wav
from sipua import UA

pytestmark = pytest.mark.sip


def tail_frequency(path, seconds: float = 2.0) -> float:
    """Dominant frequency of the last `seconds` of a recording (what the
    caller heard once bridged, after prompts and hold music)."""
    samples, rate = read_wav(path)
    seg = samples[-int(seconds * rate):]
    assert len(seg) > rate // 2, f"recording {path} is too short: {len(samples) / rate:.2f} s"
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    return float(np.fft.rfftfreq(len(seg), 1.0 / rate)[spectrum.argmax()])


def agents_cfg(*pairs):
    """[(agent_id, ua)] -> the [agents] table, each at its UA's port."""
    return {aid: {"uri": ua.uri(aid), "queues": ["support"]} for aid, ua in pairs}


@pytest.mark.parametrize("method", ["rfc2833", "info"])
def test_caller_gets_through_ivr_and_queue_to_an_agent(ports, workdir, prompts_dir, method):
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua, \
         UA(ports(), log_dir=workdir, name="caller") as caller:
        cfg = base_config(ports, workdir, prompts_dir, agents=agents_cfg(("alice", agent_ua)))
        with Engine(workdir, cfg) as engine:
            agent_rec, caller_rec = workdir / "agent.wav", workdir / "caller.wav"
            agent_ua.request("auto_answer", user="*", after=0.5, code=200, tone=880,
                             record=str(agent_rec))
            caller.request("call", call="c1", to=engine.number("100"), from_user="5551234",
                           tone=440, record=str(caller_rec))
            caller.wait_state("c1", "CONFIRMED")
            time.sleep(1.0)
            caller.request("dtmf", call="c1", digits="2", method=method)

            incoming = agent_ua.wait_event({"ev": "incoming"}, timeout=20)
            # Caller data travels to the agent for screen pop; the digit proves
            # the IVR's gather received it.
            assert incoming["headers"]["X-Sipacd-Caller"] == "5551234"
            assert incoming["headers"]["X-Sipacd-Var-menu"] == "2"
            agent_ua.wait_state(incoming["call"], "CONFIRMED")
            time.sleep(3.0)
            caller.request("hangup", call="c1")
            # Either side hanging up ends both legs.
            agent_ua.wait_state(incoming["call"], "DISCONNECTED", timeout=10)
            agent_ua.wait_event({"ev": "recorded"}, timeout=10)
            caller.wait_event({"ev": "recorded"}, timeout=10)

            assert abs(tail_frequency(agent_rec) - 440) < 15, "agent did not hear the caller"
            assert abs(tail_frequency(caller_rec) - 880) < 15, "caller did not hear the agent"

            assert engine.wait_metric("sipacd_queue_offered_total", 1, queue="support") == 1
            assert engine.metric("sipacd_queue_answered_total", queue="support") == 1
            assert engine.metric("sipacd_queue_abandoned_total", queue="support") == 0
            assert engine.metric("sipacd_queue_answer_wait_seconds_count", queue="support") == 1
            # Answered within a second of queueing, so inside the 5 s bucket.
            assert engine.metric("sipacd_queue_answer_wait_seconds_bucket",
                                 queue="support", le="5.0") == 1
            # One agent serving, one call of ~3 s handled: a caller joining now
            # would wait about one handle time.
            assert 0 < engine.metric("sipacd_queue_expected_wait_seconds", queue="support") < 60
            text = engine.metrics_text()
            assert engine.stop() == 0, engine.log_tail()

    if shutil.which("promtool"):
        res = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30)
        assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), \
            res.stdout + res.stderr


def test_caller_hanging_up_while_waiting_is_an_abandon(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua, \
         UA(ports(), log_dir=workdir, name="caller") as caller:
        agent_ua.request("auto_answer", user="*", code=None)  # rings, never answers
        cfg = base_config(ports, workdir, prompts_dir, agents=agents_cfg(("alice", agent_ua)),
                          queues={"support": {"ring_timeout": 60}})
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"), tone=440)
            caller.wait_state("c1", "CONFIRMED")
            incoming = agent_ua.wait_event({"ev": "incoming"}, timeout=20)
            time.sleep(1.0)
            caller.request("hangup", call="c1")
            # The ringing agent leg is cancelled with the caller.
            agent_ua.wait_state(incoming["call"], "DISCONNECTED", timeout=10)
            assert engine.wait_metric("sipacd_queue_abandoned_total", 1, queue="support") == 1
            assert engine.metric("sipacd_queue_answered_total", queue="support") == 0
            assert engine.metric("sipacd_queue_abandon_wait_seconds_count", queue="support") == 1
            # The agent is free again, not stuck ringing.
            assert engine.wait_metric("sipacd_queue_agents", 1, queue="support",
                                      state="available") == 1


def test_agent_not_answering_passes_the_call_to_the_next_agent(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
         UA(ports(), log_dir=workdir, name="bob") as bob, \
         UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", code=None)
        bob.request("auto_answer", user="*", after=0.3, code=200, tone=880)
        cfg = base_config(ports, workdir, prompts_dir,
                          agents=agents_cfg(("alice", alice), ("bob", bob)),
                          queues={"support": {"strategy": "linear", "ring_timeout": 2}})
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"), tone=440)
            caller.wait_state("c1", "CONFIRMED")
            first = alice.wait_event({"ev": "incoming"}, timeout=20)
            t_offer = time.monotonic()
            alice.wait_state(first["call"], "DISCONNECTED", timeout=10)
            rang_for = time.monotonic() - t_offer
            assert 1.0 < rang_for < 5.0, f"alice rang for {rang_for:.1f} s, ring_timeout is 2 s"
            second = bob.wait_event({"ev": "incoming"}, timeout=10)
            bob.wait_state(second["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_answered_total", 1, queue="support") == 1
            assert engine.metric("sipacd_agent_offers_total", queue="support",
                                 result="ring_timeout") == 1
            caller.request("hangup", call="c1")
            bob.wait_state(second["call"], "DISCONNECTED", timeout=10)


def test_at_capacity_new_invites_get_503_and_the_rest_keeps_working(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="caller") as caller:
        # No agents: callers wait in the queue, one leg each.
        cfg = base_config(ports, workdir, prompts_dir, sip={"max_calls": 2, "retry_after": 17})
        with Engine(workdir, cfg) as engine:
            for c in ("c1", "c2"):
                caller.request("call", call=c, to=engine.number("100"))
                caller.wait_state(c, "CONFIRMED")
            caller.request("call", call="c3", to=engine.number("100"))
            refused = caller.wait_state("c3", "DISCONNECTED")
            assert refused["code"] == 503
            assert engine.wait_metric("sipacd_sip_rejected_total", 1, reason="capacity") == 1
            # The two calls already in are untouched ...
            assert not caller.events({"ev": "state", "call": "c1", "state": "DISCONNECTED"})
            assert engine.wait_metric("sipacd_queue_waiting_calls", 2, timeout=20, queue="support") == 2
            # ... and once one leaves, a new call gets in.
            caller.request("hangup", call="c1")
            caller.wait_state("c1", "DISCONNECTED")
            assert engine.wait_metric("sipacd_active_calls", 1) == 1
            caller.request("call", call="c4", to=engine.number("100"))
            caller.wait_state("c4", "CONFIRMED")


def test_invite_from_a_source_not_allowed_gets_403(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="caller") as caller:
        cfg = base_config(ports, workdir, prompts_dir, trunk={"allow": ["10.99.0.0/16"]})
        with Engine(workdir, cfg) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            assert caller.wait_state("c1", "DISCONNECTED")["code"] == 403
            assert engine.wait_metric("sipacd_sip_rejected_total", 1, reason="forbidden") == 1


def test_sigterm_hangs_up_live_calls_and_exits_zero(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="caller") as caller:
        cfg = base_config(ports, workdir, prompts_dir)
        engine = Engine(workdir, cfg)
        try:
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
        finally:
            code = engine.stop()
        assert code == 0, engine.log_tail()
        caller.wait_state("c1", "DISCONNECTED", timeout=5)
        assert any(e.get("event") == "engine stopped" for e in engine.log_events())
