"""An engine that listens on one address of a machine that has several
names that address in its Contact and Via, so that the far end's ACK and
BYE come back to the socket that listens.

pjsip used to ask the routing table, per call, for the interface toward
the destination; on a multi-homed machine that may be another address than
the one the SIP socket is bound to (scripts/pjsua2-bound-interface.patch).
Here the engine listens on 127.0.0.2 and the phones on 127.0.0.1: the
route to 127.0.0.1 leaves from 127.0.0.1, where the engine does not listen.
"""
from __future__ import annotations

import time

import pytest

from engine_proc import Engine, call_an_agent, one_agent_config
from sipua import UA

pytestmark = pytest.mark.sip


def test_both_ends_reach_an_engine_bound_to_one_address(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua, \
         UA(ports(), log_dir=workdir, name="caller") as caller:
        cfg = one_agent_config(ports, workdir, prompts_dir, agent_ua, sip={"listen": "127.0.0.2"})
        with Engine(workdir, cfg) as engine:
            agent_ua.request("auto_answer", user="*", after=0.3, code=200, tone=880)
            # Call 1: the agent's BYE goes to the Contact of the engine's
            # INVITE.  Call 2: the caller's goes to the Contact of the
            # engine's 200 OK.  Either way the engine must hear it and let
            # the other side go.
            for n, who_hangs_up in ((1, "agent"), (2, "caller")):
                call = f"c{n}"
                agent_call = call_an_agent(engine, caller, agent_ua, call)
                # Long enough for a lost ACK to show: the engine would resend its 200 OK.
                time.sleep(2.0)
                if who_hangs_up == "agent":
                    agent_ua.request("hangup", call=agent_call)
                    caller.wait_state(call, "DISCONNECTED", timeout=10)
                else:
                    caller.request("hangup", call=call)
                    agent_ua.wait_state(agent_call, "DISCONNECTED", timeout=10)
                assert engine.wait_metric("sipacd_queue_answered_total", n,
                                          queue="support") == n
            assert engine.metric("sipacd_queue_abandoned_total", queue="support") == 0
            assert engine.stop() == 0, engine.log_tail()
