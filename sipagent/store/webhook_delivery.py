"""Webhooks: every stream event a subscription wants, signed, at least once.

Theory of operation
-------------------
The stream's own table is the outbox.  Every event is committed to
``stream_event`` before anyone is told (``event_stream``); a subscription
keeps one cursor, the seq of the last event it has delivered (or skipped by
its filters), in ``webhooks.sqlite3`` beside the event log.  Its task reads
the events after the cursor from the file, in seq order, POSTs each one the
filters pass until the receiver answers 2xx, and moves the cursor on.

Why a cursor and not a row per event in ``sipagent.store.outbox``: the
outbox holds a handful of notifications per voicemail or fax, each on its
own, retried on its own and given up after ``notify_attempts``.  Here every
call makes a dozen events for every subscription; an outbox row each would
double the writes of the busiest table, could deliver them out of order,
and would give events up, where a receiver down for an hour must get all of
them later, in order.  A cursor costs one small write a second and keeps
both promises: order (one event at a time, the next only after this one is
delivered) and durability (the events are in the file already; a restart
resumes from the stored cursor).

At least once: the cursor is saved at most once a second (and on stop), so
after a crash up to a second of events may be delivered again, with the
same ``webhook-id`` (``<node>-<seq>``, the same for every attempt), which is
how a receiver drops duplicates.  A failed attempt (no connection, a
timeout, a non-2xx answer) is retried after ``retry_base`` seconds,
doubling up to ``retry_max``, without end: the subscription waits, the
events wait in the file.  A new subscription starts at the current end of
the stream (it is not sent the past).

The body is Standard Webhooks' recommended shape:
``{"type", "timestamp", "data": <the event's envelope>}``; the headers are
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
(``webhook_signature``).
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import aiohttp
import structlog

from sipagent.store.backends import open_database
from sipagent.store.database import Database, StorePlace, as_place
from sipagent.store.event_filter import EventFilter, StreamItem
from sipagent.store.webhook_signature import headers_for
from sipagent.tasks import cancel_and_wait

__all__ = ["Subscription", "WebhookDeliverer", "WEBHOOK_FILE"]

log = structlog.get_logger("sipagent.store.webhook_delivery")

WEBHOOK_FILE = "webhooks.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_cursor (
    name TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
"""
_SAVE = ("INSERT INTO webhook_cursor (name, seq, updated, attempts, last_error)"
         " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq,"
         " updated = excluded.updated, attempts = excluded.attempts,"
         " last_error = excluded.last_error")
SAVE_EVERY = 1.0
CHUNK = 200


@dataclass(frozen=True)
class Subscription:
    name: str                          # the cursor's key
    url: str
    secret: str                        # whsec_...
    types: frozenset[str] = frozenset()
    queues: frozenset[str] | None = None


class _Delivery:
    """One subscription's cursor and task."""

    def __init__(self, sub: Subscription, flt: EventFilter, cursor: int):
        self.sub, self.filter, self.cursor = sub, flt, cursor
        self.saved = cursor
        self.attempts, self.last_error = 0, None
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.delivered = 0


