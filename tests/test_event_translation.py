"""The event log's facts -> the public vocabulary (sipagent/store/public_events.py),
and the stream's numbering and durability on a real SQLite file."""
from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from sipagent.store.event_filter import BadFilter, EventFilter, parse_types
from sipagent.store.event_stream import EventStream
from sipagent.store.eventlog import EventLog, event_log_path
from sipagent.store.public_events import Translator
from sipagent.store.webhook_signature import InvalidWebhook, headers_for, verify


def q(kind, t, call="c1", queue="support", **kw):
    return "queue", {"kind": kind, "t": t, "queue": queue, "call_id": call, **kw}


def a(kind, t, agent="alice", **kw):
    return "agent", {"kind": kind, "t": t, "agent": agent, **kw}


def rec(t, call="c1", **kw):
    return "call", {"call_id": call, "t": t, **kw}


def run(facts, tr=None):
    tr = tr or Translator()
    out = []
    for source, fact in facts:
        out += tr.translate(source, fact)
    return out


def states(events, agent="alice"):
    return [(e.fields["previous"], e.fields["current"], e.fields["reason"]) for e in events
            if e.type == "agent.state_changed" and e.agent == agent]


def test_a_ring_all_call_from_entry_to_wrap_up():
    events = run([
        a("LOGIN", 1.0), a("LOGIN", 1.0, agent="bob"),
        rec(2.0, start=2.0, caller="100", called="500"),
        q("ENTER", 2.1, position=3),
        q("OFFER", 2.2, agent="alice"), q("OFFER", 2.2, agent="bob"),
        q("RINGNOANSWER", 3.0, agent="bob", reason="rejected"),
        q("OFFER", 3.1, agent="bob"),
        q("CONNECT", 4.0, agent="alice", wait=1.9),
        q("RINGNOANSWER", 4.0, agent="bob", reason="answered_elsewhere"),
        rec(4.0, answer=4.0, queue="support", agent="alice", outcome="answered"),
        q("COMPLETE_CALLER", 9.0, agent="alice"),
        rec(9.0, hangup_side="caller"),
        a("WRAPUP_START", 9.0, call_id="c1", queue="support"),
        rec(9.1, end=9.1),
        a("WRAPUP_END", 12.0),
    ])
    types = [e.type for e in events]
    assert types == [
        "agent.state_changed", "agent.state_changed", "call.started", "queue.joined",
        "offer.created", "agent.state_changed", "offer.created", "agent.state_changed",
        "offer.rejected", "agent.state_changed", "offer.created", "agent.state_changed",
        "offer.accepted", "queue.left", "bridge.started", "agent.state_changed",
        "offer.canceled", "agent.state_changed", "call.answered", "bridge.ended",
        "wrapup.started", "agent.state_changed", "call.ended", "wrapup.ended",
        "agent.state_changed"]
    offers = [(e.type, e.agent, e.offer_id) for e in events if e.type.startswith("offer.")]
    assert offers == [("offer.created", "alice", "c1#1"), ("offer.created", "bob", "c1#2"),
                      ("offer.rejected", "bob", "c1#2"), ("offer.created", "bob", "c1#3"),
                      ("offer.accepted", "alice", "c1#1"), ("offer.canceled", "bob", "c1#3")]
    left = next(e for e in events if e.type == "queue.left")
    assert left.fields == {"reason": "answered", "position": None, "original_position": 3,
                           "wait": 1.9}
    assert left.agent == "alice"
    assert states(events) == [(None, "available", "login"), ("available", "offered", "offer"),
                              ("offered", "busy", "answer"), ("busy", "wrap_up", "call_end"),
                              ("wrap_up", "available", "wrap_done")]
    assert states(events, "bob") == [
        (None, "available", "login"), ("available", "offered", "offer"),
        ("offered", "available", "rejected"), ("available", "offered", "offer"),
        ("offered", "available", "answered_elsewhere")]
    ended = next(e for e in events if e.type == "call.ended")
    assert (ended.queue, ended.agent, ended.fields) == (
        "support", "alice", {"outcome": "answered", "hangup_side": "caller"})


