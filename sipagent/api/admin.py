"""The admin part of the HTTP API (role ``admin``): agents and users at run
time, and the audit trail of every change.

======  ==========================  ===============================================
GET     /api/admin/agents           every agent as configured, with its live row
POST    /api/admin/agents           a new agent (body below): the ACD and the runtime
                                    learn it at once, it is logged in unless
                                    ``auto_login`` is false
GET     /api/admin/agents/{id}      one agent
PUT     /api/admin/agents/{id}      change it: keys given replace the stored ones
                                    (``"pin": null`` / ``"password": null`` clear)
DELETE  /api/admin/agents/{id}      log it out and remove it (and its login)
GET     /api/admin/users            console users (passwords never shown)
POST    /api/admin/users            ``{"user", "role", "password", "agent", "queues"}``
GET     /api/admin/users/{name}     one user
PUT     /api/admin/users/{name}     change role, password, agent, queues
DELETE  /api/admin/users/{name}     remove the user (its sessions end)
GET     /api/admin/audit            ``?limit=&before=&target=``: who changed what,
                                    before and after, when (newest first)
======  ==========================  ===============================================

Agent body: ``{"agent", "uri", "name", "queues": {"q": penalty}, "skills":
{"s": level}, "wrap_up", "auto_login", "weight", "talk_limit", "number",
"pin", "password", "role"}``; ``password`` gives the agent a console login
named after the agent (``role``: its role, ``agent`` by default).  An agent
who is rung, talking or wrapping up cannot be removed or have its queues,
skills, weight or wrap-up changed: 409 (sipagent/queue/agent_admin.py).
400 names a bad field; 404 an unknown agent or user; 409 one that exists.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AfterValidator, Field

from sipagent.api.auth import Authenticator, Caller
from sipagent.api.request_input import JsonBody, QueryParameters, read_body, read_query
from sipagent.config.values import AgentUri, Name
from sipagent.queue.agent_admin import AgentBusy, AgentExists, UnknownAgent
from sipagent.store.agent_book import AgentSpec
from sipagent.store.people import User
from sipagent.store.pin import check_pin_format, hash_pin, hash_secret

ADMIN = {"admin"}
Role = Literal["admin", "supervisor", "agent"]
Password = Annotated[str, Field(min_length=8, max_length=256)]


class AgentBody(JsonBody):
    agent: Name | None = None
    uri: AgentUri | None = None
    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    queues: dict[Name, Annotated[int, Field(ge=0, le=1000)]] | None = None
    skills: dict[Name, Annotated[int, Field(ge=1, le=100)]] | None = None
    wrap_up: Annotated[float, Field(ge=0, le=86400)] | None = None
    auto_login: bool | None = None
    weight: Annotated[int, Field(ge=1, le=1000)] | None = None
    talk_limit: Annotated[float, Field(ge=0, le=86400)] | None = None
    number: Annotated[str, Field(pattern=r"^[0-9]{1,12}$")] | None = None
    pin: Annotated[str, AfterValidator(check_pin_format)] | None = None
    password: Password | None = None
    role: Role | None = None


class UserBody(JsonBody):
    user: Name | None = None
    role: Role | None = None
    password: Password | None = None
    agent: Name | None = None
    queues: list[Name] | None = None


class AuditQuery(QueryParameters):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    before: Annotated[int, Field(ge=1, le=2**62)] | None = None
    target: Annotated[str, Field(max_length=80)] | None = None


def who_of(who: Caller) -> str:
    """The audit trail's "who": a person by name, a machine by its token."""
    return who.name if who.session is not None else f"token:{who.name}"


