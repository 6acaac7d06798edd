"""Agents and users changed at run time through the admin API, on the real
app, queue runtime, ACD core and SQLite files (tests/apikit.py): changes
apply at once, are refused while the agent is engaged, keep the event log's
logins right, are audited, and are published when there is an event stream."""
from __future__ import annotations

import sqlite3

from acdcore import events as ev
from apikit import ADMIN, serve
from portlocks import Ports
from test_auth_api import log_in

ZED = {"agent": "zed", "uri": "sip:zed@127.0.0.1:9", "name": "Zed",
       "queues": {"support": 1}, "skills": {"french": 50}, "wrap_up": 3,
       "password": "zed-password-1", "pin": "2468"}


class Stream:
    """What the event stream's publish() was asked (the events helper's API)."""

    def __init__(self):
        self.published = []

    def publish(self, kind, **fields):
        self.published.append((kind, fields))
        return len(self.published)


def agent_rows(engine, agent: str) -> list[tuple]:
    engine.eventlog.flush()
    conn = sqlite3.connect(engine.eventlog.path)
    try:
        return conn.execute("SELECT kind, reason FROM event WHERE agent = ? AND call_id IS NULL"
                            " ORDER BY id", (agent,)).fetchall()
    finally:
        conn.close()


def run(tmp_path, port_allocator, scenario):
    return serve(tmp_path, Ports(port_allocator), scenario)


def test_add_change_remove_an_agent_at_run_time(tmp_path, port_allocator):
    async def scenario(client, engine):
        stream = engine.agent_admin.events = Stream()
        rt = engine.queues
        ann = await log_in(client, "ann")
        added = await ann.json("POST", "/api/admin/agents", status=201, json=ZED)
        assert added["queues"] == {"support": 1} and added["pin"] is True
        assert "pin_hash" not in added and "password" not in added
        # The ACD, the runtime and the agent list know zed at once, logged in.
        assert rt.scheduler.agent_state("zed") == "available"
        assert rt.lines["zed"].uri == "sip:zed@127.0.0.1:9" and rt.lines["zed"].wrap_up == 3
        assert rt.agent_queues("zed") == ["support"]
        assert rt.snapshot()["agents"]["support"]["available"] == 1
        assert agent_rows(engine, "zed") == [("LOGIN", None)]
        # zed logs in to the console as an agent.
        zed = await log_in(client, "zed", "zed-password-1")
        assert (zed.answer["role"], zed.answer["agent"]) == ("agent", "zed")
        assert (await zed.json("GET", "/api/me"))["row"]["state"] == "available"
        # A URI change alone does not touch the ACD (no logout).
        await ann.json("PUT", "/api/admin/agents/zed", json={"uri": "sip:zed2@127.0.0.1:9"})
        assert rt.lines["zed"].uri == "sip:zed2@127.0.0.1:9"
        assert agent_rows(engine, "zed") == [("LOGIN", None)]
        # A queue change moves zed (logged out and in again, paused stays paused).
        await ann.json("POST", "/api/agents/zed/pause", json={"reason": "training"})
        body = await ann.json("PUT", "/api/admin/agents/zed", json={"queues": {"sales": 0}})
        assert body["queues"] == {"sales": 0} and body["name"] == "Zed"
        snap = rt.snapshot()["agents"]
        assert snap["sales"].get("paused") == 1
        assert sum(snap["support"].values()) == 1       # alice alone, logged out
        assert rt.scheduler.agent_pause_reason("zed") == "training"
        assert rt.agent_queues("zed") == ["sales"]
        assert agent_rows(engine, "zed")[-3:] == [("LOGOUT", "admin"), ("LOGIN", None),
                                                  ("PAUSE", "training")]
        # Removal logs zed out first, and its login goes with it.
        gone = await ann.json("DELETE", "/api/admin/agents/zed")
        assert gone["removed"]["agent"] == "zed"
        assert "zed" not in rt.lines and rt.agent_queues("zed") == []
        assert agent_rows(engine, "zed")[-1] == ("LOGOUT", "removed")
        assert (await zed.request("GET", "/api/me")).status == 401
        r = await client.post("/api/login", json={"username": "zed",
                                                  "password": "zed-password-1"})
        assert r.status == 401
        assert [a["agent"] for a in (await ann.json("GET", "/api/agents"))["agents"]] == ["alice"]
        assert (await ann.request("GET", "/api/admin/agents/zed")).status == 404
        # Published to the stream, with who and before/after.
        kinds = [(k, f["agent"], f["by"]) for k, f in stream.published]
        assert kinds == [("agent.added", "zed", "ann"), ("agent.updated", "zed", "ann"),
                         ("agent.updated", "zed", "ann"), ("agent.removed", "zed", "ann")]
        assert stream.published[1][1]["before"]["uri"] == "sip:zed@127.0.0.1:9"
        assert stream.published[-1][1]["after"] is None
        # The audit trail, newest first.
        audit = (await ann.json("GET", "/api/admin/audit"))["audit"]
        assert [(a["who"], a["action"], a["target"]) for a in audit] == [
            ("ann", "user.removed", "zed"), ("ann", "agent.removed", "zed"),
            ("ann", "agent.updated", "zed"), ("ann", "agent.updated", "zed"),
            ("ann", "user.added", "zed"), ("ann", "agent.added", "zed")]
        assert audit[2]["before"]["queues"] == {"support": 1}
        assert audit[2]["after"]["queues"] == {"sales": 0}
        assert all(a["t"] > 0 for a in audit) and "scrypt" not in repr(audit)
        page = await ann.json("GET", f"/api/admin/audit?limit=2&before={audit[1]['id']}")
        assert [a["action"] for a in page["audit"]] == ["agent.updated", "agent.updated"]
    run(tmp_path, port_allocator, scenario)