def test_queue_left_reasons_and_offers_left_open_at_the_end():
    events = run([
        q("ENTER", 1.0, call="x", position=1), q("ABANDON", 5.0, call="x", wait=4.0, position=1),
        q("ENTER", 1.0, call="y", position=2),
        q("OFFER", 1.5, call="y", agent="alice"),
        q("EXIT", 8.0, call="y", reason="timeout", wait=7.0),
        rec(8.5, call="y", end=8.5, outcome="timeout"),
    ])
    left = [(e.call_id, e.fields["reason"], e.fields["original_position"], e.fields["wait"])
            for e in events if e.type == "queue.left"]
    assert left == [("x", "abandoned", 1, 4.0), ("y", "timeout", 2, 7.0)]
    canceled = [e for e in events if e.type == "offer.canceled"]
    assert [(e.offer_id, e.fields["reason"]) for e in canceled] == [("y#1", "call_ended")]
    assert [e.fields for e in events if e.type == "call.ended"] == [
        {"outcome": "timeout", "hangup_side": None}]


def test_a_pause_asked_for_during_a_call_comes_after_the_wrap_up():
    tr = Translator()
    tr.seed_agent("alice", "available")
    events = run([
        q("OFFER", 1.0, agent="alice"), q("CONNECT", 2.0, agent="alice", wait=1.0),
        a("PAUSE", 3.0, reason="lunch"),                 # pending: no change now
        q("COMPLETE_AGENT", 4.0, agent="alice"),
        a("WRAPUP_START", 4.0, call_id="c1"), a("WRAPUP_END", 4.0, call_id="c1"),
        a("PAUSE", 5.0, reason="coffee"),               # a new reason while paused
        a("UNPAUSE", 6.0), a("LOGOUT", 7.0, reason="shutdown"),
        a("WRAPUP_START", 8.0, call_id="late"),         # logged out: the table has no entry
    ], tr)
    assert states(events) == [
        ("available", "offered", "offer"), ("offered", "busy", "answer"),
        ("busy", "wrap_up", "call_end"), ("wrap_up", "paused", "lunch"),
        ("paused", "paused", "coffee"), ("paused", "available", "ready"),
        ("available", "logged_out", "shutdown")]
    assert [e.type for e in events].count("wrapup.started") == 1
    assert [e.call_id for e in events if e.type.startswith("wrapup.")] == ["c1", "c1"]


def test_transfer_hold_monitor_recording_and_callbacks_map():
    events = run([
        q("HOLD", 1.0, agent="alice"), q("UNHOLD", 2.0, agent="alice", wait=1.0),
        q("MONITOR_START", 3.0, agent="alice", reason="listen",
          data={"supervisor": "sam", "via": "api"}),
        q("MONITOR_MODE", 4.0, agent="alice", reason="barge", data={"supervisor": "sam"}),
        q("MONITOR_END", 5.0, agent="alice", wait=2.0, data={"supervisor": "sam"}),
        q("RECORDING_START", 5.5, agent="alice", reason="demand", data={"recording": "r1"}),
        q("RECORDING_STOP", 5.8, agent="alice", wait=0.3, data={"recording": "r1"}),
        q("TRANSFER", 6.0, agent="alice", reason="blind",
          data={"mode": "blind", "from": "alice", "to": "queue:sales", "origin": "api"}),
        q("TRANSFER_FAILED", 7.0, agent="alice", reason="busy"),
        q("CALLBACK_REQUESTED", 8.0),
    ])
    got = {e.type: e.fields for e in events}
    assert got["call.resumed"] == {"seconds": 1.0}
    assert got["monitor.started"] == {"supervisor": "sam", "mode": "listen", "via": "api"}
    assert got["monitor.mode_changed"]["mode"] == "barge"
    assert got["monitor.ended"] == {"supervisor": "sam", "seconds": 2.0}
    assert got["recording.started"] == {"recording": "r1", "trigger": "demand"}
    assert got["recording.stopped"] == {"recording": "r1", "seconds": 0.3}
    assert got["bridge.ended"]["hangup_side"] == "transfer"
    assert got["transfer.completed"] == {"mode": "blind", "from": "alice", "to": "queue:sales",
                                         "origin": "api"}
    assert got["transfer.failed"] == {"reason": "busy", "to": "queue:sales"}
    assert "callback.requested" in got


