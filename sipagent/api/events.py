"""The public event stream over HTTP: Server-Sent Events and history.

======  =====================  ===================================================
GET     /api/events            SSE; ``?queue=a,b&agent=x&type=call.*,queue.left``;
                               resume after ``Last-Event-ID`` (header) or
                               ``last_event_id`` (query)
GET     /api/events/history    JSON ``{"events": [...], "last_seq": n, "end": bool}``
                               ``?after=<seq>&limit=<n>`` (1..1000) and the filters
======  =====================  ===================================================

Replay without gap or duplicate: the client is subscribed to live events
first, then the file is read from its Last-Event-ID to the end, then the
live buffer is drained, skipping every seq already sent.  Anything
committed after the subscription is in the buffer; anything committed
before it is in the file.  A client with no Last-Event-ID starts at the
current end of the stream.

A slow client cannot grow memory without bound: its buffer holds at most
``client_buffer`` events; past that the connection is closed (also when the
handler waits on a client that stopped reading) and the client
(EventSource reconnects by itself) resumes from its Last-Event-ID, from
the file.  A heartbeat (``event: heartbeat``, ``data: {"last_seq": n}``, no
id) goes out every ``heartbeat`` seconds.

Scope: an agent-role caller gets only its own agent's events and those of
calls it was offered or connected to; a supervisor scoped to queues
(``who.queues``) only those queues.  400: a filter naming no event type, an
unknown queue, a Last-Event-ID that is not a non-negative integer; 403: an
agent asking for another agent, a scoped supervisor for another queue.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, Callable, Iterable

from aiohttp import web

from sipagent.api.request_input import QueryParameters, read_query
from sipagent.store.event_filter import BadFilter, EventFilter, StreamItem, parse_types

Authenticate = Callable[[web.Request, set[str]], Any]
ROLES = {"admin", "supervisor", "agent"}
REPLAY_CHUNK = 500
_MAX_NAME = 200


class EventsQuery(QueryParameters):
    """Filters: comma-separated lists; ``last_event_id`` as the header."""
    queue: str | None = None
    agent: str | None = None
    type: str | None = None
    last_event_id: str | None = None


class HistoryQuery(QueryParameters):
    queue: str | None = None
    agent: str | None = None
    type: str | None = None
    after: str | None = None
    limit: str | None = None


class _Client:
    """One SSE connection's live buffer (bounded)."""

    def __init__(self, limit: int, abort: Callable[[], None]):
        self.limit = limit
        self.abort = abort      # drops the connection: the handler may be stuck in a write
        self.batches: deque[list[StreamItem]] = deque()
        self.size = 0
        self.wake = asyncio.Event()
        self.overflow = False
        self.closed = False

    def push(self, batch: list[StreamItem] | None) -> None:
        if batch is None:
            self.closed = True
        elif not self.overflow:
            self.batches.append(batch)
            self.size += len(batch)
            if self.size > self.limit:
                self.overflow = True
                self.batches.clear()
                self.abort()
        self.wake.set()


def _names(raw: str | None, key: str) -> frozenset[str] | None:
    if raw is None:
        return None
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if not names or any(len(n) > _MAX_NAME or not n.isprintable() for n in names):
        raise web.HTTPBadRequest(text=f"{key}: a comma-separated list of names\n")
    return names


def _seq(value: str | None, key: str) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise web.HTTPBadRequest(text=f"{key}: a non-negative integer (a sequence id) "
                                      f"required, got {value[:40]!r}\n")
    return int(value)


