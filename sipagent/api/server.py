"""The engine's HTTP server, on the same asyncio loop as pjsua2.

- ``/metrics`` for Prometheus (a bearer token only when ``http.metrics_token``
  is set) and ``/healthz`` for liveness;
- ``/api/...`` JSON, every route behind a bearer token from ``[http.tokens]``
  whose role allows it: ``supervisor``/``admin`` see and steer everything,
  ``agent`` only its own agent, ``callback`` only posts callback requests.
"""
from __future__ import annotations

import hmac
import math
import re
import time
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sipagent.api.json_body import json_object

AGENT_COMMANDS = {"login", "logout", "ready", "pause", "end_wrap_up"}
_NUMBER = re.compile(r"^\+?[0-9*#]{2,32}$")


class _Caller:
    def __init__(self, role: str, agent: str | None):
        self.role, self.agent = role, agent


def _authenticate(config, request: web.Request, roles: set[str]) -> _Caller:
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        raise web.HTTPUnauthorized(text="bearer token required\n")
    secret = given[7:].encode()
    for tok in config.http.tokens.values():
        if hmac.compare_digest(secret, tok.token.encode()):
            if tok.role not in roles:
                raise web.HTTPForbidden(text=f"role {tok.role!r} may not do this\n")
            return _Caller(tok.role, tok.agent)
    raise web.HTTPUnauthorized(text="unknown token\n")


def _finite(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def build_app(engine) -> web.Application:
    app = web.Application()
    config = engine.config
    metrics_token = config.http.metrics_token

    async def metrics(request: web.Request) -> web.Response:
        if metrics_token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {metrics_token}".encode()):
                return web.Response(status=401, text="bearer token required\n")
        body = generate_latest(engine.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "active_calls": len(engine.legs),
                                  "capacity": engine.capacity})

    async def list_agents(request: web.Request) -> web.Response:
        who = _authenticate(config, request, {"admin", "supervisor", "agent"})
        agents = engine.queues.agents()
        if who.role == "agent":
            agents = [a for a in agents if a["agent"] == who.agent]
        return web.json_response({"agents": agents})

    async def agent_command(request: web.Request) -> web.Response:
        who = _authenticate(config, request, {"admin", "supervisor", "agent"})
        agent_id, command = request.match_info["agent"], request.match_info["command"]
        if who.role == "agent" and who.agent != agent_id:
            raise web.HTTPForbidden(text="an agent token controls only its own agent\n")
        if command not in AGENT_COMMANDS:
            raise web.HTTPNotFound(text=f"unknown command {command!r}; one of "
                                        f"{', '.join(sorted(AGENT_COMMANDS))}\n")
        if agent_id not in engine.queues.lines:
            raise web.HTTPNotFound(text=f"unknown agent {agent_id!r}\n")
        body = await json_object(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 64:
            raise web.HTTPBadRequest(text="reason must be a string of at most 64 characters\n")
        engine.queues.agent_command(agent_id, command, reason)
        state = next(a for a in engine.queues.agents() if a["agent"] == agent_id)
        return web.json_response(state)

    async def list_queues(request: web.Request) -> web.Response:
        _authenticate(config, request, {"admin", "supervisor"})
        snap = engine.queues.snapshot()
        windows: dict = {}
        for queue, window, kpi, labels, value in engine.queues.stats.window_gauges(time.time()):
            key = kpi if not labels else f"{kpi}:{labels['variant']}:{labels['threshold']}"
            windows.setdefault(queue, {}).setdefault(window, {})[key] = _finite(value)
        return web.json_response({"queues": {
            q: {"waiting": snap["waiting"][q], "agents": snap["agents"][q],
                "oldest_wait": snap["oldest_wait"][q], "kpi": windows.get(q, {})}
            for q in snap["waiting"]}})

    async def post_callback(request: web.Request) -> web.Response:
        _authenticate(config, request, {"admin", "supervisor", "callback"})
        body = await json_object(request)
        number, queue, at = body.get("number"), body.get("queue"), body.get("at")
        if not isinstance(number, str) or not _NUMBER.match(number):
            raise web.HTTPBadRequest(text="number: digits (optionally a leading +) required\n")
        if queue not in config.queues:
            raise web.HTTPBadRequest(text=f"queue: unknown queue {queue!r}\n")
        if not config.queues[queue].callback_uri:
            raise web.HTTPBadRequest(text=f"queue: {queue!r} has no callback_uri configured\n")
        when = None
        if at is not None:
            try:
                when = datetime.fromisoformat(at).timestamp()
            except (TypeError, ValueError):
                raise web.HTTPBadRequest(text="at: an ISO 8601 time expected\n") from None
        call_id = engine.queues.callbacks.request_web(number, queue, when)
        return web.json_response({"callback": call_id, "queue": queue}, status=202)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/agents", list_agents)
    app.router.add_post("/api/agents/{agent}/{command}", agent_command)
    app.router.add_get("/api/queues", list_queues)
    app.router.add_post("/api/callbacks", post_callback)
    if engine.voicemail is not None:
        from sipagent.api.voicemail import add_voicemail_routes

        add_voicemail_routes(app, engine.voicemail,
                             lambda request, roles: _authenticate(config, request, roles))
    if getattr(engine, "fax_store", None) is not None:
        from sipagent.api.fax import add_fax_routes

        add_fax_routes(app, engine.fax_store,
                       lambda request, roles: _authenticate(config, request, roles),
                       on_job=getattr(engine, "fax_dialer_wake", None))
    return app


async def start_http(engine) -> web.AppRunner:
    runner = web.AppRunner(build_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, str(engine.config.http.listen), engine.config.http.port)
    await site.start()
    return runner