def test_type_filters_are_checked():
    assert parse_types(["call.*", "agent.state_changed"]) == {"call.*", "agent.state_changed"}
    for bad in ("call.exploded", "nothing.*", "CALL.*", "call", "*"):
        with pytest.raises(BadFilter):
            parse_types([bad])


def test_signatures_verify_and_a_tampered_body_does_not():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"call.started"}'
    h = headers_for(secret, "node-1", body, timestamp=1_700_000_000)
    assert verify(secret, h, body, now=1_700_000_010) == {"type": "call.started"}
    with pytest.raises(InvalidWebhook):
        verify(secret, h, body.replace(b"started", b"ended"), now=1_700_000_010)
    with pytest.raises(InvalidWebhook):
        verify(secret, h, body, now=1_700_009_000)     # stale: a replay


def test_the_stream_commits_before_it_tells_and_numbers_on_across_a_reopen(tmp_path):
    path = event_log_path(tmp_path)

    async def first_run():
        log = EventLog(path, flush_interval=5.0)     # only the urgent path can be this quick
        stream = EventStream(log, node="n1")
        got: list = []
        seen_committed: list = []

        def subscriber(batch):
            if batch:
                conn = sqlite3.connect(path)
                n = conn.execute("SELECT COUNT(*) FROM stream_event WHERE seq <= ?",
                                 (batch[-1].seq,)).fetchone()[0]
                conn.close()
                seen_committed.append(n == batch[-1].seq)
                got.extend(batch)
        stream.subscribe(subscriber)
        log.agent_event(1.0, "alice", "LOGIN")
        seq = stream.publish("agent.added", agent="zoe", by="admin", before=None,
                             after={"agent": "zoe"})
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(log.close)
        stream.close()
        return seq, got, seen_committed

    seq, got, committed = asyncio.run(first_run())
    assert seq == 2 and [i.seq for i in got] == [1, 2] and all(committed)
    assert json.loads(got[0].body)["current"] == "available"
    log = EventLog(path)
    stream = EventStream(log, node="n1")
    # seq goes on; the agent's state was seeded from the file
    log.agent_event(2.0, "alice", "PAUSE", reason="lunch")
    log.close()
    items = stream.read_after(0, 10)
    stream.close()
    assert [i.seq for i in items] == [1, 2, 3]
    last = items[-1].as_dict()
    assert (last["previous"], last["current"], last["reason"]) == ("available", "paused", "lunch")
    assert last["node"] == "n1" and last["schema"] == 1 and last["time"].endswith("Z")


def test_an_agent_filter_sees_the_calls_it_was_offered_live_and_replayed(tmp_path):
    log = EventLog(event_log_path(tmp_path))
    stream = EventStream(log, node="n")
    for source, fact in [rec(1.0, call="k", start=1.0, caller="1", called="2"),
                         q("ENTER", 1.0, call="k", position=1),
                         q("OFFER", 1.1, call="k", agent="bob"),
                         q("OFFER", 1.1, call="k", agent="alice"),
                         q("CONNECT", 2.0, call="k", agent="alice", wait=1.0),
                         q("RINGNOANSWER", 2.0, call="k", agent="bob",
                           reason="answered_elsewhere"),
                         rec(3.0, call="k", end=3.0)]:
        getattr(log, {"queue": "queue_event", "call": "call_record"}[source])(
            **_args(source, fact))
    log.close()
    flt = EventFilter(agents=frozenset({"bob"}))
    items, _, end = stream.read_matching(0, flt, stream.replay_audience())
    stream.close()
    assert end
    seen = [(i.type, i.agent) for i in items]
    assert ("call.started", None) not in seen            # before bob was offered it
    assert ("offer.created", "alice") in seen and ("call.ended", "alice") in seen
    assert all(t != "agent.state_changed" or who == "bob" for t, who in seen)


def _args(source, fact):
    f = dict(fact)
    if source == "queue":
        return {"t_wall": f.pop("t"), "queue": f.pop("queue"), "call_id": f.pop("call_id"),
                "kind": f.pop("kind"), **f}
    f.pop("t")
    return f