class WebhookDeliverer:
    def __init__(self, stream, data_dir: StorePlace | str | Path,
                 subscriptions: Iterable[Subscription], *,
                 queues_of: Callable[[str], Iterable[str]] = lambda agent: (),
                 timeout: float = 10.0, retry_base: float = 1.0, retry_max: float = 300.0,
                 on_result: Callable[[str], None] | None = None):
        self.stream = stream
        self.place = as_place(data_dir)
        self.subscriptions = tuple(subscriptions)
        self.queues_of = queues_of
        self.timeout, self.retry_base, self.retry_max = timeout, retry_base, retry_max
        self.on_result = on_result or (lambda result: None)
        self._db: Database | None = None
        self._http: aiohttp.ClientSession | None = None
        self._deliveries: list[_Delivery] = []
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        if not self.subscriptions:
            return
        self._db = await asyncio.to_thread(open_database, self.place, WEBHOOK_FILE, "webhooks",
                                           (_SCHEMA,))
        stored = dict(await asyncio.to_thread(self._db.read,
                                              "SELECT name, seq FROM webhook_cursor"))
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        for sub in self.subscriptions:
            flt = EventFilter(types=sub.types, queues=sub.queues, queues_of=self.queues_of)
            start = stored.get(sub.name)
            d = _Delivery(sub, flt, self.stream.committed_seq if start is None else start)
            if start is None:
                d.saved = -1      # a new subscription: store where it starts
            self._deliveries.append(d)
        self._unsubscribe = self.stream.subscribe(self._committed)
        loop = asyncio.get_running_loop()
        for d in self._deliveries:
            d.task = loop.create_task(self._run(d), name=f"webhook {d.sub.name}")
        log.info("webhooks started", subscriptions=[
            {"name": d.sub.name, "from_seq": d.cursor} for d in self._deliveries])

    def _committed(self, batch) -> None:
        for d in self._deliveries:
            d.wake.set()

    def status(self) -> list[dict]:
        return [{"name": d.sub.name, "url": d.sub.url, "cursor": d.cursor,
                 "delivered": d.delivered, "attempts": d.attempts, "last_error": d.last_error}
                for d in self._deliveries]

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(*[d.task for d in self._deliveries if d.task])
        if self._db is not None:
            for d in self._deliveries:
                await asyncio.to_thread(self._save, d)
            await asyncio.to_thread(self._db.close)
            self._db = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- one subscription ------------------------------------------------------------------
    async def _run(self, d: _Delivery) -> None:
        audience = self.stream.replay_audience()
        last_save = time.monotonic()
        if d.saved < 0:
            await asyncio.to_thread(self._save, d)
        while True:
            d.wake.clear()
            try:
                items, last, _end = await asyncio.to_thread(
                    self.stream.read_matching, d.cursor, d.filter, audience, limit=CHUNK)
            except sqlite3.Error as exc:     # the file is busy or failing: try again shortly
                log.error("webhook events not read, will retry", webhook=d.sub.name,
                          error=str(exc))
                await asyncio.sleep(self.retry_base)
                continue
            for item in items:
                await self._deliver(d, item)
                d.cursor = item.seq
                if time.monotonic() - last_save >= SAVE_EVERY:
                    await asyncio.to_thread(self._save, d)
                    last_save = time.monotonic()
            d.cursor = max(d.cursor, last)
            if d.cursor != d.saved and time.monotonic() - last_save >= SAVE_EVERY:
                await asyncio.to_thread(self._save, d)
                last_save = time.monotonic()
            if last >= self.stream.committed_seq:
                try:   # nothing new: until the next commit, or a second (to save)
                    await asyncio.wait_for(d.wake.wait(), SAVE_EVERY)
                except TimeoutError:
                    pass

    async def _deliver(self, d: _Delivery, item: StreamItem) -> None:
        event = item.as_dict()
        body = json.dumps({"type": item.type, "timestamp": event.get("time"), "data": event},
                          ensure_ascii=False, separators=(",", ":")).encode()
        msg_id = f"{self.stream.node}-{item.seq}"
        delay = self.retry_base
        while True:
            try:
                async with self._http.post(d.sub.url, data=body,
                                           headers=headers_for(d.sub.secret, msg_id, body)) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        d.attempts, d.last_error = 0, None
                        d.delivered += 1
                        self.on_result("sent")
                        return
                    error = f"answered {r.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            d.attempts += 1
            d.last_error = error
            self.on_result("failed")
            if d.attempts == 1 or d.attempts % 10 == 0:
                log.warning("webhook not delivered, will retry", webhook=d.sub.name,
                            seq=item.seq, attempts=d.attempts, error=error, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    def _save(self, d: _Delivery) -> None:
        if self._db is None:
            return
        try:
            self._db.write(_SAVE, (d.sub.name, d.cursor, time.time(), d.attempts, d.last_error))
        except sqlite3.Error as exc:     # kept in memory; saved at the next chance
            log.error("webhook cursor not saved", webhook=d.sub.name, error=str(exc))
            return
        d.saved = d.cursor
