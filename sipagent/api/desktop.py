"""The agent desktop's part of the HTTP API, and the live channels list.

======  ================================  ===========================================
GET     /api/me                           who is logged in; for an agent its row
                                          (state, since, pause reason, call, ringing)
GET     /api/calls/{id}/pop               screen pop: caller, caller_name (the From
                                          display name), called, queue, the caller's
                                          IVR choices, the flow's data, and the
                                          caller's recent calls (call records)
POST    /api/calls/{id}/disposition       ``{"code", "note"}``: the after-call code
                                          (``[desktop] dispositions``) on the call's
                                          record; 400 for a code not configured
GET     /api/channels                     every live leg: calls in a flow (flow,
                                          seconds), waiting callers (queue, position,
                                          wait), agents' phones ringing, connected
                                          calls (agent, talk seconds, phase),
                                          click-to-call legs
======  ================================  ===========================================

An agent sees only its own: the pop of a call offered to it or that it
took, the disposition of a call it handled (during the call, in wrap-up
or later), the channels it is on.  A supervisor scoped to queues sees
only those queues' calls.  Everything is data in JSON: a caller's name or
a flow's data is returned as given (a name may hold ``<script>``); the
console inserts text, never markup.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Annotated

from aiohttp import web
from pydantic import Field

from sipagent.api.auth import Authenticator, Caller
from sipagent.api.request_input import JsonBody, read_body
from sipagent.queue.entry import EntryState
from sipagent.sip.message import display_name
from sipagent.store.eventlog import read_only

PEOPLE = {"admin", "supervisor", "agent"}
SUPERVISORS = {"admin", "supervisor"}
_CDR_COLUMNS = ("call_id", "start", "end", "caller", "caller_name", "called", "queue", "agent",
                "outcome", "wait", "talk", "disposition", "disposition_note")


class DispositionBody(JsonBody):
    code: Annotated[str, Field(min_length=1, max_length=40)]
    note: Annotated[str, Field(max_length=2000)] = ""


def add_desktop_routes(app: web.Application, engine, auth: Authenticator) -> None:
    config = engine.config

    def runtime():
        if engine.queues is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        return engine.queues

    def cdr_rows(sql: str, args: tuple) -> list[dict]:
        """Call records (blocking: run in a thread); none before the first call."""
        log = getattr(engine, "eventlog", None)
        if log is None:
            return []
        log.flush(timeout=2.0)
        try:
            conn = read_only(log.source)
        except (FileNotFoundError, sqlite3.Error):
            return []
        try:
            columns = ", ".join(f'"{c}"' for c in _CDR_COLUMNS)
            return [dict(zip(_CDR_COLUMNS, r)) for r in
                    conn.execute(f"SELECT {columns} FROM call_record {sql}", args).fetchall()]
        finally:
            conn.close()

    async def record_of(call_id: str) -> dict | None:
        rows = await asyncio.to_thread(cdr_rows, "WHERE call_id = ?", (call_id,))
        return rows[0] if rows else None

    def may_see(who: Caller, queue: str | None, agents: set[str]) -> bool:
        if who.role == "agent":
            return who.agent in agents
        return who.queues is None or queue in who.queues

    async def me(request: web.Request) -> web.Response:
        who = auth(request, PEOPLE)
        row = None
        if who.agent is not None and engine.queues is not None:
            row = next((r for r in engine.queues.agents() if r["agent"] == who.agent), None)
        return web.json_response({"user": who.name, "role": who.role, "agent": who.agent,
                                  "queues": None if who.queues is None else sorted(who.queues),
                                  "via": "session" if who.session else "token", "row": row,
                                  "dispositions": list(config.desktop.dispositions)})

    async def pop(request: web.Request) -> web.Response:
        who = auth(request, PEOPLE)
        call_id = request.match_info["call"]
        rt = runtime()
        entry = rt.entries.get(call_id)
        if entry is not None:
            agents = {a for c, a in rt.offers if c == call_id} | {entry.agent_id}
            if not may_see(who, entry.queue, agents):
                raise web.HTTPNotFound(text=f"no call {call_id!r} for you\n")
            call = entry.call
            out = {"call_id": call_id, "caller": entry.caller, "called": entry.called,
                   "caller_name": display_name(getattr(call, "headers", None)) or None,
                   "queue": entry.queue, "agent": entry.agent_id,
                   "ivr": [dict(step) for step in getattr(call, "ivr", ())],
                   "data": dict(entry.data), "live": True}
        else:
            record = await record_of(call_id)
            if record is None or not may_see(who, record["queue"], {record["agent"]}):
                raise web.HTTPNotFound(text=f"no call {call_id!r} for you\n")
            out = {"call_id": call_id, "caller": record["caller"], "called": record["called"],
                   "caller_name": record["caller_name"], "queue": record["queue"], "agent": record["agent"],
                   "ivr": [], "data": {}, "live": False}
        limit = config.desktop.history_limit
        out["history"] = [] if not out["caller"] or not limit else await asyncio.to_thread(
            cdr_rows, 'WHERE caller = ? AND call_id != ? ORDER BY start DESC LIMIT ?',
            (out["caller"], call_id, limit))
        return web.json_response(out)

    async def disposition(request: web.Request) -> web.Response:
        who = auth(request, PEOPLE)
        call_id = request.match_info["call"]
        body = await read_body(request, DispositionBody)
        codes = config.desktop.dispositions
        if body.code not in codes:
            raise web.HTTPBadRequest(text=f"code: unknown disposition {body.code!r} (configured: "
                                          f"{', '.join(codes) or 'none, see [desktop]'})\n")
        rt = runtime()
        entry = rt.entries.get(call_id)
        if entry is not None and entry.agent_id is not None:
            queue, agent = entry.queue, entry.agent_id
        else:
            record = await record_of(call_id)
            if record is None:
                raise web.HTTPNotFound(text=f"no call {call_id!r}\n")
            queue, agent = record["queue"], record["agent"]
        if not may_see(who, queue, {agent}) or (who.role == "agent" and agent is None):
            raise web.HTTPNotFound(text=f"no call {call_id!r} of yours\n")
        engine.eventlog.disposition(call_id, body.code, body.note or None)
        events = getattr(engine, "events", None)
        if events is not None:
            events.publish("wrapup.disposition", call_id=call_id, queue=queue, agent=agent,
                           code=body.code, note=body.note, user=who.name)
        return web.json_response({"call_id": call_id, "code": body.code, "note": body.note,
                                  "agent": agent, "queue": queue})

    async def channels(request: web.Request) -> web.Response:
        who = auth(request, PEOPLE)
        rt = runtime()
        now, legs = rt.now(), []
        for call_id, call in list(getattr(engine, "live_calls", {}).items()):
            if call_id not in rt.entries:
                legs.append({"kind": "flow", "call_id": call_id, "flow": call.flow,
                             "caller": call.caller, "called": call.called, "queue": None,
                             "agent": None, "seconds": round(max(0.0, time.time() - call.started),
                                                             3)})
        for entry in list(rt.entries.values()):
            base = {"call_id": entry.call_id, "caller": entry.caller, "called": entry.called,
                    "queue": entry.queue}
            if entry.state in (EntryState.WAITING, EntryState.CALLBACK):
                legs.append({**base, "kind": "waiting", "agent": None,
                             "position": _position(rt.scheduler, entry.call_id),
                             "seconds": round(now - entry.entered, 3),
                             "callback": entry.callback is not None})
            elif entry.state is EntryState.TALKING:
                c = entry.conversation
                legs.append({**base, "kind": "connected", "agent": entry.agent_id,
                             "seconds": round(now - (entry.answered_at or now), 3),
                             "phase": c.phase.value if c else None})
        for call_id, agent in list(rt.offers):
            entry = rt.entries.get(call_id)
            if entry is not None and entry.state is not EntryState.TALKING:
                legs.append({"kind": "ringing", "call_id": call_id, "caller": entry.caller,
                             "called": entry.called, "queue": entry.queue, "agent": agent})
        for agent, call in list(rt.outbound.calls.items()):
            legs.append({"kind": "outbound", "agent": agent, "queue": None, **call.row()})
        if who.role == "agent":
            legs = [leg for leg in legs if leg["agent"] == who.agent]
        elif who.queues is not None:
            legs = [leg for leg in legs if leg["queue"] in who.queues]
        return web.json_response({"channels": legs})

    app.router.add_get("/api/me", me)
    app.router.add_get("/api/calls/{call}/pop", pop)
    app.router.add_post("/api/calls/{call}/disposition", disposition)
    app.router.add_get("/api/channels", channels)


def _position(scheduler, call_id: str) -> int | None:
    try:
        return scheduler.queue_position(call_id)
    except Exception:       # a callback entry the core no longer holds
        return None
