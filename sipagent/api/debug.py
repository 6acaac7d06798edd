"""``GET /api/debug/invariants``: the queue runtime's invariants, checked now
(sipagent/queue/invariants.py says which).  For tests and for an operator
who suspects a stuck agent; it changes nothing.  ``?quiet=1`` adds the
checks of an idle engine (no live legs, entries, offers, recordings, no
agent busy or ringing).  ``admin`` and ``supervisor`` tokens only.

The answer: ``{"problems": ["..."], "legs": n, "entries": n, "offers": n,
"conversations": n, "recordings": n, "agents": {state: n}}``.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable

from aiohttp import web
from pydantic import BeforeValidator

from sipagent.api.request_input import QueryParameters, blank_is_absent, read_query
from sipagent.queue.invariants import counts, problems

Authenticate = Callable[[web.Request, set[str]], Any]


class InvariantsQuery(QueryParameters):
    quiet: Annotated[bool | None, BeforeValidator(blank_is_absent)] = None


def add_debug_routes(app: web.Application, engine, authenticate: Authenticate) -> None:
    async def invariants(request: web.Request) -> web.Response:
        authenticate(request, {"admin", "supervisor"})
        query = read_query(request, InvariantsQuery)
        runtime = engine.queues
        if runtime is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        legs = list(engine.legs)
        return web.json_response({"problems": problems(runtime, legs, quiet=bool(query.quiet)),
                                  **counts(runtime, legs)})

    app.router.add_get("/api/debug/invariants", invariants)
