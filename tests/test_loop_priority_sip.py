"""An engine configured with ``sip.loop_priority = "realtime"``: its loop
thread (the process's main thread) runs SCHED_RR, its audio and writer
threads stay ordinary, and a call still goes through the queue to an agent."""
from __future__ import annotations

import os

import pytest

from engine_proc import Engine, call_an_agent, one_agent_config
from sipua import UA
from test_loop_priority import _may_raise, scheduling

pytestmark = pytest.mark.sip


def _policy(pid: int, tid: int) -> int:
    return scheduling(open(f"/proc/{pid}/task/{tid}/stat").read())[0]


def test_a_realtime_loop_thread_and_ordinary_media_threads(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agent") as agent_ua, \
         UA(ports(), log_dir=workdir, name="caller") as caller:
        cfg = one_agent_config(ports, workdir, prompts_dir, agent_ua,
                               sip={"loop_priority": "realtime"})
        with Engine(workdir, cfg) as engine:
            pid = engine.proc.pid
            others = {int(t) for t in os.listdir(f"/proc/{pid}/task")} - {pid}
            assert others, "pjmedia's threads and the event log's writer exist"
            expected = os.SCHED_RR if _may_raise() else os.SCHED_OTHER
            assert _policy(pid, pid) == expected
            assert {_policy(pid, t) for t in others} == {os.SCHED_OTHER}
            agent_ua.request("auto_answer", user="*", after=0.3, code=200, tone=880)
            agent_call = call_an_agent(engine, caller, agent_ua, "c1")
            assert engine.wait_metric("sipacd_queue_answered_total", 1, queue="support") == 1
            caller.request("hangup", call="c1")
            agent_ua.wait_state(agent_call, "DISCONNECTED", timeout=10)
            # Threads the loop started since (workers of the default executor) are ordinary too.
            later = {int(t) for t in os.listdir(f"/proc/{pid}/task")} - {pid}
            assert {_policy(pid, t) for t in later} == {os.SCHED_OTHER}
            assert engine.stop() == 0, engine.log_tail()
