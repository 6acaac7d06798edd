"""The engine with a foreign SIP stack as the caller, and bad input: a flow
file that does not load, a flow that raises, a config with a bad key."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

import baresip as baresip_mod
from engine_proc import REPO, Engine, base_config, render_toml
from simphones import tones
from sipua import UA
from test_engine_calls import agents_cfg, tail_frequency


@pytest.mark.sip
@pytest.mark.skipif(not baresip_mod.available(), reason="baresip is not installed (Debian baresip-core)")
def test_baresip_caller_reaches_an_agent(ports, workdir, prompts_dir):
    ctrl_port = ports()
    sip_port = ports.block(2)  # baresip takes sip_port + 1 for SIP/TLS
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua:
        agent_rec = workdir / "agent.wav"
        agent_ua.request("auto_answer", user="*", after=0.3, code=200, tone=880,
                         record=str(agent_rec))
        cfg = base_config(ports, workdir, prompts_dir, agents=agents_cfg(("alice", agent_ua)))
        with Engine(workdir, cfg) as engine, \
                baresip_mod.Baresip(workdir / "baresip", sip_port, ctrl_port, tone=600,
                                    lifetime=40) as bs:
            bs.start(engine.number("100"))
            bs.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(1.0)
            bs.send_dtmf("2")
            incoming = agent_ua.wait_event({"ev": "incoming"}, timeout=20)
            assert incoming["headers"]["X-Sipacd-Var-menu"] == "2"  # RFC 4733 from baresip
            agent_ua.wait_state(incoming["call"], "CONFIRMED")
            time.sleep(3.0)
            bs.hangup()
            agent_ua.wait_state(incoming["call"], "DISCONNECTED", timeout=10)
            agent_ua.wait_event({"ev": "recorded"}, timeout=10)
            assert abs(tail_frequency(agent_rec) - 600) < 15, "agent did not hear baresip"
            assert engine.wait_metric("sipacd_queue_answered_total", 1, queue="support") == 1
        # baresip's dump is complete once it has exited.
        assert abs(tail_frequency(bs.received_wav()) - 880) < 15


BROKEN_FLOW = "async def flow(call):\n    await call.answer()\n    x = (\n"
RAISING_FLOW = "async def flow(call):\n    await call.answer()\n    raise RuntimeError('boom')\n"


@pytest.mark.sip
def test_broken_and_raising_flows_get_the_fallback_and_the_engine_keeps_answering(
        ports, workdir, prompts_dir):
    flows = workdir / "flows"
    flows.mkdir()
    (flows / "broken.py").write_text(BROKEN_FLOW)
    (flows / "raising.py").write_text(RAISING_FLOW)
    (flows / "welcome.py").write_text((REPO / "ivrflows" / "welcome.py").read_text())
    cfg = base_config(ports, workdir, prompts_dir, flows={"dir": str(flows)},
                      routes=[{"number": "200", "flow": "broken"},
                              {"number": "300", "flow": "raising"},
                              {"number": "100", "flow": "welcome", "queue": "support"}])
    with UA(ports(), log_dir=workdir, name="caller") as caller, Engine(workdir, cfg) as engine:
        for i, number in enumerate(("200", "300")):
            rec = workdir / f"c{i}.wav"
            caller.request("call", call=f"c{i}", to=engine.number(number), record=str(rec))
            # The apology is played, then the engine hangs up.
            caller.wait_state(f"c{i}", "CONFIRMED")
            caller.wait_state(f"c{i}", "DISCONNECTED", timeout=15)
            caller.wait_event({"ev": "recorded", "call": f"c{i}"})
            assert tones.rms(rec) > 0.01, "the caller heard nothing (no fallback prompt)"
        assert engine.wait_metric("sipacd_flow_errors_total", 1, flow="broken") == 1
        assert engine.metric("sipacd_flow_errors_total", flow="raising") == 1
        load_errors = [e for e in engine.log_events() if e.get("event") == "flow failed to load"]
        assert load_errors and load_errors[0]["line"] == 3 and "broken.py" in load_errors[0]["file"]
        raised = [e for e in engine.log_events() if e.get("event") == "flow raised"]
        assert raised and "RuntimeError: boom" in raised[0].get("exception", "")
        assert raised[0]["call_id"]
        # Still answering.
        caller.request("call", call="after", to=engine.number("100"))
        caller.wait_state("after", "CONFIRMED")


def _sipacd(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sipagent", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_bad_config_is_refused_naming_the_key(tmp_path):
    cfg = {"sip": {"port": 5999}, "queues": {"support": {"ring_timeout": -3}},
           "agents": {"alice": {"uri": "sip:alice@127.0.0.1:5998", "queues": ["nosuch"]}}}
    path = tmp_path / "bad.toml"
    path.write_text(render_toml(cfg))
    for command in ("check", "run"):
        res = _sipacd(command, "-c", str(path), cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert "queues.support.ring_timeout" in res.stderr and "> 0" in res.stderr, res.stderr


def test_check_reports_a_flow_that_does_not_import(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.py").write_text(BROKEN_FLOW)
    path = tmp_path / "sipacd.toml"
    path.write_text(render_toml({"flows": {"dir": str(flows)},
                                 "routes": [{"number": "1", "flow": "broken"}]}))
    res = _sipacd("check", "-c", str(path), cwd=tmp_path)
    assert res.returncode == 2
    assert "broken.py:3" in res.stderr and "SyntaxError" in res.stderr, res.stderr