def add_admin_routes(app: web.Application, engine, auth: Authenticator) -> None:
    def parts():
        admin, people = getattr(engine, "agent_admin", None), getattr(engine, "people", None)
        if admin is None or people is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        return admin, people

    def spec_from(body: AgentBody, base: AgentSpec | None, agent_id: str,
                  pin_hash: str | None) -> AgentSpec:
        given = body.model_fields_set
        if base is None:
            if body.uri is None:
                raise web.HTTPBadRequest(text="uri: required\n")
            base = AgentSpec(agent_id, body.uri)
        changes = {k: getattr(body, k) for k in ("uri", "name", "queues", "skills", "wrap_up",
                                                  "auto_login", "weight", "talk_limit", "number")
                   if k in given}
        for key, default in (("uri", base.uri), ("queues", {}), ("skills", {}),
                             ("auto_login", True), ("weight", 1)):
            if key in changes and changes[key] is None:
                if key == "uri":
                    raise web.HTTPBadRequest(text="uri: may not be null\n")
                changes[key] = default
        if "pin" in given:
            changes["pin_hash"] = pin_hash
        return base.with_(**changes)

    async def pin_hash_of(body: AgentBody) -> str | None:
        # scrypt costs tens of milliseconds: not on the loop.
        return None if body.pin is None else await asyncio.to_thread(hash_pin, body.pin)

    def login_conflict(people, body: AgentBody, agent_id: str) -> None:
        """Checked before the agent changes: a login for it would take a
        user name someone else has."""
        old = people.user(agent_id)
        if body.model_fields_set & {"password", "role"} and old is not None \
                and old.agent != agent_id:
            raise web.HTTPConflict(text=f"user {agent_id!r} exists and is not this agent's\n")

    async def agent_login(people, body: AgentBody, agent_id: str, by: str) -> None:
        """The agent's console login (a user named after it), when asked for."""
        given = body.model_fields_set
        if not given & {"password", "role"}:
            return
        old = people.user(agent_id)
        if old is None and body.password is None:
            return      # a role alone, for a login that does not exist
        password_hash = old.password_hash if old else None
        if "password" in given:
            password_hash = None if body.password is None else \
                await asyncio.to_thread(hash_secret, body.password)
        user = User(agent_id, body.role or (old.role if old else "agent"), agent_id, None,
                    password_hash)
        people.put_user(user, audit=(by, "user.updated" if old else "user.added",
                                     old and old.public(), user.public()))

    async def list_agents(request: web.Request) -> web.Response:
        auth(request, ADMIN)
        admin, _ = parts()
        return web.json_response({"agents": admin.rows()})

    async def get_agent(request: web.Request) -> web.Response:
        auth(request, ADMIN)
        admin, people = parts()
        agent_id = request.match_info["agent"]
        try:
            spec = admin.get(agent_id)
        except UnknownAgent:
            raise web.HTTPNotFound(text=f"unknown agent {agent_id!r}\n") from None
        login = people.user_of_agent(agent_id)
        return web.json_response({**spec.public(), "login": login and login.public(),
                                  "live": next((r for r in admin.runtime.agents()
                                                if r["agent"] == agent_id), None)})

    async def post_agent(request: web.Request) -> web.Response:
        who = auth(request, ADMIN)
        admin, people = parts()
        body = await read_body(request, AgentBody)
        if body.agent is None:
            raise web.HTTPBadRequest(text="agent: required\n")
        spec = spec_from(body, None, body.agent, await pin_hash_of(body))
        login_conflict(people, body, body.agent)
        by = who_of(who)
        try:
            admin.add(spec, who=by)
        except AgentExists as exc:
            raise web.HTTPConflict(text=f"agent: {exc}\n") from None
        except AgentBusy as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        await agent_login(people, body, spec.agent, by)
        return web.json_response(spec.public(), status=201)

    async def put_agent(request: web.Request) -> web.Response:
        who = auth(request, ADMIN)
        admin, people = parts()
        agent_id = request.match_info["agent"]
        body = await read_body(request, AgentBody)
        if body.agent is not None and body.agent != agent_id:
            raise web.HTTPBadRequest(text="agent: an agent's id cannot change (remove it and "
                                          "add a new one)\n")
        try:
            spec = spec_from(body, admin.get(agent_id), agent_id, await pin_hash_of(body))
            login_conflict(people, body, agent_id)
            admin.update(spec, who=who_of(who))
        except UnknownAgent:
            raise web.HTTPNotFound(text=f"unknown agent {agent_id!r}\n") from None
        except AgentBusy as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        await agent_login(people, body, agent_id, who_of(who))
        return web.json_response(spec.public())

    async def delete_agent(request: web.Request) -> web.Response:
        who = auth(request, ADMIN)
        admin, people = parts()
        agent_id = request.match_info["agent"]
        by = who_of(who)
        try:
            before = admin.remove(agent_id, who=by)
        except UnknownAgent:
            raise web.HTTPNotFound(text=f"unknown agent {agent_id!r}\n") from None
        except AgentBusy as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        for user in [u for u in people.users() if u.agent == agent_id]:
            people.remove_user(user.name, audit=(by, "user.removed", user.public(), None))
        return web.json_response({"removed": before.public()})

    # -- users ---------------------------------------------------------------------------
    def checked_user(name: str, body: UserBody, old: User | None) -> User:
        given = body.model_fields_set
        role = body.role or (old.role if old else None)
        if role is None:
            raise web.HTTPBadRequest(text="role: required\n")
        agent = body.agent if "agent" in given else (old.agent if old else None)
        queues = body.queues if "queues" in given else \
            (sorted(old.queues) if old and old.queues is not None else None)
        if role == "agent" and agent is None:
            raise web.HTTPBadRequest(text="agent: required for role 'agent'\n")
        admin, _ = parts()
        if agent is not None and agent not in admin.runtime.lines:
            raise web.HTTPBadRequest(text=f"agent: unknown agent {agent!r}\n")
        if queues is not None:
            if role != "supervisor":
                raise web.HTTPBadRequest(text=f"queues: only for role 'supervisor', not "
                                              f"{role!r}\n")
            unknown = [q for q in queues if q not in admin.runtime.settings]
            if unknown:
                raise web.HTTPBadRequest(text=f"queues: unknown queue {unknown[0]!r}\n")
        return User(name, role, agent, None if queues is None else frozenset(queues),
                    old.password_hash if old else None)

    async def list_users(request: web.Request) -> web.Response:
        auth(request, ADMIN)
        _, people = parts()
        return web.json_response({"users": [u.public() for u in people.users()]})

    async def get_user(request: web.Request) -> web.Response:
        auth(request, ADMIN)
        _, people = parts()
        user = people.user(request.match_info["user"])
        if user is None:
            raise web.HTTPNotFound(text=f"unknown user {request.match_info['user']!r}\n")
        return web.json_response(user.public())

    async def put_or_post_user(request: web.Request, name: str | None) -> web.Response:
        who = auth(request, ADMIN)
        _, people = parts()
        body = await read_body(request, UserBody)
        creating = name is None
        name = body.user if creating else name
        if name is None:
            raise web.HTTPBadRequest(text="user: required\n")
        if not creating and body.user is not None and body.user != name:
            raise web.HTTPBadRequest(text="user: a user's name cannot change\n")
        old = people.user(name)
        if creating and old is not None:
            raise web.HTTPConflict(text=f"user {name!r} exists\n")
        if not creating and old is None:
            raise web.HTTPNotFound(text=f"unknown user {name!r}\n")
        user = checked_user(name, body, old)
        if "password" in body.model_fields_set:
            user = User(user.name, user.role, user.agent, user.queues, None if body.password
                        is None else await asyncio.to_thread(hash_secret, body.password))
        people.put_user(user, audit=(who_of(who), "user.added" if creating else "user.updated",
                                     old and old.public(), user.public()))
        return web.json_response(user.public(), status=201 if creating else 200)

    async def post_user(request: web.Request) -> web.Response:
        return await put_or_post_user(request, None)

    async def put_user(request: web.Request) -> web.Response:
        return await put_or_post_user(request, request.match_info["user"])

    async def delete_user(request: web.Request) -> web.Response:
        who = auth(request, ADMIN)
        _, people = parts()
        name = request.match_info["user"]
        if who.session is not None and who.name == name:
            raise web.HTTPConflict(text="you cannot remove yourself: another admin can\n")
        old = people.user(name)
        if old is None or not people.remove_user(
                name, audit=(who_of(who), "user.removed", old.public(), None)):
            raise web.HTTPNotFound(text=f"unknown user {name!r}\n")
        return web.json_response({"removed": old.public()})

    async def audit(request: web.Request) -> web.Response:
        auth(request, ADMIN)
        _, people = parts()
        query = read_query(request, AuditQuery)
        rows = await asyncio.to_thread(people.audit, limit=query.limit, before_id=query.before,
                                       target=query.target)
        return web.json_response({"audit": rows})

    app.router.add_get("/api/admin/agents", list_agents)
    app.router.add_post("/api/admin/agents", post_agent)
    app.router.add_get("/api/admin/agents/{agent}", get_agent)
    app.router.add_put("/api/admin/agents/{agent}", put_agent)
    app.router.add_delete("/api/admin/agents/{agent}", delete_agent)
    app.router.add_get("/api/admin/users", list_users)
    app.router.add_post("/api/admin/users", post_user)
    app.router.add_get("/api/admin/users/{user}", get_user)
    app.router.add_put("/api/admin/users/{user}", put_user)
    app.router.add_delete("/api/admin/users/{user}", delete_user)
    app.router.add_get("/api/admin/audit", audit)
