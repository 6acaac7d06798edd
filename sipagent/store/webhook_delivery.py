"""Webhooks: every stream event a subscription wants, signed, at least once.

Theory of operation
-------------------
The stream's own table is the outbox.  Every event is committed to
``stream_event`` before anyone is told (``event_stream``); a subscription
keeps one cursor, the seq of the last event it has delivered (or skipped by
its filters), in the ``webhooks`` store (``webhooks.sqlite3`` beside the
event log, or its schema in PostgreSQL).  Its task reads the events after
the cursor, in seq order, POSTs each one the filters pass until the
receiver answers 2xx, and moves the cursor on.

Several engines on one PostgreSQL database: each subscription is delivered
by one node at a time, the one holding its claim (``webhook_claims``: an
advisory lock of PostgreSQL's, no election of ours).  The others try for
it every ``claim_every`` seconds; when the holder dies its claim goes with
its database session and the next holder reads the stored cursor and goes
on from there (events since the last save are sent again, at least once).
With SQLite (one engine) every claim is this node's, as before.

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
same ``webhook-id`` (``<node>-<seq>``: the node that published the event
and its seq, the same for every attempt and whichever node delivers), which
is how a receiver drops duplicates.  A failed attempt (no connection, a
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
from sipagent.store.webhook_claims import PostgresClaims, SoleClaims
from sipagent.store.webhook_signature import headers_for
from sipagent.tasks import cancel_and_wait

__all__ = ["Subscription", "WebhookDeliverer", "WEBHOOK_FILE", "MIGRATIONS"]

log = structlog.get_logger("sipagent.store.webhook_delivery")

WEBHOOK_FILE = "webhooks.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_cursor (
    name TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
"""
#: The schema's versions (``sipagent/store/migrations.py``).
MIGRATIONS = (_SCHEMA,)
# A cursor never goes back: a node that lost its claim without noticing yet
# cannot undo what the new holder saved.
_SAVE = ("INSERT INTO webhook_cursor (name, seq, updated, attempts, last_error)"
         " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq,"
         " updated = excluded.updated, attempts = excluded.attempts,"
         " last_error = excluded.last_error WHERE excluded.seq >= webhook_cursor.seq")
SAVE_EVERY = 1.0
CHUNK = 200
CLAIM_EVERY = 2.0      # how often a node without a subscription's claim tries for it
CHECK_EVERY = 1.0      # how often a holder checks its claims' database session


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
        self.claimed = False       # its claim taken and its cursor read, by this node


