"""Who is asking: machines with bearer tokens, people with a session cookie.

======  ===============  =====================================================
POST    /api/login       ``{"username", "password"}`` -> 200 ``{"user", "role",
                         "agent", "queues", "csrf"}`` and the ``sipacd_session``
                         cookie (HttpOnly; SameSite=Strict; Path=/); 401 wrong
                         name or password; 429 (Retry-After) while locked out
POST    /api/logout      ends the cookie's session (needs the CSRF token)
GET     /api/session     the same JSON as the login, or 401
======  ===============  =====================================================

:class:`Authenticator` is the ``auth(request, roles)`` every route module
receives.  It accepts

- ``Authorization: Bearer <token>`` from ``[http.tokens]`` (unchanged: no
  CSRF token, since a browser never sends that header on its own);
- the session cookie of a user (``[users.<name>]`` or the admin API, kept
  in ``people.sqlite3``).  A browser sends the cookie with any request to
  the engine, so each state-changing request made with it (POST, PUT,
  PATCH, DELETE) must also carry the session's ``X-CSRF-Token`` header,
  which only the console's own pages can read (from the login's answer or
  ``GET /api/session``): 403 "CSRF token missing or wrong" otherwise.

401 without credentials (or an unknown token, an expired session), 403
for a role the route does not take.  The caller's ``queues`` (a
supervisor's scope, None = every queue) come from ``[users.<name>] queues``
or, for a token, from the ``[supervisors.<id>]`` it names.
"""
from __future__ import annotations

import asyncio
import hmac
import math
from dataclasses import dataclass
from typing import Annotated, Callable

import structlog
from aiohttp import web
from pydantic import Field

from sipagent.api.request_input import JsonBody, read_body

log = structlog.get_logger("sipagent.api.auth")

COOKIE = "sipacd_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PEOPLE = {"admin", "supervisor", "agent"}


@dataclass(frozen=True)
class Caller:
    role: str                        # admin | supervisor | agent | callback
    agent: str | None = None         # the agent a token or user is bound to
    name: str = ""                   # the token's or user's name
    phone: str | None = None
    queues: frozenset[str] | None = None   # a supervisor's scope; None: every queue
    session: str | None = None       # the cookie's secret, for a logged-in person

    def sees_queue(self, queue: str | None) -> bool:
        return self.queues is None or queue in self.queues


class LoginBody(JsonBody):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class Authenticator:
    """``auth(request, roles) -> Caller``; ``people()`` gives the people store
    (None before the engine opened it: cookies are then refused)."""

    def __init__(self, config, people: Callable[[], object | None]):
        self.config = config
        self.people = people

    def __call__(self, request: web.Request, roles: set[str]) -> Caller:
        given = request.headers.get("Authorization", "")
        if given:
            who = self._bearer(given)
        elif request.cookies.get(COOKIE):
            who = self._session(request)
        else:
            raise web.HTTPUnauthorized(text="bearer token or session cookie required\n")
        if who.role not in roles:
            raise web.HTTPForbidden(text=f"role {who.role!r} may not do this\n")
        return who

    def _bearer(self, given: str) -> Caller:
        if not given.startswith("Bearer "):
            raise web.HTTPUnauthorized(text="bearer token required\n")
        secret = given[7:].encode()
        for name, tok in self.config.http.tokens.items():
            if hmac.compare_digest(secret, tok.token.encode()):
                person = self.config.supervisors.get(tok.supervisor) if tok.supervisor else None
                queues = None if person is None or person.queues is None \
                    else frozenset(person.queues)
                return Caller(tok.role, tok.agent, name, tok.phone, queues)
        raise web.HTTPUnauthorized(text="unknown token\n")

    def _session(self, request: web.Request) -> Caller:
        store = self.people()
        secret = request.cookies[COOKIE]
        session = store.session(secret) if store is not None and len(secret) <= 128 else None
        if session is None:
            raise web.HTTPUnauthorized(text="session expired or unknown: log in again\n")
        if request.method not in SAFE_METHODS:
            token = request.headers.get(CSRF_HEADER, "")
            if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
                raise web.HTTPForbidden(text="CSRF token missing or wrong\n")
        user = session.user
        person = self.config.supervisors.get(user.name)
        return Caller(user.role, user.agent, user.name, person.phone if person else None,
                      user.queues, secret)


def session_json(user, csrf: str) -> dict:
    return {"user": user.name, "role": user.role, "agent": user.agent,
            "queues": None if user.queues is None else sorted(user.queues), "csrf": csrf}


def add_auth_routes(app: web.Application, auth: Authenticator) -> None:
    settings = auth.config.auth

    def store():
        people = auth.people()
        if people is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        return people

    async def login(request: web.Request) -> web.Response:
        body = await read_body(request, LoginBody)
        people = store()
        result = await asyncio.to_thread(people.check_login, body.username, body.password)
        if result.locked_for > 0:
            wait = math.ceil(result.locked_for)
            log.warning("console login locked out", user=body.username, seconds=wait)
            raise web.HTTPTooManyRequests(
                headers={"Retry-After": str(wait)},
                text=f"too many wrong passwords: locked for {wait} s\n")
        if result.user is None:
            log.warning("console login refused", user=body.username)
            raise web.HTTPUnauthorized(text="wrong user name or password\n")
        secret, csrf = await asyncio.to_thread(people.open_session, result.user.name)
        log.info("console login", user=result.user.name, role=result.user.role)
        response = web.json_response(session_json(result.user, csrf))
        response.set_cookie(COOKIE, secret, path="/", httponly=True, samesite="Strict",
                            secure=settings.cookie_secure or None,
                            max_age=int(settings.session_ttl))
        return response

    async def logout(request: web.Request) -> web.Response:
        who = auth(request, PEOPLE)
        if who.session is None:
            raise web.HTTPBadRequest(text="no session to end: log out ends a cookie's session\n")
        await asyncio.to_thread(store().end_session, who.session)
        log.info("console logout", user=who.name)
        response = web.json_response({"user": who.name, "logged_out": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(request: web.Request) -> web.Response:
        people = store()
        secret = request.cookies.get(COOKIE, "")
        current = people.session(secret) if secret and len(secret) <= 128 else None
        if current is None:
            raise web.HTTPUnauthorized(text="not logged in\n")
        return web.json_response(session_json(current.user, current.csrf))

    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/session", session)
