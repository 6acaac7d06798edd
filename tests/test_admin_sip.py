"""Over real SIP on 127.0.0.1: an agent added through the admin API while the
engine runs gets the next queue call (no restart), and while its phone
rings the screen pop shows the caller's IVR choice and the flow's data.  Its
keypad number and PIN work at once, and it is still there after a restart."""
from __future__ import annotations

import time

import pytest

from engine_proc import Engine
from sipua import UA
from test_agent_keypad import dial
from test_queue_behaviour import agent_state, api, config, wait_until

pytestmark = pytest.mark.sip

ADMIN_TOKEN = "admin-token-0123456789"
# One key (1 or 2), then the queue with the choice as the flow's data.
CHOOSE_THEN_QUEUE = (
    "async def flow(call):\n"
    "    await call.answer()\n"
    "    choice = await call.gather(None, max_digits=1, timeout=8.0, valid='1|2')\n"
    "    await call.enqueue('support', data={'choice': choice})\n")


def test_an_agent_added_at_run_time_gets_the_next_call(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="zed", after=1.5)
        cfg = config(ports, workdir, prompts_dir, {}, {"support": {}},
                     features={"digit_timeout": 4})
        (workdir / "flows" / "choose.py").write_text(CHOOSE_THEN_QUEUE)
        cfg["routes"] = [{"number": "100", "flow": "choose", "queue": "support"}]
        cfg["http"]["tokens"]["ops"] = {"role": "admin", "token": ADMIN_TOKEN}
        with Engine(workdir, cfg) as engine:
            status, body = api(engine, "POST", "/api/admin/agents", token=ADMIN_TOKEN,
                               body={"agent": "zed", "uri": phones.uri("zed"),
                                     "queues": {"support": 0}, "auto_login": False,
                                     "number": "2001", "pin": "2468"})
            assert status == 201, body
            # Its keypad number and PIN work at once: zed logs in from another phone.
            dial(phones, engine, "*71", "2001#2468#", "k1")
            assert agent_state(engine, "zed") == "available"
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_event({"ev": "media", "call": "c1"})
            caller.request("dtmf", call="c1", digits="2")
            ring = phones.wait_event({"ev": "incoming", "user": "zed"}, timeout=10)
            call_id = ring["headers"]["X-Sipacd-Call-Id"]
            status, pop = api(engine, "GET", f"/api/calls/{call_id}/pop", token=ADMIN_TOKEN)
            assert status == 200, pop
            assert pop["ivr"] == [{"prompt": None, "digits": "2"}]
            assert pop["data"] == {"choice": "2"} and pop["queue"] == "support"
            status, agents = api(engine, "GET", "/api/agents", token=ADMIN_TOKEN)
            zed = next(a for a in agents["agents"] if a["agent"] == "zed")
            assert zed["ringing"]["call_id"] == call_id, zed
            phones.wait_state(ring["call"], "CONFIRMED")
            wait_until(lambda: api(engine, "GET", "/api/calls", token=ADMIN_TOKEN)[1]["calls"],
                       5, "the conversation")
            time.sleep(0.3)
            status, agents = api(engine, "GET", "/api/agents", token=ADMIN_TOKEN)
            zed = next(a for a in agents["agents"] if a["agent"] == "zed")
            assert zed["state"] == "busy" and zed["call"]["call_id"] == call_id, zed
            assert zed["call"]["talk_seconds"] > 0 and zed["call"]["on_hold"] is False
            caller.request("hangup", call="c1")
            phones.wait_state(ring["call"], "DISCONNECTED", timeout=5)
            engine.assert_settled()
            status, agents = api(engine, "GET", "/api/agents", token=ADMIN_TOKEN)
            zed = next(a for a in agents["agents"] if a["agent"] == "zed")
            assert zed["handled_today"] == 1 and zed["missed_today"] == 0
        # Kept in people.sqlite3: after a restart on the same file zed is back, logged in.
        with Engine(workdir, cfg) as engine:
            status, agents = api(engine, "GET", "/api/agents", token=ADMIN_TOKEN)
            assert [a["agent"] for a in agents["agents"]] == ["zed"]