class WebhookDeliverer:
    def __init__(self, stream, data_dir: StorePlace | str | Path,
                 subscriptions: Iterable[Subscription], *,
                 queues_of: Callable[[str], Iterable[str]] = lambda agent: (),
                 timeout: float = 10.0, retry_base: float = 1.0, retry_max: float = 300.0,
                 on_result: Callable[[str], None] | None = None,
                 claim_every: float = CLAIM_EVERY):
        self.stream = stream
        self.place = as_place(data_dir)
        self.path = self.place.file(WEBHOOK_FILE)
        self.subscriptions = tuple(subscriptions)
        self.claim_every = claim_every
        self._claims: SoleClaims | PostgresClaims = (
            PostgresClaims(self.place.database) if self.place.database else SoleClaims())
        self._watch: asyncio.Task | None = None
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
                                           MIGRATIONS)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        for sub in self.subscriptions:
            flt = EventFilter(types=sub.types, queues=sub.queues, queues_of=self.queues_of)
            self._deliveries.append(_Delivery(sub, flt, -1))
        self._unsubscribe = self.stream.subscribe(self._committed)
        loop = asyncio.get_running_loop()
        for d in self._deliveries:
            d.task = loop.create_task(self._run(d), name=f"webhook {d.sub.name}")
        if isinstance(self._claims, PostgresClaims):
            self._watch = loop.create_task(self._watch_claims(), name="webhook claims")
        log.info("webhooks started", subscriptions=[d.sub.name for d in self._deliveries],
                 shared=self.place.database is not None)

    def _committed(self, batch) -> None:
        for d in self._deliveries:
            d.wake.set()

    def status(self) -> list[dict]:
        return [{"name": d.sub.name, "url": d.sub.url, "cursor": d.cursor,
                 "delivered": d.delivered, "attempts": d.attempts, "last_error": d.last_error,
                 "delivering": self._ours(d)}
                for d in self._deliveries]

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(*[t for t in [self._watch, *(d.task for d in self._deliveries)]
                                if t])
        self._watch = None
        if self._db is not None:
            for d in self._deliveries:
                if self._ours(d):
                    await asyncio.to_thread(self._save, d)
            await asyncio.to_thread(self._db.close)
            self._db = None
        # Only now, with the cursors saved: the next holder starts after them.
        await asyncio.to_thread(self._claims.close)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- who delivers ----------------------------------------------------------------------
    async def _watch_claims(self) -> None:
        """A dead database session took this node's claims with it: the
        deliveries see it (``holds``) and stop before their next POST."""
        while True:
            await asyncio.sleep(CHECK_EVERY)
            await asyncio.to_thread(self._claims.alive)

    def _ours(self, d: _Delivery) -> bool:
        return d.claimed and self._claims.holds(d.sub.name)

    async def _claim(self, d: _Delivery) -> None:
        """Until this node holds ``d``'s claim; then its cursor is the stored one."""
        while not await asyncio.to_thread(self._claims.try_claim, d.sub.name):
            await asyncio.sleep(self.claim_every)      # another node delivers it
        stored = await asyncio.to_thread(
            self._db.one, "SELECT seq FROM webhook_cursor WHERE name = ?", (d.sub.name,))
        if stored is None:         # a new subscription starts at the end of the stream
            d.cursor = self.stream.committed_seq
            await asyncio.to_thread(self._save, d)
        else:
            d.cursor = d.saved = stored[0]
        d.claimed = True
        log.info("webhook delivery started here", webhook=d.sub.name, from_seq=d.cursor)

    # -- one subscription ------------------------------------------------------------------
    async def _run(self, d: _Delivery) -> None:
        audience = None
        last_save = time.monotonic()
        name = d.sub.name
        while True:
            if not self._ours(d):
                d.claimed = False
                try:
                    await self._claim(d)
                except sqlite3.Error as exc:     # the cursor unread: not ours to deliver yet
                    await asyncio.to_thread(self._claims.release, name)
                    log.error("webhook cursor not read, will retry", webhook=name,
                              error=str(exc))
                    await asyncio.sleep(self.claim_every)
                    continue
                audience = self.stream.replay_audience()
            d.wake.clear()
            try:
                items, last, _end = await asyncio.to_thread(
                    self.stream.read_matching, d.cursor, d.filter, audience, limit=CHUNK)
            except sqlite3.Error as exc:     # the store is busy or failing: try again shortly
                log.error("webhook events not read, will retry", webhook=name,
                          error=str(exc))
                await asyncio.sleep(self.retry_base)
                continue
            for item in items:
                if not await self._deliver(d, item):
                    break                    # the claim is lost: not ours to go on
                d.cursor = item.seq
                if time.monotonic() - last_save >= SAVE_EVERY:
                    await asyncio.to_thread(self._save, d)
                    last_save = time.monotonic()
            else:
                d.cursor = max(d.cursor, last)
            if not self._ours(d):
                continue
            if d.cursor != d.saved and time.monotonic() - last_save >= SAVE_EVERY:
                await asyncio.to_thread(self._save, d)
                last_save = time.monotonic()
            if last >= self.stream.committed_seq:
                try:   # nothing new: until the next commit, or a second (to save)
                    await asyncio.wait_for(d.wake.wait(), SAVE_EVERY)
                except TimeoutError:
                    pass

    async def _deliver(self, d: _Delivery, item: StreamItem) -> bool:
        """POST ``item`` until the receiver takes it (True), or until this
        node no longer holds the subscription's claim (False)."""
        event = item.as_dict()
        body = json.dumps({"type": item.type, "timestamp": event.get("time"), "data": event},
                          ensure_ascii=False, separators=(",", ":")).encode()
        msg_id = f"{event.get('node') or self.stream.node}-{item.seq}"
        delay = self.retry_base
        while True:
            if not self._ours(d):
                return False
            try:
                async with self._http.post(d.sub.url, data=body,
                                           headers=headers_for(d.sub.secret, msg_id, body)) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        d.attempts, d.last_error = 0, None
                        d.delivered += 1
                        self.on_result("sent")
                        return True
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
