"""The public event stream of a real engine over SIP on 127.0.0.1: SSE with
filters, role scope and Last-Event-ID replay (also across a restart of the
engine process), refusals of bad input, JSON Schema conformance of what a
real call emits, and webhooks to a receiver that is down for a while."""
from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web

from engine_proc import Engine
from sipua import UA
from test_queue_behaviour import AGENT_TOKEN, TOKEN, api, config, wait_until

from sipagent.store.webhook_signature import InvalidWebhook, verify

pytestmark = pytest.mark.sip

SCHEMAS = json.loads((Path(__file__).parent.parent / "docs/events.schema.json").read_text())
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class SSE:
    """A streaming GET /api/events read on a thread: ``events`` in arrival order."""

    def __init__(self, engine, query: str = "", token: str = TOKEN,
                 last_id: int | None = None):
        self.events: list[dict] = []
        self.heartbeats: list[dict] = []
        self.conn = http.client.HTTPConnection("127.0.0.1", engine.http_port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", "/api/events" + query, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = self.response.read().decode()

    def _read(self) -> None:
        frame: dict = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line:
                    key, _, value = line.partition(": ")
                    frame[key] = value
                    continue
                if "data" in frame:
                    data = json.loads(frame["data"])
                    if frame.get("event") == "heartbeat":
                        assert "id" not in frame
                        self.heartbeats.append(data)
                    else:
                        assert int(frame["id"]) == data["seq"] and frame["event"] == data["type"]
                        self.events.append(data)
                frame = {}
        except (OSError, ValueError, AttributeError):   # closed under the reader
            pass
        self.ended.set()

    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.events]

    def wait(self, pred, timeout: float = 10.0, what: str = "events"):
        return wait_until(lambda: pred(self.events), timeout, what)

    def close(self) -> None:
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


def event_config(ports, workdir, prompts_dir, phones, **extra):
    agents = {"alice": {"uri": phones.uri("alice"), "queues": ["support"]},
              "bob": {"uri": phones.uri("bob"), "queues": ["sales"]}}
    queues = {"support": {"wrap_up": 1}, "sales": {"wrap_up": 1}}
    cfg = config(ports, workdir, prompts_dir, agents, queues, **extra)
    cfg["events"] = {"node_id": "test-node", "heartbeat": 1.0, **cfg.get("events", {})}
    return cfg


def conforms(event: dict) -> None:
    schema = {**SCHEMAS, "$ref": f"#/$defs/{event['type']}"}
    jsonschema.validate(event, schema, cls=jsonschema.Draft202012Validator)


def one_call(caller, phones, engine) -> str:
    """A caller in the support queue, alice answers, they talk, the caller hangs up."""
    caller.request("call", call="c1", to=engine.number("100"))
    inc = phones.wait_event({"ev": "incoming", "user": "alice"})
    phones.wait_state(inc["call"], "CONFIRMED")
    time.sleep(0.5)
    caller.request("hangup", call="c1")
    phones.wait_state(inc["call"], "DISCONNECTED", timeout=5)
    return inc["headers"]["X-Sipacd-Call-Id"]


def test_sse_filters_scope_replay_and_refusals(ports, workdir, prompts_dir):
    with UA(ports(), log_dir=workdir, name="agents") as phones, \
            UA(ports(), log_dir=workdir, name="caller") as caller:
        phones.request("auto_answer", user="alice", after=0.3)
        with Engine(workdir, event_config(ports, workdir, prompts_dir, phones)) as engine:
            everything = SSE(engine)
            mine = SSE(engine, token=AGENT_TOKEN)                 # alice's agent token
            states = SSE(engine, "?type=agent.*&queue=sales")
            dropped = SSE(engine)
            for query, headers, want in [
                    ("?type=call.exploded", {}, 400), ("?type=nothing.*", {}, 400),
                    ("?queue=nope", {}, 400), ("?last_event_id=abc", {}, 400),
                    ("?bogus=1", {}, 400), ("", {"Last-Event-ID": "-3"}, 400),
                    ("", {"Last-Event-ID": "12x"}, 400)]:
                conn = http.client.HTTPConnection("127.0.0.1", engine.http_port, timeout=5)
                conn.request("GET", "/api/events" + query,
                             headers={"Authorization": f"Bearer {TOKEN}", **headers})
                r = conn.getresponse()
                assert (query, headers, r.status) == (query, headers, want), r.read()
                conn.close()
            assert SSE(engine, "?agent=bob", token=AGENT_TOKEN).status == 403
            assert api(engine, "GET", "/api/events/history?limit=0")[0] == 400
            assert api(engine, "GET", "/api/events/history?after=x")[0] == 400

            call_id = one_call(caller, phones, engine)
            everything.wait(lambda ev: any(e["type"] == "wrapup.ended" for e in ev), 10,
                            "the wrap-up's end")
            dropped.wait(lambda ev: any(e["type"] == "call.ended" for e in ev), 5, "call.ended")
            dropped.close()
            left_at = dropped.seqs()[-1]
            # 100+ events the dropped client misses: bob paused and readied 55 times.
            for i in range(55):
                assert api(engine, "POST", "/api/agents/bob/pause", {"reason": f"r{i}"})[0] == 200
                assert api(engine, "POST", "/api/agents/bob/ready")[0] == 200
            everything.wait(lambda ev: sum(e["agent"] == "bob" and e["type"] ==
                                           "agent.state_changed" for e in ev) >= 110, 10, "bob")
            back = SSE(engine, last_id=left_at)
            back.wait(lambda ev: ev and ev[-1]["seq"] >= everything.seqs()[-1], 10, "replay")
            assert len(everything.seqs()) - everything.seqs().index(left_at) - 1 >= 100
            # nothing lost, nothing twice, order kept: the same events as the
            # client that never left, from where the dropped one stopped. A stream
            # opened without Last-Event-ID starts live, so the start-up events that
            # came between the two connects are only in the first one's list.
            since = everything.seqs().index(dropped.seqs()[0])
            assert dropped.seqs() + back.seqs() == everything.seqs()[since:]
            assert everything.seqs() == sorted(set(everything.seqs()))
            history = api(engine, "GET", f"/api/events/history?after={left_at}&limit=1000")[1]
            assert [e["seq"] for e in history["events"]] == back.seqs()
            time.sleep(1.2)
            assert everything.heartbeats and "last_seq" in everything.heartbeats[-1]

            types = [e["type"] for e in everything.events if e["call_id"] == call_id]
            for want in ("call.started", "queue.joined", "offer.created", "offer.accepted",
                         "queue.left", "bridge.started", "call.answered", "bridge.ended",
                         "wrapup.started", "call.ended", "wrapup.ended"):
                assert want in types, (want, types)
            for event in everything.events:
                conforms(event)
                assert event["node"] == "test-node"
            offer = next(e for e in everything.events if e["type"] == "offer.created")
            assert next(e for e in everything.events if e["type"] == "offer.accepted")[
                "offer_id"] == offer["offer_id"]
            started = next(e for e in everything.events if e["type"] == "call.started")
            assert started["call_id"] == call_id and started["called"] == "100"

            # alice's token: alice's events and her call's, never bob's
            assert mine.events and all(e["agent"] == "alice" or e["call_id"] == call_id
                                       for e in mine.events)
            assert {"offer.created", "bridge.ended", "call.ended"} <= {
                e["type"] for e in mine.events}
            # the filtered client: bob's state changes only (bob serves sales)
            states.wait(lambda ev: len(ev) >= 110, 5, "the filtered client")
            assert {(e["type"], e["agent"]) for e in states.events} == {
                ("agent.state_changed", "bob")}
            for sse in (everything, mine, states, back):
                sse.close()


