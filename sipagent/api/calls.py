"""The call-operations part of the HTTP API (JSON, bearer tokens).

======  ===============================  ==============================================
GET     /api/calls                       connected queue calls: queue, caller, agent,
                                         phase (talking, held...), talk and hold time
POST    /api/calls/{id}/hold             the caller hears the queue's music
POST    /api/calls/{id}/resume           caller and agent talk again
POST    /api/calls/{id}/transfer         ``{"target": "queue:sales"}`` (blind); targets:
                                         ``queue:``, ``agent:``, ``flow:``, ``mailbox:``,
                                         ``number:``, a ``sip:`` URI, or an extension
POST    /api/calls/{id}/consult          ``{"target": "number:0301234"}``: attended
                                         transfer; the caller holds, the target rings;
                                         busy or no answer: the caller is back
POST    /api/calls/{id}/consult/complete the agent leaves, caller and target talk
POST    /api/calls/{id}/consult/cancel   the target is hung up, caller and agent talk
POST    /api/calls/{id}/conference       caller, agent and consulted target together
POST    /api/calls/{id}/monitor          ``{"mode": "listen"}`` (``whisper``, ``barge``)
                                         rings the supervisor's ``phone`` (the token's
                                         ``[supervisors.<id>]``, else the token's own,
                                         or ``"phone": "sip:..."``); digits switch modes
POST    /api/calls/{id}/recording        ``{"action": "start"}`` (``pause``, ``resume``,
                                         ``stop``): the call's recording, on demand
GET     /api/recordings/{id}             a recording's record: call id, queue, agents,
                                         segments (file, start, seconds, paused spans)
GET     /api/recordings/{id}/segments/{n}  segment n (1, 2 ...) as a stereo WAV:
                                         caller left, agent right
======  ===============================  ==============================================

``admin`` and ``supervisor`` tokens may act on any call; an ``agent`` token
only on its own calls, and never monitor; it reads only recordings of
calls it took part in.  400: a body or target the engine
cannot use (the text says why); 404: no such connected call (or, for an
agent, not its call); 409: the call cannot do that now (resume a call not
on hold, monitor a call already monitored); 403 also for a token naming a
supervisor whose ``queues`` do not include the call's queue.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable

from aiohttp import web
from pydantic import Field

from sipagent.api.request_input import JsonBody, read_body
from sipagent.config.values import AgentUri
from sipagent.queue.conversation import InvalidConversationMove
from sipagent.queue.operations import NotConnected
from sipagent.queue.recordings import RecordingRefused
from sipagent.queue.monitoring import OutOfScope
from sipagent.queue.transfer import BadTransferTarget, CallRestricted

Authenticate = Callable[[web.Request, set[str]], Any]
ACTORS = {"admin", "supervisor", "agent"}
SUPERVISORS = {"admin", "supervisor"}


class TransferBody(JsonBody):
    target: Annotated[str, Field(min_length=1, max_length=256)]


class RecordingBody(JsonBody):
    action: Annotated[str, Field(pattern=r"^(start|pause|resume|stop)$")]


class MonitorBody(JsonBody):
    mode: Annotated[str, Field(pattern=r"^(listen|whisper|barge)$")] = "listen"
    phone: AgentUri | None = None


def add_call_routes(app: web.Application, runtime: Callable[[], Any],
                    authenticate: Authenticate) -> None:
    def operations():
        queues = runtime()
        if queues is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        return queues.operations

    def own_call(request: web.Request, roles: set[str]):
        who = authenticate(request, roles)
        call_id = request.match_info["call"]
        ops = operations()
        try:
            entry, _ = ops.talking(call_id)
        except NotConnected as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
        if who.role == "agent" and entry.agent_id != who.agent:
            raise web.HTTPNotFound(text=f"no call {call_id!r} of agent {who.agent!r}\n")
        return who, ops, call_id

    async def list_calls(request: web.Request) -> web.Response:
        who = authenticate(request, ACTORS)
        calls = operations().conversations()
        if who.role == "agent":
            calls = [c for c in calls if c["agent"] == who.agent]
        scope = getattr(who, "queues", None)      # a supervisor scoped to some queues
        if who.role == "supervisor" and scope is not None:
            calls = [c for c in calls if c["queue"] in scope]
        return web.json_response({"calls": calls})

    async def transfer(request: web.Request) -> web.Response:
        _, ops, call_id = own_call(request, ACTORS)
        body = await read_body(request, TransferBody)
        try:
            target = ops.target(body.target)
            order = ops.transfer(call_id, target, origin="api")
        except CallRestricted as exc:
            raise web.HTTPForbidden(text=f"target: {exc}\n") from None
        except BadTransferTarget as exc:
            raise web.HTTPBadRequest(text=f"target: {exc}\n") from None
        except NotConnected as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        return web.json_response({"call_id": call_id, "transfer": ops.transfer_row(order)},
                                 status=202)

    async def consult(request: web.Request) -> web.Response:
        _, ops, call_id = own_call(request, ACTORS)
        body = await read_body(request, TransferBody)
        try:
            ops.consult(call_id, ops.target(body.target))
        except CallRestricted as exc:
            raise web.HTTPForbidden(text=f"target: {exc}\n") from None
        except BadTransferTarget as exc:
            raise web.HTTPBadRequest(text=f"target: {exc}\n") from None
        except (NotConnected, InvalidConversationMove) as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        return web.json_response({"call_id": call_id, "phase": "consulting",
                                  "target": body.target}, status=202)

    def step(name: str):
        """A move of the conversation that takes no body: hold, resume, the
        consultation's complete and cancel, conference."""
        async def route(request: web.Request) -> web.Response:
            _, ops, call_id = own_call(request, ACTORS)
            try:
                if name == "complete":
                    order = ops.complete_consult(call_id, origin="api")
                    return web.json_response({"call_id": call_id,
                                              "transfer": ops.transfer_row(order)})
                phase = {"hold": lambda: ops.hold(call_id),
                         "resume": lambda: ops.hold(call_id, resume=True),
                         "cancel": lambda: ops.cancel_consult(call_id),
                         "conference": lambda: ops.conference(call_id)}[name]()
            except (NotConnected, InvalidConversationMove) as exc:
                raise web.HTTPConflict(text=f"{exc}\n") from None
            return web.json_response({"call_id": call_id, "phase": phase})
        return route

    async def monitor(request: web.Request) -> web.Response:
        who, ops, call_id = own_call(request, SUPERVISORS)
        body = await read_body(request, MonitorBody)
        person = ops.supervisors.for_token(who.name)
        phone = body.phone or (person and person.phone) or who.phone
        if phone is None:
            raise web.HTTPBadRequest(text="phone: required (the token has no phone)\n")
        try:
            ops.monitor(call_id, ops.monitor_mode(body.mode), phone=phone,
                        supervisor=person.supervisor_id if person else who.name, person=person)
        except OutOfScope as exc:
            raise web.HTTPForbidden(text=f"{exc}\n") from None
        except NotConnected as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        return web.json_response({"call_id": call_id, "mode": body.mode, "phone": phone},
                                 status=202)

    async def recording(request: web.Request) -> web.Response:
        _, ops, call_id = own_call(request, ACTORS)
        body = await read_body(request, RecordingBody)
        try:
            return web.json_response({"call_id": call_id, **ops.recording(call_id, body.action)})
        except (RecordingRefused, NotConnected) as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None

    def readable_record(request: web.Request) -> dict:
        who = authenticate(request, ACTORS)
        recordings = operations().recordings
        meta = recordings.record(request.match_info["recording"]) if recordings else None
        if meta is None or (who.role == "agent" and who.agent not in meta["agents"]):
            raise web.HTTPNotFound(text="no such recording\n")
        return meta

    async def get_recording(request: web.Request) -> web.Response:
        return web.json_response(readable_record(request))

    async def get_segment(request: web.Request) -> web.Response:
        meta = readable_record(request)
        number = request.match_info["segment"]
        path = operations().recordings.audio_path(meta["recording_id"], int(number)) \
            if number.isdigit() else None
        if path is None:
            raise web.HTTPNotFound(text=f"recording {meta['recording_id']} has no segment "
                                        f"{number!r}\n")
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    app.router.add_get("/api/calls", list_calls)
    app.router.add_post("/api/calls/{call}/recording", recording)
    app.router.add_get("/api/recordings/{recording}", get_recording)
    app.router.add_get("/api/recordings/{recording}/segments/{segment}", get_segment)
    app.router.add_post("/api/calls/{call}/hold", step("hold"))
    app.router.add_post("/api/calls/{call}/resume", step("resume"))
    app.router.add_post("/api/calls/{call}/transfer", transfer)
    app.router.add_post("/api/calls/{call}/monitor", monitor)
    app.router.add_post("/api/calls/{call}/consult", consult)
    app.router.add_post("/api/calls/{call}/consult/complete", step("complete"))
    app.router.add_post("/api/calls/{call}/consult/cancel", step("cancel"))
    app.router.add_post("/api/calls/{call}/conference", step("conference"))
