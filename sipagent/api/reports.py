"""The console's reports, from the durable event log.

======  ========================  ================================================
GET     /api/reports/intervals    ``?from=YYYY-MM-DD&to=YYYY-MM-DD&interval=15m|1h|1d
                                  &queue=q&format=json|csv``: per queue and
                                  interval: offered, answered, abandoned, abandon
                                  rate, SL in every variant and threshold, ASA, AHT
GET     /api/reports/agents       same parameters: per agent and interval: handled,
                                  talk, wrap-up, AHT, busy / idle / pause time (by
                                  reason), offers, missed, occupancy
POST    /api/reports/whatif       ``{"date", "queue", "agents": N, "interval":
                                  "15m"|"1h", "seed"}``: the day replayed with N
                                  agents, predicted SL and abandon rate per
                                  interval beside the actual
======  ========================  ================================================

Dates are calendar days of ``[console] timezone``, ``to`` included.  The
work runs in a worker thread, never on the event loop, and is bounded
(``sipagent.store.intervals.MAX_DAYS`` / ``MAX_EVENTS``,
``sipagent.store.whatif.MAX_CALLS``): a request over a limit is a 400 that
names the parameter to change, as is any malformed one.  A scoped
supervisor reads only its queues (and the agents serving them).  CSV comes
as an attachment, cells that a spreadsheet would run as a formula
neutralised.
"""
from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated, Any, Callable, Literal

from aiohttp import web
from pydantic import BeforeValidator, Field, create_model

from sipagent.api.request_input import JsonBody, QueryParameters, read_body, read_query
from sipagent.store.intervals import (ReportLimit, agent_rows, check_size, interval_rows,
                                      span_of, to_csv)
from sipagent.store.whatif import whatif

Authenticate = Callable[[web.Request, set[str]], Any]
SUPERVISORS = {"admin", "supervisor"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_WHATIF_AGENTS = 2000


def _date(value: Any) -> date:
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("a calendar date YYYY-MM-DD expected")


Day = Annotated[date, BeforeValidator(_date)]


# Built with create_model because one parameter is the keyword "from": the
# field has the parameter's own name, so errors and the list of known
# parameters name it as the client wrote it.
ReportQuery = create_model(
    "ReportQuery", __base__=QueryParameters, __doc__="The report routes' query parameters.",
    **{"from": (Day, ...), "to": (Day, ...),
       "interval": (Literal["15m", "1h", "1d"], "1h"),
       "queue": (Annotated[str, Field(min_length=1, max_length=64)] | None, None),
       "format": (Literal["json", "csv"], "json")})


class WhatIfBody(JsonBody):
    date: Annotated[str, Field(max_length=10)]
    queue: Annotated[str, Field(min_length=1, max_length=64)]
    agents: Annotated[int, Field(ge=1, le=MAX_WHATIF_AGENTS)]
    interval: Literal["15m", "1h"] = "1h"
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


def add_report_routes(app: web.Application, runtime: Callable[[], Any], config,
                      authenticate: Authenticate) -> None:
    zone = config.console.zone

    def db_path():
        rt = runtime()
        if rt is None or rt.stats.log is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        return rt.stats.log.source

    def scoped_queue(who, queue: str | None) -> tuple[str | None, list[str]]:
        """The queue asked for (checked), and the queues the caller may read."""
        scope = getattr(who, "queues", None)
        allowed = [q for q in config.queues if scope is None or q in scope]
        if queue is not None:
            if queue not in config.queues:
                raise web.HTTPBadRequest(text=f"queue: unknown queue {queue!r}\n")
            if queue not in allowed:
                raise web.HTTPForbidden(text=f"queue: {queue!r} is not one of your queues\n")
        return queue, allowed

    def span(q):
        try:
            return span_of(getattr(q, "from"), q.to, q.interval, zone)
        except ReportLimit as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None

    def queue_settings():
        return ({q: tuple(s.service_levels) for q, s in config.queues.items()},
                {q: s.short_abandon for q, s in config.queues.items()},
                {q: [a for a, agent in config.agents.items() if q in agent.queues]
                 for q in config.queues})

    def answer(rows: list[dict], q, kind: str) -> web.Response:
        first, last = getattr(q, "from").isoformat(), q.to.isoformat()
        if q.format == "csv":
            name = f"{kind}-{first}-{last}-{q.interval}.csv"
            return web.Response(text=to_csv(rows), content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return web.json_response({kind: rows, "timezone": config.console.timezone,
                                  "from": first, "to": last, "interval": q.interval})

    async def run(job):
        try:
            return await asyncio.to_thread(job)
        except ReportLimit as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None

    async def intervals(request: web.Request) -> web.Response:
        who = authenticate(request, SUPERVISORS)
        q = read_query(request, ReportQuery)
        queue, allowed = scoped_queue(who, q.queue)
        s, db = span(q), db_path()
        thresholds, short, members = queue_settings()

        def job():
            check_size(db, s)
            return interval_rows(db, s, queue, thresholds=thresholds, short_abandon=short,
                                 members=members)
        rows = [r for r in await run(job) if r["queue"] in allowed]
        return answer(rows, q, "intervals")

    async def agents(request: web.Request) -> web.Response:
        who = authenticate(request, SUPERVISORS)
        q = read_query(request, ReportQuery)
        queue, allowed = scoped_queue(who, q.queue)
        s, db = span(q), db_path()
        _, _, members = queue_settings()

        def job():
            check_size(db, s)
            return agent_rows(db, s, queue, members=members)
        rows = await run(job)
        if getattr(who, "queues", None) is not None:
            mine = {a for q_ in allowed for a in members.get(q_, ())}
            rows = [r for r in rows if r["agent"] in mine]
        return answer(rows, q, "agents")

    async def what_if(request: web.Request) -> web.Response:
        who = authenticate(request, SUPERVISORS)
        body = await read_body(request, WhatIfBody)
        try:
            day = _date(body.date)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"date: {exc}\n") from None
        queue, _ = scoped_queue(who, body.queue)
        settings = config.queues[queue]
        s = span_of(day, day, body.interval, zone)
        db = db_path()
        result = await run(lambda: whatif(
            db, s, queue, body.agents, seed=body.seed,
            thresholds=tuple(settings.service_levels), short_abandon=settings.short_abandon,
            max_wait=settings.max_wait, strategy=settings.strategy))
        return web.json_response({**result, "interval": body.interval,
                                  "timezone": config.console.timezone})

    app.router.add_get("/api/reports/intervals", intervals)
    app.router.add_get("/api/reports/agents", agents)
    app.router.add_post("/api/reports/whatif", what_if)
