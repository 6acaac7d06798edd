"""Console logins over the engine's real HTTP app (tests/apikit.py): the
session cookie and its flags, CSRF on every state-changing request, an
agent kept to itself, lockout, logout, and bearer tokens as before."""
from __future__ import annotations

from http.cookies import SimpleCookie

from apikit import ADMIN, PASSWORDS, serve
from portlocks import Ports
from sipagent.api.auth import COOKIE


class Person:
    """A logged-in browser: its cookie and CSRF token, sent by hand so that
    several people can share one test client."""

    def __init__(self, client, secret: str, csrf: str, answer: dict):
        self.client, self.secret, self.csrf, self.answer = client, secret, csrf, answer

    async def request(self, method: str, path: str, *, csrf: str | None = "own", **kw):
        headers = {"Cookie": f"{COOKIE}={self.secret}", **kw.pop("headers", {})}
        if csrf is not None:
            headers["X-CSRF-Token"] = self.csrf if csrf == "own" else csrf
        return await self.client.request(method, path, headers=headers, **kw)

    async def json(self, method: str, path: str, status: int = 200, **kw):
        r = await self.request(method, path, **kw)
        assert r.status == status, (method, path, r.status, await r.text())
        return await r.json() if r.content_type == "application/json" else await r.text()


async def log_in(client, user: str, password: str | None = None) -> Person:
    r = await client.post("/api/login", json={"username": user,
                                              "password": password or PASSWORDS[user]})
    assert r.status == 200, await r.text()
    answer = await r.json()
    cookie = SimpleCookie(r.headers["Set-Cookie"])[COOKIE].value
    client.session.cookie_jar.clear()
    return Person(client, cookie, answer["csrf"], answer)


def run(tmp_path, port_allocator, scenario):
    return serve(tmp_path, Ports(port_allocator), scenario)


def test_login_sets_a_strict_httponly_cookie_and_session_answers(tmp_path, port_allocator):
    async def scenario(client, engine):
        r = await client.post("/api/login", json={"username": "ann",
                                                  "password": PASSWORDS["ann"]})
        assert r.status == 200
        body = await r.json()
        assert {k: body[k] for k in ("user", "role", "agent", "queues")} == \
            {"user": "ann", "role": "admin", "agent": None, "queues": None}
        morsel = SimpleCookie(r.headers["Set-Cookie"])[COOKIE]
        raw = r.headers["Set-Cookie"]
        assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/" in raw
        assert morsel.value and morsel.value not in (await r.text())
        assert len(body["csrf"]) >= 32 and body["csrf"] != morsel.value
        # The browser's cookie jar now opens the session; a GET needs no token.
        session = await client.get("/api/session")
        assert session.status == 200 and (await session.json())["csrf"] == body["csrf"]
        assert (await client.get("/api/agents")).status == 200
        client.session.cookie_jar.clear()
        assert (await client.get("/api/session")).status == 401
        assert (await client.get("/api/agents")).status == 401
    run(tmp_path, port_allocator, scenario)


def test_state_changes_need_the_csrf_token(tmp_path, port_allocator):
    async def scenario(client, engine):
        ann = await log_in(client, "ann")
        for csrf in (None, "", "wrong-token"):
            r = await ann.request("POST", "/api/agents/alice/login", csrf=csrf)
            assert r.status == 403, csrf
            assert "CSRF token missing or wrong" in await r.text()
        assert engine.queues.scheduler.agent_state("alice") == "logged_out"
        r = await ann.request("DELETE", "/api/admin/users/sam", csrf=None)
        assert r.status == 403 and engine.people.user("sam") is not None
        row = await ann.json("POST", "/api/agents/alice/login")
        assert row["state"] == "available"
        # Another session's token does not fit this one.
        other = await log_in(client, "ann")
        r = await ann.request("POST", "/api/agents/alice/pause", csrf=other.csrf)
        assert r.status == 403
    run(tmp_path, port_allocator, scenario)


def test_bearer_tokens_need_no_csrf_and_win_over_a_cookie(tmp_path, port_allocator):
    async def scenario(client, engine):
        r = await client.post("/api/agents/alice/login", headers=ADMIN)
        assert r.status == 200
        alice = await log_in(client, "alice")
        # The alice cookie with the admin token: the token decides (admin route allowed).
        r = await alice.request("GET", "/api/admin/users", headers=ADMIN)
        assert r.status == 200
        r = await client.get("/api/agents", headers={"Authorization": "Bearer wrong"})
        assert r.status == 401
    run(tmp_path, port_allocator, scenario)


