"""``GET /api/wallboard``: the console's wallboard in one JSON snapshot.

Per queue, the live figures (waiting callers, the longest current wait,
the EWT a new caller would hear, agents by state and paused agents by
reason, pending callbacks, connected calls and how many have gone on past
``[console.thresholds] long_call``) from the queue runtime, and the KPIs of today
and of the last 15 minutes (``sipagent.store.day_counters``: the report's
replay of the event log, so the same numbers ``sipacd report`` gives for
the span each figure names in ``from`` / ``to``).  "Today" starts at
midnight of ``[console] timezone``.

``admin`` and ``supervisor`` only; a supervisor scoped to queues
(``who.queues``) sees those queues alone.  The console fetches this again
when a relevant event arrives on the stream, so it is cheap: the counters
read only the log rows written since the last fetch (see day_counters).
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import Any, Callable

from aiohttp import web

from sipagent.store.day_counters import DayCounters

Authenticate = Callable[[web.Request, set[str]], Any]
SUPERVISORS = {"admin", "supervisor"}
# The ACD's agent states, as the wallboard names them.
_STATE_KEYS = {"available": "available", "busy": "on_call", "offered": "ringing",
               "wrap_up": "wrap_up"}
FLUSH_TIMEOUT = 1.0


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def visible_queues(who: Any, queues) -> list[str]:
    """The queues a caller may see: all, or a scoped supervisor's."""
    scope = getattr(who, "queues", None)
    return [q for q in queues if scope is None or q in scope]


def live_figures(runtime, queues: list[str], long_call: float) -> dict[str, dict[str, Any]]:
    """What the runtime knows now, per queue; ``long_calls``: connected calls
    longer than ``long_call`` seconds."""
    snap = runtime.snapshot()
    talking: dict[str, list[float]] = {q: [] for q in queues}
    for call in runtime.operations.conversations():
        if call["queue"] in talking:
            talking[call["queue"]].append(call["talk_seconds"])
    paused: dict[str, Counter] = {q: Counter() for q in queues}
    for row in runtime.agents():
        if row["state"] != "paused":
            continue
        for q in runtime.agent_queues(row["agent"]):
            if q in paused:
                paused[q][row["pause_reason"] or "paused"] += 1
    callbacks = Counter(job["queue"] for job in runtime.callbacks.pending())
    out = {}
    for q in queues:
        states = snap["agents"].get(q, {})
        agents = {key: int(states.get(state, 0)) for state, key in _STATE_KEYS.items()}
        agents["staffed"] = sum(int(n) for s, n in states.items() if s != "logged_out")
        agents["paused"] = dict(paused[q])
        out[q] = {"waiting": snap["waiting"].get(q, 0),
                  "longest_wait": _finite(snap["oldest_wait"].get(q, 0.0)),
                  "ewt": _finite(snap["ewt"].get(q)), "agents": agents,
                  "callbacks_pending": callbacks.get(q, 0), "talking": len(talking[q]),
                  "longest_call": max(talking[q], default=0.0),
                  "long_calls": sum(1 for s in talking[q] if s >= long_call)}
    return out


def add_wallboard_routes(app: web.Application, runtime: Callable[[], Any], config,
                         authenticate: Authenticate, *,
                         clock: Callable[[], float] = time.time) -> None:
    console = config.console
    counters: list[DayCounters] = []      # made on first use: the log exists by then

    def day_counters(rt) -> DayCounters:
        if not counters:
            counters.append(DayCounters(
                rt.stats.log.source, console.zone,
                {q: (tuple(s.service_levels), s.short_abandon) for q, s in config.queues.items()},
                clock=clock))
        return counters[0]

    async def wallboard(request: web.Request) -> web.Response:
        who = authenticate(request, SUPERVISORS)
        rt = runtime()
        if rt is None or rt.stats.log is None:
            raise web.HTTPServiceUnavailable(text="the engine is not running\n")
        queues = visible_queues(who, config.queues)
        live = live_figures(rt, queues, console.thresholds.long_call)
        # The log's writer commits every half second; the event that made the
        # console ask should be in the figures.
        await asyncio.to_thread(rt.stats.log.flush, FLUSH_TIMEOUT)
        figures = await asyncio.to_thread(day_counters(rt).figures)
        out = {}
        for q in queues:
            kpis = figures["queues"].get(q, {})
            out[q] = {**live[q]}
            for span in ("today", "last_15m"):
                out[q][span] = {**kpis.get(span, {}),
                                "callbacks_pending": live[q]["callbacks_pending"]}
        return web.json_response({
            "timezone": console.timezone, "day_start": figures["day_start"],
            "day_end": figures["day_end"], "now": clock(),
            "thresholds": console.thresholds.model_dump(), "queues": out})

    app.router.add_get("/api/wallboard", wallboard)
