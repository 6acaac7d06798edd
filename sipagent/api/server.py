"""The engine's HTTP server, on the same asyncio loop as pjsua2.

- ``/metrics`` for Prometheus (a bearer token only when ``http.metrics_token``
  is set) and ``/healthz`` for liveness;
- ``/api/...`` JSON, every route behind a bearer token from ``[http.tokens]``
  whose role allows it: ``supervisor``/``admin`` see and steer everything,
  ``agent`` only its own agent, ``callback`` only posts callback requests.

Bodies and query parameters are read by ``sipagent.api.request_input`` (a
400 names the field).  An agent command the agent's state does not allow is
a 409; a web callback's ``at`` is ISO 8601, at most
``agent_bodies.CALLBACK_PAST_TOLERANCE`` back and ``CALLBACK_HORIZON_DAYS`` ahead, and the
answer gives its id and the time it is due (UTC).  ``GET /api/callbacks``
lists the pending requests (scheduled, waiting in line, or being called).
"""
from __future__ import annotations

import hmac
import math
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acdcore.states import AGENT_INPUT_NAMES, AGENT_STATE_NAMES, AGENT_TRANSITIONS
from sipagent.api.admin import add_admin_routes
from sipagent.api.auth import Authenticator, Caller, add_auth_routes
from sipagent.api.calls import add_call_routes
from sipagent.api.console import add_console_routes
from sipagent.api.desktop import add_desktop_routes
from sipagent.api.outbound import add_outbound_routes
from sipagent.api.pickup import add_pickup_routes
from sipagent.api.debug import add_debug_routes
from sipagent.api.events import add_event_routes
from sipagent.api.openapi import add_openapi_route
from sipagent.api.agent_bodies import AgentCommand, CallbackRequest
from sipagent.api.reports import add_report_routes
from sipagent.api.request_input import read_body
from sipagent.api.wallboard import add_wallboard_routes

# Each command is an input of the ACD's agent state machine, which refuses
# one its table has no entry for (pause while logged out, say): that is a 409.
_COMMAND_INPUTS = {"login": "login", "logout": "logout", "ready": "ready", "pause": "pause",
                   "end_wrap_up": "wrap_done"}
AGENT_COMMANDS = set(_COMMAND_INPUTS)


AUTH = web.AppKey("auth", Authenticator)


def _authenticate(config, request: web.Request, roles: set[str]) -> Caller:
    """The app's :class:`~sipagent.api.auth.Authenticator` (bearer token or
    session cookie); kept under this name for route modules written against it."""
    return request.app[AUTH](request, roles)


def _allowed(command: str, state: str) -> bool:
    moves = AGENT_TRANSITIONS[AGENT_STATE_NAMES.index(state)]
    return AGENT_INPUT_NAMES.index(_COMMAND_INPUTS[command]) in moves


def _finite(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def build_app(engine) -> web.Application:
    app = web.Application()
    config = engine.config
    auth = app[AUTH] = Authenticator(config, lambda: getattr(engine, "people", None))
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
        elif who.queues is not None:       # a scoped supervisor: its queues' agents
            agents = [a for a in agents
                      if who.queues.intersection(engine.queues.agent_queues(a["agent"]))]
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
        body = await read_body(request, AgentCommand)
        state = agent_row(agent_id)["state"]
        if not _allowed(command, state):
            raise web.HTTPConflict(text=f"agent {agent_id!r} cannot {command} while {state}\n")
        engine.queues.agent_command(agent_id, command, body.reason)
        return web.json_response(agent_row(agent_id))

    def agent_row(agent_id: str) -> dict:
        return next(a for a in engine.queues.agents() if a["agent"] == agent_id)

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
        body = await read_body(request, CallbackRequest)
        queue = body.queue
        if queue not in config.queues:
            raise web.HTTPBadRequest(text=f"queue: unknown queue {queue!r}\n")
        if not config.queues[queue].callback_uri:
            raise web.HTTPBadRequest(text=f"queue: {queue!r} has no callback_uri configured\n")
        call_id = engine.queues.callbacks.request_web(body.number, queue, body.at)
        job = engine.queues.callbacks.describe(call_id)
        return web.json_response({"callback": call_id, "queue": queue, "at": job["at"],
                                  "scheduled": job["scheduled"]}, status=202)

    async def list_callbacks(request: web.Request) -> web.Response:
        _authenticate(config, request, {"admin", "supervisor"})
        return web.json_response({"callbacks": engine.queues.callbacks.pending()})

    add_outbound_routes(app, lambda: engine.queues, config, lambda r, roles: _authenticate(config, r, roles))
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/agents", list_agents)
    app.router.add_post("/api/agents/{agent}/{command}", agent_command)
    app.router.add_get("/api/queues", list_queues)
    app.router.add_post("/api/callbacks", post_callback)
    app.router.add_get("/api/callbacks", list_callbacks)
    add_call_routes(app, lambda: engine.queues,
                    lambda request, roles: _authenticate(config, request, roles))
    add_auth_routes(app, auth)
    add_admin_routes(app, engine, auth)
    add_desktop_routes(app, engine, auth)
    add_pickup_routes(app, lambda: engine.queues,
                      lambda request, roles: _authenticate(config, request, roles))
    add_debug_routes(app, engine, lambda request, roles: _authenticate(config, request, roles))
    add_openapi_route(app)
    add_wallboard_routes(app, lambda: engine.queues, config, lambda r, roles: _authenticate(config, r, roles))
    add_report_routes(app, lambda: engine.queues, config, lambda r, roles: _authenticate(config, r, roles))
    add_event_routes(app, lambda: getattr(engine, "events", None), lambda request, roles: _authenticate(config, request, roles), known_queues=lambda: config.queues, queues_of=getattr(engine, "agent_queues", lambda agent: ()), heartbeat=config.events.heartbeat, client_buffer=config.events.client_buffer)  # noqa: E501
    add_console_routes(app)
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