def test_an_agent_session_sees_only_itself(tmp_path, port_allocator):
    async def scenario(client, engine):
        admin = await log_in(client, "ann")
        await admin.json("POST", "/api/admin/agents", status=201,
                         json={"agent": "bob", "uri": "sip:bob@127.0.0.1:9",
                               "queues": {"support": 0}})
        alice = await log_in(client, "alice")
        assert alice.answer["role"] == "agent" and alice.answer["agent"] == "alice"
        agents = await alice.json("GET", "/api/agents")
        assert [a["agent"] for a in agents["agents"]] == ["alice"]
        for path in ("/api/admin/agents", "/api/admin/users", "/api/admin/audit",
                     "/api/admin/agents/alice", "/api/queues", "/api/callbacks"):
            assert (await alice.request("GET", path)).status == 403, path
        r = await alice.request("POST", "/api/admin/agents",
                                json={"agent": "eve", "uri": "sip:eve@127.0.0.1:9"})
        assert r.status == 403
        r = await alice.request("POST", "/api/agents/bob/pause")
        assert r.status == 403
        me = await alice.json("GET", "/api/me")
        assert (me["user"], me["agent"], me["via"]) == ("alice", "alice", "session")
        assert me["row"]["agent"] == "alice"
    run(tmp_path, port_allocator, scenario)


def test_lockout_after_failures_even_with_the_right_password(tmp_path, port_allocator):
    async def scenario(client, engine):
        wrong = {"username": "sam", "password": "not-the-password"}
        statuses = [(await client.post("/api/login", json=wrong)).status for _ in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        r = await client.post("/api/login", json={"username": "sam",
                                                  "password": PASSWORDS["sam"]})
        assert r.status == 429
        assert 290 <= int(r.headers["Retry-After"]) <= 300
        assert "Set-Cookie" not in r.headers
        # Another user is not locked by sam's failures.
        assert (await log_in(client, "ann")).answer["user"] == "ann"
        r = await client.post("/api/login", json={"username": "nobody", "password": "x" * 9})
        assert r.status == 401
    run(tmp_path, port_allocator, scenario)


def test_logout_ends_the_session(tmp_path, port_allocator):
    async def scenario(client, engine):
        ann = await log_in(client, "ann")
        assert (await ann.request("POST", "/api/logout", csrf=None)).status == 403
        r = await ann.request("POST", "/api/logout")
        assert r.status == 200
        assert COOKIE in r.headers.get("Set-Cookie", "")       # the browser forgets it
        assert (await ann.request("GET", "/api/agents")).status == 401
        assert (await ann.request("GET", "/api/session")).status == 401
        r = await client.post("/api/logout", headers=ADMIN)
        assert r.status == 400                                  # a token has no session
    run(tmp_path, port_allocator, scenario)


def test_malformed_login_bodies_are_400(tmp_path, port_allocator):
    async def scenario(client, engine):
        for body in (b"", b"{}", b'{"username": "ann"}', b'{"username": 1, "password": "x"}',
                     b'{"username": "ann", "password": "x", "extra": 1}', b"[" * 1000):
            r = await client.post("/api/login", data=body,
                                  headers={"Content-Type": "application/json"})
            assert r.status == 400, body[:30]
        r = await client.get("/api/agents", headers={"Cookie": f"{COOKIE}={'x' * 5000}"})
        assert r.status == 401
    run(tmp_path, port_allocator, scenario)


def test_a_scoped_supervisor_lists_only_its_queues_agents(tmp_path, port_allocator):
    async def scenario(client, engine):
        await client.post("/api/admin/agents", headers=ADMIN,
                          json={"agent": "bob", "uri": "sip:bob@127.0.0.1:9",
                                "queues": {"sales": 0}})
        sam = await log_in(client, "sam")                       # queues = ["sales"]
        assert sam.answer["queues"] == ["sales"]
        agents = await sam.json("GET", "/api/agents")
        assert [a["agent"] for a in agents["agents"]] == ["bob"]
        ann = await log_in(client, "ann")
        agents = await ann.json("GET", "/api/agents")
        assert [a["agent"] for a in agents["agents"]] == ["alice", "bob"]
    run(tmp_path, port_allocator, scenario)
