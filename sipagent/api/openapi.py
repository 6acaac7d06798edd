"""The HTTP API described as an OpenAPI 3.1 document, at ``GET /api/openapi.json``.

The description is a table written by hand, one :class:`Operation` per
route, next to nothing else: what a route does is decided in its module,
what it promises is written here, and ``tests/test_openapi.py`` holds the
two together (every route the app serves is in the table, every operation
in the table is served).  Request bodies and query parameters are the
pydantic models the routes themselves read, so their schemas cannot drift
from what is accepted.

Roles are in each operation's ``x-roles`` (the bearer token's or the
logged-in user's role that may call it); an ``agent`` is further limited to
itself and its own calls, a scoped supervisor to its queues.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from sipagent.api import (admin, auth, calls, debug, desktop, events, fax, outbound, pickup,
                          reports, voicemail)
from sipagent.api.agent_bodies import AgentCommand, CallbackRequest

__all__ = ["Operation", "OPERATIONS", "document", "add_openapi_route"]

ALL = ("admin", "supervisor", "agent")
STAFF = ("admin", "supervisor")
ADMIN = ("admin",)
# A route's path parameters: aiohttp's ``{name}`` is OpenAPI's too.
_PARAM = re.compile(r"{([^}/]+)}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    roles: tuple[str, ...] = STAFF       # () : no credentials needed
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    produces: str = "application/json"
    consumes: str | None = None          # a raw upload (a TIFF, a WAV): its media type
    ok: int = 200


def _ops(*rows: Operation) -> tuple[Operation, ...]:
    return rows


OPERATIONS: tuple[Operation, ...] = _ops(
    Operation("GET", "/metrics", "Prometheus metrics (a bearer token only when "
              "http.metrics_token is set)", (), produces="text/plain"),
    Operation("GET", "/healthz", "Liveness: active calls and capacity", ()),
    Operation("GET", "/api/openapi.json", "This document", ()),
    Operation("GET", "/", "The web console (its pages log in with /api/login)", (),
              produces="text/html"),
    Operation("GET", "/console/{path}", "The console's scripts and styles", (),
              produces="text/javascript"),
    # agents, queues, callbacks
    Operation("GET", "/api/agents", "Agents: ACD state, pause reason, current call", ALL),
    Operation("POST", "/api/agents/{agent}/{command}", "Agent control: login, logout, ready, "
              "pause (with a reason), end_wrap_up; 409 when the state does not allow it", ALL,
              body=AgentCommand),
    Operation("POST", "/api/agents/{agent}/dial", "Click-to-call: ring the agent's phone, "
              "then dial the number", ALL, body=outbound.DialBody, ok=202),
    Operation("GET", "/api/queues", "Queues: waiting, agents by state, oldest wait, KPI "
              "windows"),
    Operation("POST", "/api/callbacks", "A web callback request", STAFF + ("callback",),
              body=CallbackRequest, ok=202),
    Operation("GET", "/api/callbacks", "Pending callback requests"),
    # call operations
    Operation("GET", "/api/calls", "Connected queue calls: phase, talk and hold time", ALL),
    Operation("POST", "/api/calls/{call}/hold", "The caller hears the queue's music", ALL),
    Operation("POST", "/api/calls/{call}/resume", "Caller and agent talk again", ALL),
    Operation("POST", "/api/calls/{call}/transfer", "Blind transfer to queue:, agent:, flow:, "
              "mailbox:, number:, a sip: URI or an extension", ALL, body=calls.TransferBody),
    Operation("POST", "/api/calls/{call}/consult", "Attended transfer: the caller holds, the "
              "target rings", ALL, body=calls.TransferBody),
    Operation("POST", "/api/calls/{call}/consult/complete", "The agent leaves; caller and "
              "target talk", ALL),
    Operation("POST", "/api/calls/{call}/consult/cancel", "The target is hung up; caller and "
              "agent talk", ALL),
    Operation("POST", "/api/calls/{call}/conference", "Caller, agent and target together", ALL),
    Operation("POST", "/api/calls/{call}/monitor", "A supervisor listens, whispers or barges "
              "in (rings the supervisor's phone)", STAFF, body=calls.MonitorBody),
    Operation("POST", "/api/calls/{call}/recording", "Start, pause, resume or stop the call's "
              "recording", ALL, body=calls.RecordingBody),
    Operation("POST", "/api/calls/{call}/pickup", "Take a ringing call onto another agent's "
              "phone", ALL, body=pickup.PickupBody),
    Operation("GET", "/api/recordings/{recording}", "A recording's record and segments", ALL),
    Operation("GET", "/api/recordings/{recording}/segments/{segment}", "A segment as stereo "
              "WAV (caller left, agent right)", ALL, produces="audio/wav"),
    # wallboard and reports (sipagent/api/wallboard.py, reports.py)
    Operation("GET", "/api/wallboard", "Per queue: waiting, longest wait, EWT, agents by "
              "state, and the KPIs of today and the last 15 minutes"),
    Operation("GET", "/api/reports/intervals", "KPIs per queue and 15m/1h/1d interval of "
              "local days (JSON, or CSV with format=csv)", query=reports.ReportQuery,
              produces="application/json"),
    Operation("GET", "/api/reports/agents", "Per agent and interval: handled, talk, AHT, "
              "pause time, occupancy (JSON, or CSV with format=csv)", query=reports.ReportQuery),
    Operation("POST", "/api/reports/whatif", "A logged day replayed with N agents: predicted "
              "SL and abandon rate per interval beside the actual", body=reports.WhatIfBody),
    Operation("GET", "/api/debug/invariants", "Every agent in one state, every call in one "
              "place: the engine's own check", query=debug.InvariantsQuery),
    # the public event stream (sipagent/api/events.py, docs/events.md)
    Operation("GET", "/api/events", "Server-Sent Events: every event the filters pass; resume "
              "after the Last-Event-ID header (or last_event_id)", ALL, query=events.EventsQuery,
              produces="text/event-stream"),
    Operation("GET", "/api/events/history", "Stored events after a sequence id, oldest first",
              ALL, query=events.HistoryQuery),
    # voicemail
    # people: logins, the agent desktop, live channels, admin (api/auth, desktop, admin)
    Operation("POST", "/api/login", "Log in: the session cookie and its CSRF token; 429 "
              "while locked out", (), body=auth.LoginBody),
    Operation("POST", "/api/logout", "End the cookie's session", ALL),
    Operation("GET", "/api/session", "The logged-in user and the CSRF token", ()),
    Operation("GET", "/api/me", "Who is asking; an agent's own row", ALL),
    Operation("GET", "/api/calls/{call}/pop", "Screen pop: caller, display name, IVR "
              "choices, flow data, the caller's past calls", ALL),
    Operation("POST", "/api/calls/{call}/disposition", "The after-call code and note, into "
              "the call record", ALL, body=desktop.DispositionBody),
    Operation("GET", "/api/channels", "Every live leg: in a flow, waiting, ringing, "
              "connected, click-to-call", ALL),
    Operation("GET", "/api/admin/agents", "Agents as configured, with their live rows", ADMIN),
    Operation("POST", "/api/admin/agents", "Add an agent at run time", ADMIN,
              body=admin.AgentBody, ok=201),
    Operation("GET", "/api/admin/agents/{agent}", "An agent as configured", ADMIN),
    Operation("PUT", "/api/admin/agents/{agent}", "Change an agent (409 while engaged)", ADMIN,
              body=admin.AgentBody),
    Operation("DELETE", "/api/admin/agents/{agent}", "Log an agent out and remove it", ADMIN),
    Operation("GET", "/api/admin/users", "Console users", ADMIN),
    Operation("POST", "/api/admin/users", "Add a console user", ADMIN, body=admin.UserBody,
              ok=201),
    Operation("GET", "/api/admin/users/{user}", "A console user", ADMIN),
    Operation("PUT", "/api/admin/users/{user}", "Change a user's role, password, scope", ADMIN,
              body=admin.UserBody),
    Operation("DELETE", "/api/admin/users/{user}", "Remove a user (its sessions end)", ADMIN),
    Operation("GET", "/api/admin/audit", "Who changed what, before and after, when", ADMIN,
              query=admin.AuditQuery),
    Operation("GET", "/api/voicemail", "Mailboxes", ALL),
    Operation("GET", "/api/voicemail/{box}", "A mailbox's settings and counts", ALL),
    Operation("PATCH", "/api/voicemail/{box}", "Change a mailbox's settings", ALL,
              body=voicemail.MailboxSettings),
    Operation("PUT", "/api/voicemail/{box}/pin", "Set the mailbox PIN", ALL,
              body=voicemail.PinChange),
    Operation("GET", "/api/voicemail/{box}/greetings/{kind}", "A greeting (WAV)", ALL,
              produces="audio/wav"),
    Operation("PUT", "/api/voicemail/{box}/greetings/{kind}", "Upload a greeting (WAV)", ALL,
              consumes="audio/wav"),
    Operation("DELETE", "/api/voicemail/{box}/greetings/{kind}", "Remove a greeting", ALL),
    Operation("GET", "/api/voicemail/{box}/messages", "Messages", ALL,
              query=voicemail.MessageFilter),
    Operation("GET", "/api/voicemail/{box}/messages/{id}", "A message's record", ALL),
    Operation("PATCH", "/api/voicemail/{box}/messages/{id}", "Move a message to a folder", ALL,
              body=voicemail.MessageMove),
    Operation("DELETE", "/api/voicemail/{box}/messages/{id}", "Delete a message", ALL),
    Operation("GET", "/api/voicemail/{box}/messages/{id}/audio", "A message's audio (WAV)",
              ALL, produces="audio/wav"),
    # fax
    Operation("GET", "/api/fax/documents", "The fax-on-demand library"),
    Operation("GET", "/api/fax/documents/{number}", "A document's record"),
    Operation("GET", "/api/fax/documents/{number}/tiff", "A document's TIFF",
              produces="image/tiff"),
    Operation("POST", "/api/fax/documents/{number}", "Add a document (the body is a TIFF or "
              "PDF)", ADMIN, query=fax.NewDocument, consumes="application/octet-stream",
              ok=201),
    Operation("PUT", "/api/fax/documents/{number}", "Replace a document's content", ADMIN,
              query=fax.NewContent, consumes="application/octet-stream"),
    Operation("PUT", "/api/fax/documents/{number}/pin", "Set or clear a document's PIN", ADMIN,
              body=fax.DocumentPin),
    Operation("DELETE", "/api/fax/documents/{number}", "Remove a document", ADMIN),
    Operation("GET", "/api/fax/jobs", "Outgoing fax jobs", query=fax.JobFilter),
    Operation("POST", "/api/fax/jobs", "Queue a fax to a number", ADMIN,
              body=fax.FaxJobRequest, ok=202),
    Operation("GET", "/api/fax/jobs/{id}", "A fax job"),
    Operation("DELETE", "/api/fax/jobs/{id}", "Cancel a fax job", ADMIN),
    Operation("GET", "/api/fax/log", "Sent and received faxes", query=fax.FaxLogFilter),
    Operation("GET", "/api/fax/log/{id}", "A fax's record"),
    Operation("GET", "/api/fax/log/{id}/pdf", "A fax as PDF", produces="application/pdf"),
    Operation("GET", "/api/fax/log/{id}/tiff", "A fax as TIFF", produces="image/tiff"),
)


def _hoist(schema: dict, components: dict) -> dict:
    """A model's JSON schema with its ``$defs`` moved to the components.

    A field whose default is None but whose type refuses null (a PATCH
    body's "not given", e.g. ``MailboxSettings``) loses the default: absent
    means unchanged, and null is not a value it accepts."""
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and "anyOf" not in prop \
                and prop.get("type") != "null":
            del prop["default"]
    return schema


def _model_schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components[model.__name__] = _hoist(schema, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel], components: dict) -> list[dict]:
    schema = _hoist(model.model_json_schema(ref_template="#/components/schemas/{model}"),
                    components)
    required = set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _operation(op: Operation, components: dict) -> dict:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', op.path)}",
        "x-roles": list(op.roles),
        "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                       for n in _PARAM.findall(op.path)],
        "responses": {
            str(op.ok): {"description": "done",
                         "content": {op.produces: {"schema": {}}}},
            "400": {"description": "a body or parameter the engine cannot use (the text "
                                   "names it)"},
            "404": {"description": "no such resource"},
        },
    }
    if op.roles:
        out["responses"]["401"] = {"description": "no credentials, or unknown ones"}
        out["responses"]["403"] = {"description": "the role may not do this, or a "
                                                  "cookie request without its CSRF token"}
    else:
        out["security"] = []
    if op.query is not None:
        out["parameters"] += _query_parameters(op.query, components)
    if op.body is not None:
        out["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": _model_schema(op.body, components)}}}
    elif op.consumes:
        out["requestBody"] = {"required": True, "content": {
            op.consumes: {"schema": {"type": "string", "format": "binary"}}}}
    return out


def document(version: str = "0") -> dict:
    components: dict[str, Any] = {}
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "sipacd", "version": version,
                 "description": "The call-center engine's HTTP API. Machines use a bearer "
                                "token from [http.tokens]; people log in "
                                "(POST /api/login) and send the session cookie plus the "
                                "X-CSRF-Token header on every state-changing request."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sipacd_session"},
            },
        },
    }


def add_openapi_route(app: web.Application, version: str = "0") -> None:
    body = document(version)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get("/api/openapi.json", openapi)
