"""Hunting over real SIP on 127.0.0.1: a caller is offered to every free agent
before one that failed it rings again (acdcore/reference.py, "Hunting").

Three agents in linear order: the first phone answers 486 Busy, the second
rings and never answers, the third answers.  Before the fix the caller
bounced between the first two for as long as it waited."""
from __future__ import annotations

import sqlite3
import time

import pytest

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import config, logged, wait_until

from sipagent.store.eventlog import event_log_path

pytestmark = pytest.mark.sip

RING_TIMEOUT = 2


def offer_rows(engine_data_dir, call_id: str) -> list[tuple]:
    """The call's OFFER / RINGNOANSWER / CONNECT rows of the queue event log, in order."""
    path = event_log_path(engine_data_dir)
    if not path.is_file():
        return []
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT kind, agent, reason FROM event WHERE call_id = ? AND kind IN "
            "('OFFER', 'RINGNOANSWER', 'CONNECT') ORDER BY id", (call_id,)).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("autopause_after", [0, 2])
def test_busy_and_silent_phones_do_not_hide_the_agent_who_answers(
        ports, workdir, prompts_dir, autopause_after):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="busy", code=486)
        phones.request("auto_answer", user="silent", code=None)      # rings forever
        phones.request("auto_answer", user="good", after=0.2, code=200, tone=880)
        agents = {name: {"uri": phones.uri(name), "queues": ["support"]}
                  for name in ("busy", "silent", "good")}
        queues = {"support": {"strategy": "linear", "ring_timeout": RING_TIMEOUT,
                              "autopause_after": autopause_after}}
        cfg = config(ports, workdir, prompts_dir, agents, queues)
        with Engine(workdir, cfg) as engine:
            started = time.monotonic()
            caller.request("call", call="c1", to=engine.number("100"))
            caller.wait_state("c1", "CONFIRMED")
            # First round: busy (486 at once), silent (rings out), good.  Two
            # rounds at most: six offers, ~2 ring timeouts plus set-up.
            inc = phones.wait_event({"ev": "incoming", "user": "good"},
                                    timeout=2 * 2 * RING_TIMEOUT + 10)
            phones.wait_state(inc["call"], "CONFIRMED", timeout=10)
            connected = wait_until(lambda: logged(engine, "caller connected to agent"), 10,
                                   "the caller bridged")
            assert [e["agent"] for e in connected] == ["good"]
            assert time.monotonic() - started < 2 * 2 * RING_TIMEOUT + 10
            call_id = connected[0]["call_id"]
            rows = wait_until(lambda: [r for r in offer_rows(cfg["data"]["dir"], call_id)
                                       if r[0] == "CONNECT"] and
                              offer_rows(cfg["data"]["dir"], call_id), 10, "event log rows")
            assert rows == [("OFFER", "busy", None), ("RINGNOANSWER", "busy", "busy"),
                            ("OFFER", "silent", None),
                            ("RINGNOANSWER", "silent", "ring_timeout"),
                            ("OFFER", "good", None), ("CONNECT", "good", None)], rows
            # Each phone rang once: nobody was offered the call twice.
            users = [e["user"] for e in phones.events({"ev": "incoming"})]
            assert sorted(users) == ["busy", "good", "silent"], users
