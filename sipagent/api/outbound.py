"""Click-to-call in the HTTP API (JSON, bearer tokens).

======  ===========================  ==============================================
POST    /api/agents/{agent}/dial     ``{"number": "0301234567"}``: ring the agent's
                                     phone, then dial the number and bridge
======  ===========================  ==============================================

``admin`` and ``supervisor`` tokens may dial for any agent, an ``agent``
token only for its own.  202 with ``{"call_id", "agent", "number"}``: the
call goes on without the request (``GET /api/agents`` shows it as the
agent's ``call`` while it lives).  400: a body that is not a number; 403: a
call restriction refuses the number (the text names the rule; nothing
rings) or the token may not dial for this agent; 404: no such agent; 409:
the agent is not free to dial (the text says its state) or click-to-call is
not configured.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Callable

from aiohttp import web
from pydantic import AfterValidator

from sipagent.api.request_input import JsonBody, read_body
from sipagent.config.values import matching
from sipagent.queue.outbound import NotFree, OutboundOff, Refused

Authenticate = Callable[[web.Request, set[str]], Any]
# What a phone can dial: digits, * and #, an optional leading +.
_NUMBER = re.compile(r"\+?[0-9*#]{2,32}")


class DialBody(JsonBody):
    number: Annotated[str, AfterValidator(matching(
        _NUMBER, "2 to 32 digits, '*' or '#' (optionally a leading +) required"))]


def add_outbound_routes(app: web.Application, runtime: Callable[[], Any], config,
                        authenticate: Authenticate) -> None:
    """``config``: the engine's configuration (its ``[outbound]``, ``[sip]``
    and the trunk's registration).  Register before the generic
    ``/api/agents/{agent}/{command}`` route, which would take ``dial``."""
    registration = config.trunk.registration

    async def dial(request: web.Request) -> web.Response:
        who = authenticate(request, {"admin", "supervisor", "agent"})
        agent_id = request.match_info["agent"]
        if who.role == "agent" and who.agent != agent_id:
            raise web.HTTPForbidden(text="an agent token dials only for its own agent\n")
        body = await read_body(request, DialBody)
        queues = runtime()
        if queues is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        desk = queues.outbound
        desk.configure(config.outbound, config.sip, registration)
        try:
            call = desk.dial(agent_id, body.number, who.role)
        except KeyError:
            raise web.HTTPNotFound(text=f"unknown agent {agent_id!r}\n") from None
        except Refused as exc:
            raise web.HTTPForbidden(
                text=f"number: {body.number!r} refused by call restriction {exc.rule!r}\n"
            ) from None
        except (NotFree, OutboundOff) as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        return web.json_response({"call_id": call.call_id, "agent": agent_id,
                                  "number": body.number}, status=202)

    app.router.add_post("/api/agents/{agent}/dial", dial)
