"""Webhooks with several engines on one PostgreSQL database: each
subscription is delivered by one node at a time (a PostgreSQL advisory
lock), and when that node goes (stopped, or its database session killed
under it) another takes over from the stored cursor, losing nothing
(sipagent/store/webhook_delivery.py, webhook_claims.py).

The two deliverers share one real event stream (an event log on SQLite, as
both nodes of a cluster read one sequence) and POST to a real receiver.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from sipagent.store.event_stream import EventStream
from sipagent.store.eventlog import EventLog, event_log_path
from sipagent.store.webhook_claims import CLAIM_CLASS, PostgresClaims, claim_key
from sipagent.store.webhook_delivery import Subscription, WebhookDeliverer

pytest_plugins = ["storekit"]     # store_place, pg_place: SQLite and PostgreSQL

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """POST /hook on 127.0.0.1: every delivery, with its webhook-id."""

    def __init__(self, port: int):
        self.port = port
        self.got: list[tuple[str, int]] = []        # (webhook-id, seq)
        self.runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.got.append((request.headers["webhook-id"], body["data"]["seq"]))
        return web.Response(status=204)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    def seqs(self) -> set[int]:
        return {seq for _, seq in self.got}


async def until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def publish(stream: EventStream, n: int) -> list[int]:
    return [stream.publish("agent.updated", agent="zoe", by="admin", before=None,
                           after={"i": i}) for i in range(n)]


def end_session_of_claim(url: str, name: str) -> None:
    """Terminate the database session holding ``name``'s claim, found by
    the lock itself."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = %s AND objid::bigint = %s",
            (CLAIM_CLASS, claim_key(name) & 0xFFFFFFFF))]
        assert len(pids) == 1, pids
        conn.execute("SELECT pg_terminate_backend(%s)", (pids[0],))


def delivering(node: WebhookDeliverer) -> bool:
    return node.status()[0]["delivering"]


@pytest.mark.postgres
@pytest.mark.parametrize("leaves", ["stopped", "session_killed"])
def test_one_node_delivers_and_another_takes_over_losing_nothing(pg_place, tmp_path, ports,
                                                                 leaves):
    async def scenario():
        log = EventLog(event_log_path(tmp_path / "log"))
        stream = EventStream(log, node="n1")
        async with Receiver(ports()) as receiver:
            sub = Subscription("crm", f"http://127.0.0.1:{receiver.port}/hook", SECRET)
            a = WebhookDeliverer(stream, pg_place, [sub], claim_every=0.2)
            b = WebhookDeliverer(stream, pg_place, [sub], claim_every=0.2)
            await a.start()
            await until(lambda: delivering(a), "node a to claim the subscription")
            await b.start()
            first = publish(stream, 30)
            await until(lambda: set(first) <= receiver.seqs(), "the first events")
            await asyncio.sleep(0.5)      # b tried for the claim a few times meanwhile
            assert not delivering(b) and b.status()[0]["delivered"] == 0
            assert a.status()[0]["delivered"] == 30
            assert sorted(s for _, s in receiver.got) == first      # once each, in order

            if leaves == "stopped":
                await a.stop()
            else:
                # The node's database session dies under it (what kill -9 of
                # the node, or a lost network, does): PostgreSQL releases its
                # lock, found by the lock itself, not by the node's insides.
                await asyncio.to_thread(end_session_of_claim, pg_place.database, "crm")
            second = publish(stream, 30)       # while the claim moves
            await until(lambda: delivering(b), "node b to take over", timeout=5)
            await until(lambda: set(second) <= receiver.seqs(), "the events after the move")
            if leaves == "session_killed":
                await until(lambda: not delivering(a), "node a to notice")
                sent_by_a = a.status()[0]["delivered"]
            third = publish(stream, 10)
            await until(lambda: set(third) <= receiver.seqs(), "the last events")
            await asyncio.sleep(0.3)
            if leaves == "session_killed":
                assert a.status()[0]["delivered"] == sent_by_a     # a sends no more
                await a.stop()
            await b.stop()
            await asyncio.to_thread(log.close)
            stream.close()
        every = first + second + third
        assert receiver.seqs() == set(every)                       # none lost
        # A duplicate (at least once) carries the same webhook-id each time.
        ids = {}
        for webhook_id, seq in receiver.got:
            assert ids.setdefault(seq, webhook_id) == webhook_id == f"n1-{seq}"
        if leaves == "stopped":       # a saved its cursor on the way out: no repeats
            assert sorted(s for _, s in receiver.got) == every
        # Each delivery in seq order after the first time it was seen.
        firsts = list(dict.fromkeys(s for _, s in receiver.got))
        assert firsts == every

    asyncio.run(scenario())


def test_a_restarted_deliverer_goes_on_from_its_stored_cursor(store_place, tmp_path, ports):
    async def scenario():
        log = EventLog(event_log_path(tmp_path / "log"))
        stream = EventStream(log, node="n1")
        publish(stream, 5)                      # before the subscription: not sent
        async with Receiver(ports()) as receiver:
            sub = Subscription("crm", f"http://127.0.0.1:{receiver.port}/hook", SECRET)
            await until(lambda: stream.committed_seq == 5, "the first commit")
            node = WebhookDeliverer(stream, store_place, [sub])
            await node.start()
            await until(lambda: node.status()[0]["cursor"] == 5, "the cursor")
            first = publish(stream, 10)
            await until(lambda: set(first) <= receiver.seqs(), "the first events")
            await node.stop()
            missed = publish(stream, 10)        # while no deliverer runs
            await until(lambda: stream.committed_seq == missed[-1], "the commit")
            node = WebhookDeliverer(stream, store_place, [sub])
            await node.start()
            await until(lambda: set(missed) <= receiver.seqs(), "the missed events")
            await node.stop()
            await asyncio.to_thread(log.close)
            stream.close()
        assert [s for _, s in receiver.got] == first + missed

    asyncio.run(scenario())


CLAIM_HOLDER = """
import sys, time
from sipagent.store.webhook_claims import PostgresClaims
claims = PostgresClaims(sys.argv[1])
assert claims.try_claim("crm")
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.postgres
def test_the_claim_of_a_killed_process_is_free_at_once(pg_place, tmp_path):
    """kill -9 of the holding node: PostgreSQL sees its session end and
    the next node's try succeeds."""
    script = tmp_path / "holder.py"
    script.write_text(CLAIM_HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), pg_place.database], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other = PostgresClaims(pg_place.database)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        assert not other.try_claim("crm") and not other.holds("crm")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        while not other.try_claim("crm"):
            assert time.monotonic() - killed < 5, "the claim was not freed"
            time.sleep(0.05)
        assert other.holds("crm") and other.alive()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        other.close()
