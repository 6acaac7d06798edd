"""What a caller hears and what agents get, over real SIP on 127.0.0.1:
announcements, exit key, overflow, queue full, ring-all, auto-pause,
callbacks (in queue and from the web), wrap-up, agent control by API."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from engine_proc import Engine, base_config
from sipua import UA

pytestmark = pytest.mark.sip

TOKEN = "supervisor-token-0123456789"
AGENT_TOKEN = "alice-token-0123456789"
TOKENS = {"boss": {"role": "supervisor", "token": TOKEN},
          "alice": {"role": "agent", "token": AGENT_TOKEN, "agent": "alice"}}

# Callers go straight into the queue, so waits are the queue's alone.
QUEUE_NOW = "async def flow(call):\n    await call.answer()\n" \
            "    outcome = await call.enqueue(call.vars.get('queue', 'support'))\n" \
            "    call.vars['outcome'] = outcome.result\n"
GOODBYE = "async def flow(call):\n    await call.play('goodbye')\n    await call.hangup()\n"


def flows_dir(workdir):
    d = workdir / "flows"
    d.mkdir(exist_ok=True)
    (d / "queue_now.py").write_text(QUEUE_NOW)
    (d / "goodbye_flow.py").write_text(GOODBYE)
    return str(d)


def config(ports, workdir, prompts_dir, agents: dict, queues: dict, **extra):
    cfg = base_config(ports, workdir, prompts_dir, flows={"dir": flows_dir(workdir)},
                      routes=[{"number": "100", "flow": "queue_now", "queue": "support"}],
                      agents=agents, **extra)
    cfg["queues"] = {name: {"service_levels": [20], **q} for name, q in queues.items()}
    cfg["http"]["tokens"] = {k: t for k, t in TOKENS.items() if t.get("agent", "alice") in agents
                             or "agent" not in t}
    return cfg


def api(engine, method: str, path: str, body=None, token=TOKEN):
    req = urllib.request.Request(f"http://127.0.0.1:{engine.http_port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def agent_state(engine, agent_id: str) -> str:
    status, body = api(engine, "GET", "/api/agents")
    assert status == 200, body
    return next(a["state"] for a in body["agents"] if a["agent"] == agent_id)


def wait_until(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def logged(engine, event: str) -> list[dict]:
    return [e for e in engine.log_events() if e.get("event") == event]


def test_announcements_in_order(ports, workdir, prompts_dir):
    queues = {"support": {"announce_first": "all-busy", "announce_position_every": 2,
                          "periodic_prompts": ["connecting"], "periodic_every": 7}}
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            Engine(workdir, config(ports, workdir, prompts_dir, {}, queues)) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        wait_until(lambda: len(logged(engine, "queue announcement")) >= 3, 25, "3 announcements")
        said = [e["what"] for e in logged(engine, "queue announcement")]
        assert said[0] == "all-busy"
        assert said[1].startswith("You are caller number 1.")
        assert "connecting" in said[2:]
        # Position 1 does not change, so it is announced once only.
        assert sum(s.startswith("You are caller") for s in said) == 1


def test_exit_key_leaves_to_the_configured_flow(ports, workdir, prompts_dir):
    queues = {"support": {"exit_key": "9", "exit_flow": "goodbye_flow"}}
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            Engine(workdir, config(ports, workdir, prompts_dir, {}, queues)) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
        caller.request("dtmf", call="c1", digits="9")
        caller.wait_state("c1", "DISCONNECTED", timeout=15)
        assert engine.wait_metric("sipacd_queue_exited_total", 1, queue="support",
                                  reason="exit_key") == 1
        assert engine.metric("sipacd_queue_abandoned_total", queue="support") == 0
        assert logged(engine, "queue exit target")[0]["target"] == "flow:goodbye_flow"


def test_max_wait_overflows_to_another_queue(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        agent_ua.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        agents = {"bob": {"uri": agent_ua.uri("bob"), "queues": ["overflow"]}}
        queues = {"support": {"max_wait": 2, "on_timeout": "queue:overflow"}, "overflow": {}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
            incoming = agent_ua.wait_event({"ev": "incoming"}, timeout=15)
            assert incoming["headers"]["X-Sipacd-Queue"] == "overflow"
            assert engine.wait_metric("sipacd_queue_exited_total", 1, queue="support",
                                      reason="timeout") == 1
            assert engine.wait_metric("sipacd_queue_answered_total", 1, queue="overflow") == 1


def test_queue_full_sends_the_caller_to_its_target(ports, workdir, prompts_dir):
    queues = {"support": {"max_len": 1, "on_full": "hangup:goodbye"}}
    with UA(ports(), log_dir=workdir, name="caller") as caller, \
            Engine(workdir, config(ports, workdir, prompts_dir, {}, queues)) as engine:
        caller.request("call", call="c1", to=engine.number("100"))
        caller.wait_state("c1", "CONFIRMED")
        engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
        caller.request("call", call="c2", to=engine.number("100"))
        caller.wait_state("c2", "CONFIRMED")
        caller.wait_state("c2", "DISCONNECTED", timeout=15)  # goodbye, then hang-up
        assert engine.wait_metric("sipacd_queue_exited_total", 1, queue="support",
                                  reason="full") == 1
        assert not caller.events({"ev": "state", "call": "c1", "state": "DISCONNECTED"})


def test_ring_all_two_agents_answering_together_only_one_is_bridged(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="bob") as bob, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        for ua in (alice, bob):
            ua.request("auto_answer", user="*", after=0.5, code=200, tone=880)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]},
                  "bob": {"uri": bob.uri("bob"), "queues": ["support"]}}
        queues = {"support": {"strategy": "ring_all"}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
            a = alice.wait_event({"ev": "incoming"}, timeout=15)
            b = bob.wait_event({"ev": "incoming"}, timeout=15)
            time.sleep(4.0)
            up = [ua for ua, inc in ((alice, a), (bob, b))
                  if not ua.events({"ev": "state", "call": inc["call"], "state": "DISCONNECTED"})]
            assert len(up) == 1, "exactly one agent leg must stay up"
            assert engine.metric("sipacd_queue_answered_total", queue="support") == 1
            assert len(logged(engine, "caller connected to agent")) == 1


def test_no_answer_auto_pauses_the_agent(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", code=None)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]}}
        queues = {"support": {"ring_timeout": 2, "autopause_after": 1}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            inc = alice.wait_event({"ev": "incoming"}, timeout=15)
            alice.wait_state(inc["call"], "DISCONNECTED", timeout=10)
            wait_until(lambda: agent_state(engine, "alice") == "paused", 5, "alice paused")
            # Paused agents are not offered calls: nothing rings again.
            time.sleep(3)
            assert len(alice.events({"ev": "incoming"})) == 1


def test_agent_pause_and_ready_through_the_api(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", after=0.2, code=200)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, {"support": {}})) as engine:
            # Roles: an agent's token controls only that agent; none is no entry.
            assert api(engine, "POST", "/api/agents/alice/pause", {"reason": "lunch"},
                       token="wrong-token-0123456789")[0] == 401
            status, body = api(engine, "POST", "/api/agents/alice/pause", {"reason": "lunch"},
                               token=AGENT_TOKEN)
            assert status == 200 and body["state"] == "paused" and body["pause_reason"] == "lunch"
            assert api(engine, "GET", "/api/queues", token=AGENT_TOKEN)[0] == 403
            assert api(engine, "POST", "/api/agents/alice/fly")[0] == 404
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            time.sleep(1.5)
            assert not alice.events({"ev": "incoming"})
            assert api(engine, "POST", "/api/agents/alice/ready")[1]["state"] in ("available", "offered")
            inc = alice.wait_event({"ev": "incoming"}, timeout=10)
            alice.wait_state(inc["call"], "CONFIRMED")
            status, body = api(engine, "GET", "/api/agents")
            assert body["agents"][0]["call"]["queue"] == "support"


def test_wrap_up_is_respected_before_the_next_offer(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        alice.request("auto_answer", user="*", after=0.2, code=200, hangup_after=1.5)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]}}
        queues = {"support": {"wrap_up": 4}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            caller.request("call", call="c1", to=engine.number("100"))
            caller.request("call", call="c2", to=engine.number("100"))
            first = alice.wait_event({"ev": "incoming"}, timeout=15)
            alice.wait_state(first["call"], "DISCONNECTED", timeout=10)
            ended = time.monotonic()
            assert wait_until(lambda: agent_state(engine, "alice") == "wrap_up", 3, "wrap-up")
            alice.wait_event({"ev": "incoming"}, timeout=15)
            gap = time.monotonic() - ended
            assert gap >= 3.5, f"offered again {gap:.1f} s after the call, wrap_up is 4 s"


def test_callback_in_queue_round_trip(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        customer.request("auto_answer", user="*", after=0.3, code=200, tone=440)
        alice.request("auto_answer", user="*", code=None)  # busy at first: rings forever
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"], "auto_login": False}}
        queues = {"support": {"callback_key": "5",
                              "callback_uri": f"sip:{{number}}@127.0.0.1:{customer.port}"}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            customer.request("call", call="c1", to=engine.number("100"), from_user="5550123")
            customer.wait_state("c1", "CONFIRMED")
            engine.wait_metric("sipacd_queue_waiting_calls", 1, queue="support")
            customer.request("dtmf", call="c1", digits="5")
            customer.wait_state("c1", "DISCONNECTED", timeout=20)  # confirmation, then bye
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="requested") == 1
            assert engine.metric("sipacd_queue_abandoned_total", queue="support") == 0
            # The entry kept its place; an agent logs in and gets it, agent first.
            alice.request("auto_answer", user="*", after=0.2, code=200, tone=880)
            api(engine, "POST", "/api/agents/alice/login")
            api(engine, "POST", "/api/agents/alice/ready")
            inc = alice.wait_event({"ev": "incoming"}, timeout=15)
            assert inc["headers"]["X-Sipacd-Callback"] == "5550123"
            back = customer.wait_event({"ev": "incoming", "user": "5550123"}, timeout=15)
            customer.wait_state(back["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="connected") == 1


def test_web_callback_request(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="alice") as alice, \
            UA(ports(), log_dir=workdir, name="customer") as customer:
        customer.request("auto_answer", user="*", after=0.3, code=200)
        alice.request("auto_answer", user="*", after=0.2, code=200)
        agents = {"alice": {"uri": alice.uri("alice"), "queues": ["support"]}}
        queues = {"support": {"callback_uri": f"sip:{{number}}@127.0.0.1:{customer.port}"}}
        with Engine(workdir, config(ports, workdir, prompts_dir, agents, queues)) as engine:
            assert api(engine, "POST", "/api/callbacks", {"number": "x", "queue": "support"})[0] == 400
            assert api(engine, "POST", "/api/callbacks", {"number": "5550199", "queue": "nope"})[0] == 400
            status, body = api(engine, "POST", "/api/callbacks",
                               {"number": "5550199", "queue": "support"})
            assert status == 202, body
            alice.wait_event({"ev": "incoming"}, timeout=15)
            back = customer.wait_event({"ev": "incoming", "user": "5550199"}, timeout=15)
            customer.wait_state(back["call"], "CONFIRMED")
            assert engine.wait_metric("sipacd_queue_callbacks_total", 1, queue="support",
                                      result="connected") == 1
