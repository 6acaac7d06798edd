"""SSE beyond the happy path, in process on a real SQLite file: a client that
stops reading is dropped once its buffer is full (bounded memory) and a
reconnect with Last-Event-ID misses nothing; a supervisor scoped to queues
gets only those queues."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from sipagent.api.events import add_event_routes
from sipagent.store.event_stream import EventStream
from sipagent.store.eventlog import EventLog, event_log_path

ADMIN = SimpleNamespace(role="admin", agent=None, queues=None)


async def read_frames(reader, until=None, timeout=20.0) -> list[int]:
    """Event ids read until EOF (or until id ``until``)."""
    ids, buf = [], b""
    async def go():
        nonlocal buf
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            *frames, buf = buf.split(b"\n\n")
            for frame in frames:
                for line in frame.split(b"\n"):
                    if line.startswith(b"id: "):
                        ids.append(int(line[4:]))
            if until is not None and ids and ids[-1] >= until:
                return
    await asyncio.wait_for(go(), timeout)
    return ids


async def connect(port: int, last_id: int | None = None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
    writer.write(f"GET /api/events HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    return reader, writer


def test_a_client_that_stops_reading_is_dropped_and_resumes_without_loss(tmp_path, ports):
    async def scenario():
        log = EventLog(event_log_path(tmp_path))
        stream = EventStream(log, node="n")
        app = web.Application()
        add_event_routes(app, lambda: stream, lambda request, roles: ADMIN, client_buffer=200)
        server = TestServer(app, host="127.0.0.1", port=ports())
        await server.start_server()
        writer = None
        try:
            reader, writer = await connect(server.port)
            await asyncio.sleep(0.1)
            assert stream.subscribers == 1
            # a socket that is not read, so its TCP buffers fill, then the engine's
            writer.transport.pause_reading()
            pad = "x" * 4000
            last = 0
            for i in range(3000):
                last = stream.publish("agent.updated", agent="zoe", by="admin", before=None,
                                      after={"pad": pad, "i": i})
                if i % 100 == 0:
                    await asyncio.sleep(0.06)     # a commit, a fan-out
            await asyncio.sleep(0.5)
            # dropped while it still reads nothing: its handler has let go
            assert stream.subscribers == 0
            writer.transport.resume_reading()
            first = await read_frames(reader)      # all it got, then EOF: dropped
            writer.close()
            assert first and first[-1] < last, "the stuck client was not dropped"
            reader, writer = await connect(server.port, last_id=first[-1])
            rest = await read_frames(reader, until=last)
            writer.close()
            assert first + rest == list(range(1, last + 1))
        finally:
            if writer is not None:
                writer.close()        # a failed check must not leave the server waiting on it
            await server.close()
            await asyncio.to_thread(log.close)
            stream.close()

    asyncio.run(scenario())


def test_a_supervisor_scoped_to_queues_gets_only_those_queues(tmp_path, ports):
    scoped = SimpleNamespace(role="supervisor", agent=None, queues=frozenset({"sales"}))
    serving = {"bob": ["sales"], "alice": ["support"]}

    async def scenario():
        log = EventLog(event_log_path(tmp_path))
        stream = EventStream(log, node="n")
        app = web.Application()
        add_event_routes(app, lambda: stream, lambda request, roles: scoped,
                         known_queues=lambda: ("sales", "support"),
                         queues_of=lambda agent: serving.get(agent, ()))
        server = TestServer(app, host="127.0.0.1", port=ports())
        await server.start_server()
        try:
            for queue in ("support", "sales"):
                stream.publish("queue.joined", call_id=f"c-{queue}", queue=queue, position=1,
                               priority=None)
            for agent in ("alice", "bob"):
                stream.publish("agent.state_changed", agent=agent, previous="available",
                               current="paused", reason="lunch")
            log.flush()
            async with ClientSession() as http:
                base = f"http://127.0.0.1:{server.port}/api/events/history"
                async with http.get(base) as r:
                    got = [(e["type"], e["queue"], e["agent"]) for e in (await r.json())["events"]]
                async with http.get(base + "?queue=support") as r:
                    refused = r.status
            assert got == [("queue.joined", "sales", None), ("agent.state_changed", None, "bob")]
            assert refused == 403
        finally:
            await server.close()
            await asyncio.to_thread(log.close)
            stream.close()

    asyncio.run(scenario())
