"""Call pickup over the HTTP API.

======  ===============================  ==============================================
POST    /api/calls/{id}/pickup           ``{"agent": "bob"}``: ring bob's phone; when he
                                         answers, he takes the call if it still rings
======  ===============================  ==============================================

``admin`` and ``supervisor`` tokens may have any agent pick up; an
``agent`` token only itself (``agent`` may then be left out).  202: bob's
phone is ringing; the pickup itself is decided when he answers
(sipagent/queue/pickup.py): if the call was answered, picked up or gone by
then, his leg is hung up and nothing else changes.  400: a bad body or an
unknown agent; 403: an agent token naming another agent; 404: no call with
that id is ringing now; 409: the agent does not serve the call's queue.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable

from aiohttp import web
from pydantic import Field

from sipagent.api.request_input import JsonBody, read_body

Authenticate = Callable[[web.Request, set[str]], Any]
ACTORS = {"admin", "supervisor", "agent"}


class PickupBody(JsonBody):
    agent: Annotated[str, Field(min_length=1, max_length=128)] | None = None


def add_pickup_routes(app: web.Application, runtime: Callable[[], Any],
                      authenticate: Authenticate) -> None:
    async def pickup(request: web.Request) -> web.Response:
        who = authenticate(request, ACTORS)
        call_id = request.match_info["call"]
        queues = runtime()
        if queues is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        # 404 before the body is read, as the other /api/calls routes do.
        entry = queues.pickup.ringing_call(call_id)
        if entry is None:
            raise web.HTTPNotFound(text=f"no call {call_id!r} is ringing: nothing to pick up\n")
        body = await read_body(request, PickupBody)
        agent = body.agent or (who.agent if who.role == "agent" else None)
        if agent is None:
            raise web.HTTPBadRequest(text="agent: required\n")
        if who.role == "agent" and agent != who.agent:
            raise web.HTTPForbidden(text=f"agent: an agent token picks up for itself only "
                                         f"({who.agent!r})\n")
        if agent not in queues.lines:
            raise web.HTTPBadRequest(text=f"agent: no agent {agent!r}\n")
        if entry.queue not in queues.agent_queues(agent):
            raise web.HTTPConflict(text=f"agent: {agent!r} does not serve queue "
                                        f"{entry.queue!r}\n")
        queues.pickup.ring_agent(call_id, agent)
        return web.json_response({"call_id": call_id, "agent": agent, "status": "ringing"},
                                 status=202)

    app.router.add_post("/api/calls/{call}/pickup", pickup)
