"""The agent desktop's API on the real app (tests/apikit.py): dispositions
stored in the call record, the screen pop's content (hostile text returned
as JSON data, verbatim), agent rows, the live channels, and who sees what.

No SIP here: live callers are queue entries the runtime holds, with a
stand-in for the SIP call that carries what the real one records (its
headers and IVR choices); tests/test_admin_sip.py does it over real SIP."""
from __future__ import annotations

import sqlite3
import time
from types import SimpleNamespace

from apikit import serve
from portlocks import Ports
from sipagent.queue.entry import EntryEvent, QueueEntry
from test_admin_api import Stream
from test_auth_api import log_in

SCRIPT = "<script>alert('x')</script>"


def cdr(engine, call_id: str) -> dict:
    engine.eventlog.flush()
    conn = sqlite3.connect(engine.eventlog.path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM call_record WHERE call_id = ?", (call_id,)).fetchone()
        return dict(row) if row else {}
    finally:
        conn.close()


def live_caller(engine, call_id: str, *, queue="support", agent=None, talking=False,
                ringing=None, caller="+15550100", name=None, ivr=(), data=None):
    """A caller the runtime holds: waiting, rung at ``ringing``, or talking to ``agent``."""
    rt = engine.queues
    headers = {"From": f'"{name}" <sip:{caller}@127.0.0.1>' if name else f"<sip:{caller}@h>"}
    call = SimpleNamespace(headers=headers, ivr=list(ivr))
    entry = QueueEntry(call_id, queue, rt.now() - 3.0, caller, "100", data or {}, call=call)
    if talking:
        entry.advance(EntryEvent.CONNECTED)
        entry.agent_id, entry.answered_at = agent, rt.now() - 2.0
    rt.entries[call_id] = entry
    if ringing:
        rt.offers[(call_id, ringing)] = SimpleNamespace(end=lambda: None)
    return entry


def run(tmp_path, port_allocator, scenario):
    return serve(tmp_path, Ports(port_allocator), scenario)


def test_disposition_goes_into_the_call_record(tmp_path, port_allocator):
    async def scenario(client, engine):
        log = engine.eventlog
        log.call_record("c1", start=time.time() - 60, caller="+15550100", called="100",
                        queue="support", agent="alice", outcome="answered", end=time.time())
        log.call_record("c2", start=time.time() - 30, caller="+15550101", called="100",
                        queue="support", agent="bob", outcome="answered")
        log.call_record("c3", start=time.time() - 30, caller="+15550102", called="100",
                        queue="sales", agent="alice", outcome="answered")
        engine.events = Stream()
        alice = await log_in(client, "alice")
        body = {"code": "sale", "note": f"wants {SCRIPT} & more"}
        answer = await alice.json("POST", "/api/calls/c1/disposition", json=body)
        assert (answer["code"], answer["agent"]) == ("sale", "alice")
        assert engine.events.published == [("wrapup.disposition", {
            "call_id": "c1", "queue": "support", "agent": "alice", "code": "sale",
            "note": body["note"], "user": "alice"})]
        row = cdr(engine, "c1")
        assert (row["disposition"], row["disposition_note"]) == ("sale", body["note"])
        assert row["outcome"] == "answered" and row["agent"] == "alice"   # the rest kept
        await alice.json("POST", "/api/calls/c1/disposition", status=400,
                         json={"code": "bogus"})
        await alice.json("POST", "/api/calls/c1/disposition", status=403,
                         json={"code": "sale"}, csrf=None)
        await alice.json("POST", "/api/calls/c2/disposition", status=404,
                         json={"code": "sale"})                     # bob's call
        await alice.json("POST", "/api/calls/nope/disposition", status=404,
                         json={"code": "sale"})
        assert cdr(engine, "c2")["disposition"] is None
        # A supervisor scoped to sales: not support's calls; an admin: any.
        sam = await log_in(client, "sam")
        await sam.json("POST", "/api/calls/c2/disposition", status=404, json={"code": "sale"})
        await sam.json("POST", "/api/calls/c3/disposition", json={"code": "no_sale"})
        ann = await log_in(client, "ann")
        await ann.json("POST", "/api/calls/c2/disposition", json={"code": "no_sale"})
        assert cdr(engine, "c3")["disposition"] == "no_sale"
        assert cdr(engine, "c2")["disposition"] == "no_sale"
        # During the call too (the live entry names the agent).
        live_caller(engine, "c4", agent="alice", talking=True)
        log.call_record("c4", start=time.time(), caller="+15550100", queue="support")
        await alice.json("POST", "/api/calls/c4/disposition", json={"code": "sale"})
        assert cdr(engine, "c4")["disposition"] == "sale"
    run(tmp_path, port_allocator, scenario)


def test_screen_pop_returns_hostile_text_verbatim_as_json(tmp_path, port_allocator):
    async def scenario(client, engine):
        engine.eventlog.call_record("old1", start=time.time() - 7200, caller="+15550100",
                                    queue="support", agent="bob", outcome="answered")
        engine.eventlog.disposition("old1", "no_sale", "called about <b>billing</b>")
        engine.eventlog.call_record("other", start=time.time() - 60, caller="+15550999")
        live_caller(engine, "c1", ringing="alice", name=SCRIPT,
                    ivr=[{"prompt": "menu-main", "digits": "2"}],
                    data={"account": SCRIPT, "tier": "gold"})
        engine.eventlog.call_record("c1", start=time.time(), caller="+15550100")
        alice = await log_in(client, "alice")
        r = await alice.request("GET", "/api/calls/c1/pop")
        assert r.status == 200 and r.content_type == "application/json"
        assert "<script>" not in r.headers.get("Content-Type", "")
        pop = await r.json()
        assert pop["caller_name"] == SCRIPT and pop["data"]["account"] == SCRIPT
        assert (pop["call_id"], pop["caller"], pop["called"], pop["queue"]) == \
            ("c1", "+15550100", "100", "support")
        assert pop["ivr"] == [{"prompt": "menu-main", "digits": "2"}]
        assert [h["call_id"] for h in pop["history"]] == ["old1"]
        assert pop["history"][0]["disposition_note"] == "called about <b>billing</b>"
        # Not alice's call: 404 for her, fine for the admin.
        live_caller(engine, "c2", caller="+15550101")
        assert (await alice.request("GET", "/api/calls/c2/pop")).status == 404
        ann = await log_in(client, "ann")
        assert (await ann.json("GET", "/api/calls/c2/pop"))["history"] == []
        sam = await log_in(client, "sam")                    # scoped to sales
        assert (await sam.request("GET", "/api/calls/c1/pop")).status == 404
        assert (await ann.request("GET", "/api/calls/none/pop")).status == 404
    run(tmp_path, port_allocator, scenario)


def test_agent_rows_and_channels(tmp_path, port_allocator):
    async def scenario(client, engine):
        rt = engine.queues
        ann = await log_in(client, "ann")
        before = time.time()
        await ann.json("POST", "/api/admin/agents", status=201,
                       json={"agent": "bob", "uri": "sip:bob@127.0.0.1:9",
                             "queues": {"support": 0}})
        await ann.json("POST", "/api/agents/alice/login")
        rt.agent_times.handled("alice", time.time())
        rt.agent_times.offer_lost("alice", "ring_timeout", time.time())
        rt.agent_times.offer_lost("alice", "answered_elsewhere", time.time())   # not missed
        live_caller(engine, "w1", caller="+15550200")
        live_caller(engine, "r1", ringing="alice", caller="+15550201")
        live_caller(engine, "t1", agent="bob", talking=True, caller="+15550202")
        engine.live_calls["f1"] = SimpleNamespace(flow="main_menu", caller="+15550203",
                                                  called="100", started=time.time() - 4)
        rows = {a["agent"]: a for a in (await ann.json("GET", "/api/agents"))["agents"]}
        alice, bob = rows["alice"], rows["bob"]
        assert alice["state"] == "available" and before <= alice["since"] <= time.time()
        assert alice["login_at"] is not None
        assert (alice["handled_today"], alice["missed_today"]) == (1, 1)
        assert alice["ringing"] == {"call_id": "r1", "queue": "support", "caller": "+15550201"}
        assert bob["call"]["call_id"] == "t1" and bob["call"]["talk_seconds"] >= 2.0
        assert bob["call"]["on_hold"] is False and bob["ringing"] is None
        channels = (await ann.json("GET", "/api/channels"))["channels"]
        kinds = {(c["kind"], c["call_id"]) for c in channels}
        assert kinds == {("flow", "f1"), ("waiting", "w1"), ("waiting", "r1"),
                         ("ringing", "r1"), ("connected", "t1")}
        flow = next(c for c in channels if c["kind"] == "flow")
        assert flow["flow"] == "main_menu" and flow["seconds"] >= 4
        waiting = next(c for c in channels if c["call_id"] == "w1")
        assert waiting["queue"] == "support" and waiting["seconds"] >= 3
        alice_session = await log_in(client, "alice")
        mine = (await alice_session.json("GET", "/api/channels"))["channels"]
        assert [(c["kind"], c["call_id"]) for c in mine] == [("ringing", "r1")]
        me = await alice_session.json("GET", "/api/me")
        assert me["row"]["ringing"]["call_id"] == "r1"
        assert me["dispositions"] == ["sale", "no_sale"]     # the desktop's choices
        sam = await log_in(client, "sam")                      # sales only: nothing live
        assert (await sam.json("GET", "/api/channels"))["channels"] == []
        for call_id in ("w1", "r1", "t1"):
            rt.entries.pop(call_id)
        rt.offers.clear()
    run(tmp_path, port_allocator, scenario)