def add_event_routes(app: web.Application, stream: Callable[[], Any], auth: Authenticate, *,
                     known_queues: Callable[[], Iterable[str]] = lambda: (),
                     queues_of: Callable[[str], Iterable[str]] = lambda agent: (),
                     heartbeat: float = 15.0, client_buffer: int = 10_000) -> None:
    """``stream()``: the engine's EventStream (None while it is not running)."""
    clients: set[_Client] = set()

    def filter_for(request: web.Request, q) -> EventFilter:
        who = auth(request, ROLES)
        try:
            types = parse_types(n for n in (q.type or "").split(",") if n.strip()) \
                if q.type is not None else frozenset()
        except BadFilter as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        if q.type is not None and not types:
            raise web.HTTPBadRequest(text="type: a comma-separated list of event types\n")
        queues, agents = _names(q.queue, "queue"), _names(q.agent, "agent")
        if queues is not None:
            unknown = sorted(queues - set(known_queues()))
            if unknown:
                raise web.HTTPBadRequest(text=f"queue: unknown queue {unknown[0]!r}\n")
        flt = EventFilter(types=types, queues=queues, agents=agents, queues_of=queues_of)
        if who.role == "agent":
            if agents is not None and agents != {who.agent}:
                raise web.HTTPForbidden(text="an agent sees only its own agent's events\n")
            return flt.narrowed(agents=frozenset({who.agent}))
        scope = getattr(who, "queues", None)
        if scope is not None:
            if queues is not None and not queues <= scope:
                raise web.HTTPForbidden(text="queue: outside this supervisor's queues\n")
            return flt.narrowed(queues=frozenset(scope))
        return flt

    def running():
        s = stream()
        if s is None:
            raise web.HTTPServiceUnavailable(text="the event stream is not running\n")
        return s

    async def history(request: web.Request) -> web.Response:
        q = read_query(request, HistoryQuery)
        flt = filter_for(request, q)
        after = _seq(q.after, "after") or 0
        limit = _seq(q.limit, "limit")
        limit = 100 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise web.HTTPBadRequest(text="limit: 1 to 1000\n")
        s = running()
        items, last, end = await asyncio.to_thread(
            s.read_matching, after, flt, s.replay_audience(), limit=limit, scan=50_000)
        return web.json_response({"events": [i.as_dict() for i in items], "last_seq": last,
                                  "end": end})

    async def events(request: web.Request) -> web.StreamResponse:
        q = read_query(request, EventsQuery)
        flt = filter_for(request, q)
        last = _seq(request.headers.get("Last-Event-ID"), "Last-Event-ID")
        if last is None:
            last = _seq(q.last_event_id, "last_event_id")
        s = running()
        client = _Client(client_buffer, lambda: request.transport and request.transport.abort())
        unsubscribe = s.subscribe(client.push)     # first: nothing committed from now is missed
        clients.add(client)
        try:
            # A Last-Event-ID beyond the file's end (a file restored from an
            # older backup) would hold back every new event: start at the end.
            last = s.committed_seq if last is None else min(last, s.committed_seq)
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"})
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            audience = s.replay_audience()
            while True:    # the file, from Last-Event-ID to its end
                items, scanned, end = await asyncio.to_thread(
                    s.read_matching, last, flt, audience, limit=REPLAY_CHUNK)
                if items:
                    await response.write(b"".join(i.wire for i in items))
                last = scanned
                if end or client.overflow or client.closed:
                    break
            await _live(s, client, flt, audience, response, last, heartbeat)
            return response
        except ConnectionResetError:     # the client went away
            return response
        finally:
            unsubscribe()
            clients.discard(client)

    async def closing(app: web.Application) -> None:
        for client in list(clients):
            client.push(None)

    app.on_shutdown.append(closing)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/events/history", history)


async def _live(s, client: _Client, flt: EventFilter, audience, response: web.StreamResponse,
                last: int, heartbeat: float) -> None:
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + heartbeat
    everything = flt.everything
    while not client.closed:
        if not client.batches and not client.overflow:
            try:
                await asyncio.wait_for(client.wake.wait(), max(0.0, next_beat - loop.time()))
            except TimeoutError:
                pass
        client.wake.clear()
        if client.overflow:
            return          # too far behind: the client resumes from the file
        if loop.time() >= next_beat:
            next_beat = loop.time() + heartbeat
            await response.write(b"event: heartbeat\ndata: "
                                 + json.dumps({"last_seq": s.committed_seq}).encode() + b"\n\n")
        batches, client.batches, client.size = client.batches, deque(), 0
        chunks = []
        for batch in batches:
            for item in batch:
                if item.seq > last:
                    last = item.seq
                    if everything or flt.match(item, audience):
                        chunks.append(item.wire)
        if chunks:
            await response.write(b"".join(chunks))