def test_an_engaged_agent_is_neither_moved_nor_removed(tmp_path, port_allocator):
    async def scenario(client, engine):
        rt = engine.queues
        r = await client.post("/api/admin/agents", headers=ADMIN,
                              json={"agent": "zed", "uri": "sip:zed@127.0.0.1:9",
                                    "queues": {"sales": 0}})
        assert r.status == 201
        # A caller the core offers to zed (the runtime is not told: nobody is dialled).
        rt.scheduler.handle(ev.CallArrived(rt.now(), "c1", "sales", 0, (), False))
        assert rt.scheduler.agent_state("zed") == "offered"
        for method, body in (("PUT", {"queues": {"support": 0}}), ("DELETE", None)):
            r = await client.request(method, "/api/admin/agents/zed", headers=ADMIN, json=body)
            assert r.status == 409, await r.text()
            assert "offered" in await r.text()
        assert "zed" in rt.lines and rt.agent_queues("zed") == ["sales"]
        # What does not touch the ACD still applies.
        r = await client.put("/api/admin/agents/zed", headers=ADMIN, json={"name": "Zed Z"})
        assert r.status == 200
        audit = await (await client.get("/api/admin/audit", headers=ADMIN)).json()
        assert [a["who"] for a in audit["audit"]] == ["token:ops", "token:ops"]
    run(tmp_path, port_allocator, scenario)


def test_admin_refusals(tmp_path, port_allocator):
    async def scenario(client, engine):
        async def status(method, path, body=None):
            r = await client.request(method, path, headers=ADMIN, json=body)
            return r.status, await r.text()

        assert (await status("POST", "/api/admin/agents", {"uri": "sip:x@h"}))[0] == 400
        assert (await status("POST", "/api/admin/agents", {"agent": "x"}))[0] == 400
        code, text = await status("POST", "/api/admin/agents",
                                  {"agent": "x", "uri": "sip:x@h", "queues": {"nope": 0}})
        assert code == 400 and "unknown queue 'nope'" in text
        code, text = await status("POST", "/api/admin/agents",
                                  {"agent": "x", "uri": "sip:alice@127.0.0.1:9"})
        assert code == 400 and "same URI as agent 'alice'" in text
        code, _ = await status("POST", "/api/admin/agents", {"agent": "alice", "uri": "sip:a@h"})
        assert code == 409
        code, _ = await status("POST", "/api/admin/agents",
                               {"agent": "y", "uri": "sip:y@h", "number": "3001"})
        assert code == 201
        code, text = await status("POST", "/api/admin/agents",
                                  {"agent": "x", "uri": "sip:x@h", "number": "3001"})
        assert code == 400 and "keypad number '3001' belongs to agent 'y'" in text
        await status("DELETE", "/api/admin/agents/y")
        code, _ = await status("POST", "/api/admin/agents",
                               {"agent": "x", "uri": "sip:x@h", "pin": "12"})
        assert code == 400
        code, _ = await status("POST", "/api/admin/agents",
                               {"agent": "x y", "uri": "sip:x@h"})
        assert code == 400
        code, _ = await status("PUT", "/api/admin/agents/alice", {"agent": "bob"})
        assert code == 400
        assert (await status("PUT", "/api/admin/agents/nobody", {"name": "N"}))[0] == 404
        assert (await status("DELETE", "/api/admin/agents/nobody"))[0] == 404
        # Nothing of the refused requests reached the runtime or the audit trail.
        assert list(engine.queues.lines) == ["alice"]
        assert [a["action"] for a in engine.people.audit()] == ["agent.removed", "agent.added"]
    run(tmp_path, port_allocator, scenario)