class Receiver:
    """A webhook receiver (aiohttp, its own thread and loop) that can be down."""

    def __init__(self, port: int):
        self.port = port
        self.got: list[tuple[dict, bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.runner = None
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _hook(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    def up(self) -> None:
        async def start():
            app = web.Application()
            app.router.add_post("/hook", self._hook)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def down(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_restart_keeps_the_sequence_and_webhooks_catch_up(ports, workdir, prompts_dir):
    hook_port = ports()
    receiver = Receiver(hook_port)
    try:
        with UA(ports(), log_dir=workdir, name="agents") as phones, \
                UA(ports(), log_dir=workdir, name="caller") as caller:
            phones.request("auto_answer", user="alice", after=0.3)
            cfg = event_config(ports, workdir, prompts_dir, phones, events={
                "retry_base": 0.2, "retry_max": 1.0,
                "webhooks": [{"name": "crm", "url": f"http://127.0.0.1:{hook_port}/hook",
                              "secret": SECRET, "types": ["call.*", "agent.state_changed"],
                              "queues": ["support"]}]})
            with Engine(workdir, cfg) as engine:
                sse = SSE(engine)
                one_call(caller, phones, engine)
                sse.wait(lambda ev: any(e["type"] == "call.ended" for e in ev), 10, "call.ended")
                before = sse.seqs()
                sse.close()
                engine.stop()           # SIGTERM: agents are logged out on the way down
            with Engine(workdir, cfg) as engine:
                again = SSE(engine, last_id=before[-1])
                one_call(caller, phones, engine)
                again.wait(lambda ev: any(e["type"] == "call.ended" for e in ev), 10,
                           "the second call's end")
                history = api(engine, "GET", "/api/events/history?limit=1000")[1]["events"]
                seqs = [e["seq"] for e in history]
                assert seqs == list(range(1, len(seqs) + 1))           # no gap, no reuse
                assert [e["seq"] for e in history if e["seq"] > before[-1]] == again.seqs()[
                    :len([s for s in seqs if s > before[-1]])]
                shutdown = [e for e in again.events if e["type"] == "agent.state_changed"
                            and e["reason"] == "shutdown"]
                assert shutdown and shutdown[0]["seq"] < again.seqs()[-1]
                # the receiver comes up only now: it gets every event it subscribed to
                receiver.up()
                wanted = [e for e in history if (e["type"].startswith("call.")
                          or e["type"] == "agent.state_changed")
                          and (e["queue"] == "support"
                               or (e["queue"] is None and e["agent"] == "alice"))]
                wait_until(lambda: len({json.loads(b)["data"]["seq"] for _, b in receiver.got})
                           >= len(wanted), 15, "webhook catch-up")
                again.close()
        got = {}
        for headers, body in receiver.got:
            payload = verify(SECRET, headers, body)
            got[payload["data"]["seq"]] = (headers["webhook-id"], payload)
            with pytest.raises(InvalidWebhook):
                verify(SECRET, headers, body.replace(b'"seq":', b'"seq": '))
        assert sorted(got)[:len(wanted)] == [e["seq"] for e in wanted]
        assert all(h == f"test-node-{seq}" for seq, (h, _) in got.items())
        assert got[wanted[0]["seq"]][1]["type"] == wanted[0]["type"]
    finally:
        receiver.down()