def test_users_crud(tmp_path, port_allocator):
    async def scenario(client, engine):
        ann = await log_in(client, "ann")
        users = await ann.json("GET", "/api/admin/users")
        assert {u["user"]: u["role"] for u in users["users"]} == \
            {"alice": "agent", "ann": "admin", "sam": "supervisor"}
        assert all(u["password"] is True for u in users["users"])
        assert "scrypt" not in repr(users)
        tim = {"user": "tim", "role": "supervisor", "password": "tim-password",
               "queues": ["support"]}
        created = await ann.json("POST", "/api/admin/users", status=201, json=tim)
        assert created["queues"] == ["support"] and created["origin"] == "admin"
        await ann.json("POST", "/api/admin/users", status=409, json=tim)
        person = await log_in(client, "tim", "tim-password")
        assert person.answer["queues"] == ["support"]
        await ann.json("PUT", "/api/admin/users/tim", json={"role": "admin", "queues": None})
        assert (await person.json("GET", "/api/session"))["role"] == "admin"  # at once
        await ann.json("PUT", "/api/admin/users/tim", json={"password": "tim-password-2"})
        assert (await person.request("GET", "/api/session")).status == 401   # re-login
        for bad in ({"user": "u1", "role": "agent"},                 # agent without agent
                    {"user": "u2", "role": "agent", "agent": "ghost"},
                    {"user": "u3", "role": "admin", "queues": ["support"]},
                    {"user": "u4", "role": "supervisor", "queues": ["nope"]},
                    {"user": "u5", "role": "admin", "password": "short"},
                    {"user": "u6"}):
            await ann.json("POST", "/api/admin/users", status=400, json=bad)
        await ann.json("DELETE", "/api/admin/users/ann", status=409)   # not oneself
        await ann.json("DELETE", "/api/admin/users/tim")
        await ann.json("DELETE", "/api/admin/users/tim", status=404)
        assert (await ann.json("GET", "/api/admin/users/tim", status=404))
        audit = [(a["action"], a["target"]) for a in engine.people.audit()]
        assert audit == [("user.removed", "tim"), ("user.updated", "tim"),
                         ("user.updated", "tim"), ("user.added", "tim")]
    run(tmp_path, port_allocator, scenario)


def test_an_agent_login_cannot_take_another_users_name(tmp_path, port_allocator):
    async def scenario(client, engine):
        r = await client.post("/api/admin/agents", headers=ADMIN,
                              json={"agent": "sam", "uri": "sip:sam@127.0.0.1:9",
                                    "password": "sam-agent-password"})
        assert r.status == 409 and "user 'sam' exists" in await r.text()
        assert "sam" not in engine.queues.lines                  # nothing half done
        assert engine.people.user("sam").role == "supervisor"
    run(tmp_path, port_allocator, scenario)


def test_a_stored_agent_keeps_only_queues_the_config_still_has():
    from sipagent.queue.agent_admin import fit_to_queues
    from sipagent.store.agent_book import AgentSpec

    specs = {"z": AgentSpec("z", "sip:z@h", queues={"support": 0, "gone": 1})}
    assert fit_to_queues(specs, {"support": None})["z"].queues == {"support": 0}
