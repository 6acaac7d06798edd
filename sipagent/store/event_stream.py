"""The public event stream: numbered, written first, sent second.

Theory of operation
-------------------
:meth:`EventStream.publish` gives an event the next sequence id, renders
its JSON once (the envelope of docs/events.md) and queues its row for the
``stream_event`` table through the event log's own writer thread
(``EventLog.append(urgent=True)``): one writer for the whole file, and the
row rides in the same transactions as the facts it was derived from.  An
urgent row makes the writer commit within ``urgent_delay`` (50 ms) rather
than its usual half second.  Only when the batch is committed does the
writer hand the events back (``on_commit``), and they cross to the loop
thread (``call_soon_threadsafe``) to reach the subscribers: SSE clients and
webhook deliverers never see an event the file could lose.

Sequence ids continue from ``max(seq)`` in the file, so they grow across
restarts; a crash loses only events not yet committed, which nobody was
sent, so no id is ever reused for a different event a client saw.  Seq
assignment and queueing happen under one lock, so rows reach the writer,
the file and the subscribers in seq order.

The facts of the runtime reach the stream through one hook,
``EventLog.on_fact``, translated by ``public_events.Translator``; other
parts (the admin API, the desktop's dispositions) call :meth:`publish`
themselves.

Readers (SSE replay, history, webhooks) read the file in seq order with
:meth:`read_matching`, in a worker thread; the same ``EventFilter`` decides
live and replayed events.

One sequence for a cluster
--------------------------
On a log several nodes share (PostgreSQL), no node can number events
alone.  A row is queued unnumbered; the writer numbers it inside the
commit, under the log's advisory lock (``EventLog.numbering``): the next
seq after the table's largest, so seqs are gap-free and grow in commit
order across nodes, and the commit notifies ``sipacd_stream``.  Every
node's follower thread (:meth:`_follow`) then reads what was committed
after the last seq it saw, by any node, and fans it out: its own events
come back the same way as the others', so all subscribers of all nodes
see one sequence.  The agents of a call (who may see its events) come
from the file for every live event then, as for a replay.

What a round costs is paid per node whatever its load, so a follower
reads at most every ``FOLLOW_GATHER`` (20 ms; a quarter of a second when
only the node's own bookkeeping listens), skips a notice naming rows it
has read, and the writer commits urgent rows no closer than
``EventLog.urgent_gap`` (50 ms) apart (benchmarks/cluster_cpu.py).
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable

import structlog

from sipagent.store.backends import open_listener
from sipagent.store.event_filter import EventFilter, StreamItem
from sipagent.store.eventlog_schema import read_only
from sipagent.store.public_events import ENVELOPE_KEYS, SCHEMA, PublicEvent, Translator
from sipagent.tasks import name_os_thread

__all__ = ["EventStream", "ReplayAudience"]

log = structlog.get_logger("sipagent.store.event_stream")

_INSERT = ("INSERT INTO stream_event (seq, t, type, node, call_id, queue, agent, body)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_AFTER = ("SELECT seq, type, queue, agent, call_id, body FROM stream_event WHERE seq > ?"
          " ORDER BY seq LIMIT ?")
_CALL_AGENTS = ("SELECT DISTINCT agent FROM stream_event WHERE call_id = ? AND seq <= ?"
                " AND type IN ('offer.created', 'bridge.started') AND agent IS NOT NULL")
# At start, each agent's last published state (bounded look-back).
_LAST_STATES = ("SELECT agent, body FROM stream_event WHERE type = 'agent.state_changed'"
                " AND seq > ? ORDER BY seq")
_LOOK_BACK = 200_000
_LAST_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM stream_event"
_NUMBER = ("SELECT last, pg_notify(?, (last + ?)::text)"
           " FROM (SELECT COALESCE(MAX(seq), 0) AS last FROM stream_event) AS s")
_FOLLOW_CHUNK = 1000
FOLLOW_GATHER = 0.02      # s, see _follow
FOLLOW_GATHER_UNWATCHED = 0.25
_CHANNEL = "sipacd_stream"
_TYPE = re.compile(r"[a-z_]+\.[a-z_]+")
_AUDIENCE_TYPES = ("offer.created", "bridge.started")
_FIRST_TYPE = "call.started"

Subscriber = Callable[[list[StreamItem] | None], None]


def _with_seq(seq: int, rest: str) -> str:
    """The event's JSON: its seq first, then ``rest`` (a JSON object's text)."""
    return f'{{"seq":{seq},{rest[1:]}'


def _seq_of(notice: str) -> int:
    try:
        return int(notice)
    except ValueError:    # not ours: look
        return 1 << 62


def iso_time(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


class ReplayAudience:
    """The agents of a call as of a replayed event, from the file: what the
    live path knows from memory (``StreamItem.audience``).  One per reader,
    fed every scanned item in seq order."""

    def __init__(self, conn_read: Callable[[str, tuple], list], *, max_calls: int = 20_000):
        self._read = conn_read
        self._calls: dict[str, set[str]] = {}
        # A follower lives as long as the engine: the oldest calls go (a
        # call asked about again is read from the file again).
        self.max_calls = max_calls

    def saw(self, item: StreamItem) -> None:
        if item.type in _AUDIENCE_TYPES and item.call_id in self._calls and item.agent:
            self._calls[item.call_id].add(item.agent)

    def __call__(self, item: StreamItem) -> frozenset[str]:
        if item.audience is not None:
            return item.audience
        agents = self._calls.get(item.call_id)
        if agents is None:
            # A call's first event has no agents before it: no need to ask
            # the file (a follower sees every call start so).
            agents = self._calls[item.call_id] = set() if item.type == _FIRST_TYPE else {
                a for (a,) in self._read(_CALL_AGENTS, (item.call_id, item.seq))}
            if len(self._calls) > self.max_calls:
                del self._calls[next(iter(self._calls))]
        return frozenset(agents)


class EventStream:
    def __init__(self, eventlog, *, node: str):
        self.node = node
        self._log = eventlog
        self._lock = threading.Lock()
        self._reader_lock = threading.Lock()
        self._reader = read_only(eventlog.source)
        self.translator = Translator()
        self.seq = self._read_one(_LAST_SEQ)
        self.committed_seq = self.seq         # the last seq the file holds for sure
        self._seed_agent_states()
        self._unsent: deque[StreamItem] = deque()   # published, not yet committed
        self._subscribers: set[Subscriber] = set()
        self._prompt_subscribers: set[Subscriber] = set()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._closed = False
        eventlog.on_fact = self._on_fact
        # Several writers: numbered in the commit, sent by the follower.
        self.shared = eventlog.shared
        self._follower: threading.Thread | None = None
        if self.shared:
            eventlog.numbering[_INSERT] = self._number
            self._listener = open_listener(eventlog.source, _CHANNEL)
            self._follow_audience = ReplayAudience(self._read)
            self._last_look = 0.0
            self._follower = threading.Thread(target=self._follow, name="event-follower",
                                              daemon=True)
            self._follower.start()
        else:
            eventlog.on_commit = self._on_commit

    # -- publishing ------------------------------------------------------------------
    def publish(self, type: str, *, call_id: str | None = None, queue: str | None = None,
                agent: str | None = None, offer_id: str | None = None, t: float | None = None,
                **fields: Any) -> int:
        """Number, store and (once committed) send one event; returns its seq."""
        if not isinstance(type, str) or not _TYPE.fullmatch(type):
            raise ValueError(f"event type must be resource.verb, got {type!r}")
        clash = ENVELOPE_KEYS.intersection(fields)
        if clash:
            raise ValueError(f"event fields may not be envelope keys: {sorted(clash)}")
        t = time.time() if t is None else float(t)
        with self._lock:
            return self._publish(PublicEvent(type, t, call_id, queue, agent, offer_id, fields),
                                 self.translator.agents_of(call_id))

    def _publish(self, e: PublicEvent, audience: frozenset[str]) -> int | None:
        # Under self._lock: seq order is queue order.
        rest = json.dumps({"type": e.type, "t": round(e.t, 6), "time": iso_time(e.t),
                           "node": self.node, "schema": SCHEMA, "call_id": e.call_id,
                           "queue": e.queue, "agent": e.agent, "offer_id": e.offer_id,
                           **e.fields}, ensure_ascii=False, default=str, separators=(",", ":"))
        if self.shared:     # numbered in the commit (module doc)
            self._log.append(_INSERT, (None, e.t, e.type, self.node, e.call_id, e.queue,
                                       e.agent, rest), urgent=True)
            return None
        self.seq += 1
        seq = self.seq
        body = _with_seq(seq, rest)
        self._unsent.append(StreamItem(seq, e.type, e.queue, e.agent, e.call_id, body,
                                       audience))
        self._log.append(_INSERT, (seq, e.t, e.type, self.node, e.call_id, e.queue, e.agent,
                                   body), urgent=True)
        return seq

    def _number(self, db, rows: list[tuple]) -> list[tuple]:
        """In the writer's commit, under the log's lock: the next seqs."""
        # One round trip: the last seq, and the notice naming the new last one
        # (delivered at commit).
        base = db.execute(_NUMBER, (_CHANNEL, len(rows))).fetchone()[0]
        return [(seq, *row[1:-1], _with_seq(seq, row[-1]))
                for seq, row in enumerate(rows, base + 1)]

    def _follow(self) -> None:
        """Follower thread (shared log): fan out what any node committed."""
        name_os_thread("event-follower")
        while not self._closed:
            # A notice names the last seq of its commit: one this node has
            # read already (a notice queued behind the read that took its
            # rows) needs no look.  A timeout or a reconnection: a look anyway.
            notices = self._listener.wait(1.0)
            if notices and max(map(_seq_of, notices)) <= self.committed_seq:
                continue
            # Reads at most every FOLLOW_GATHER: under load, each node's
            # commits would otherwise wake every node's follower (and loop)
            # once each; a pause lets the others' commits land first.  A
            # quiet center pays nothing: its reads are farther apart.  With
            # nobody waiting on this node (no SSE client, no webhook), only
            # its own bookkeeping reads, and a few reads a second will do.
            gather = FOLLOW_GATHER if self._prompt_subscribers else FOLLOW_GATHER_UNWATCHED
            pause = self._last_look + gather - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._last_look = time.monotonic()
            try:
                self._catch_up()
            except Exception:   # the database is away: the next round retries
                log.warning("event stream follower could not read", exc_info=True)
                time.sleep(0.5)

    def _catch_up(self) -> None:
        while not self._closed:
            items = self.read_after(self.committed_seq, _FOLLOW_CHUNK)
            if not items:
                return
            for item in items:
                self._follow_audience.saw(item)
                item.audience = self._follow_audience(item)
            self.committed_seq = self.seq = items[-1].seq
            if self._subscribers and self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self._fan_out, items)
                except RuntimeError:   # the loop closed in between
                    return
            if len(items) < _FOLLOW_CHUNK:
                return

    def _on_fact(self, source: str, fact: dict) -> None:
        with self._lock:
            for e in self.translator.translate(source, fact):
                self._publish(e, self.translator.agents_of(e.call_id))

    # -- the writer thread says: committed -----------------------------------------------
    def _on_commit(self, rows: list[tuple]) -> None:
        last = rows[-1][0]
        with self._lock:
            batch = []
            while self._unsent and self._unsent[0].seq <= last:
                batch.append(self._unsent.popleft())
            self.committed_seq = max(self.committed_seq, last)
        if batch and self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._fan_out, batch)
            except RuntimeError:   # the loop closed in between
                pass

    def _fan_out(self, batch: list[StreamItem] | None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(batch)
            except Exception:
                log.exception("event subscriber failed")

    # -- subscribers (loop thread) -----------------------------------------------------------
    def subscribe(self, subscriber: Subscriber, *, prompt: bool = True) -> Callable[[], None]:
        """``subscriber(batch)`` gets every committed batch from now on, on
        the loop thread; ``None`` when the stream closes.  Returns the
        unsubscribe function.  ``prompt=False``: the node's own bookkeeping,
        content with a batch a few times a second on a shared log (clients
        and webhooks get theirs within FOLLOW_GATHER)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._subscribers.add(subscriber)
        if prompt:
            self._prompt_subscribers.add(subscriber)
        if self._closed:
            subscriber(None)

        def unsubscribe() -> None:
            self._subscribers.discard(subscriber)
            self._prompt_subscribers.discard(subscriber)
        return unsubscribe

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """No more events: subscribers are told (after what is queued)."""
        self._closed = True
        if self._follower is not None:
            self._follower.join(timeout=5.0)
            self._listener.close()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fan_out, None)
        with self._reader_lock:
            self._reader.close()

    # -- reading the file (worker threads) ---------------------------------------------------
    def _read(self, sql: str, args: tuple = ()) -> list:
        with self._reader_lock:
            return self._reader.execute(sql, args).fetchall()

    def _read_one(self, sql: str, args: tuple = ()):
        return self._read(sql, args)[0][0]

    def read_after(self, after: int, limit: int) -> list[StreamItem]:
        """Up to ``limit`` committed events with seq > ``after``, in order."""
        return [StreamItem(*row) for row in self._read(_AFTER, (after, limit))]

    def replay_audience(self) -> ReplayAudience:
        return ReplayAudience(self._read)

    def read_matching(self, after: int, flt: EventFilter, audience: ReplayAudience, *,
                      limit: int = 500, scan: int = 5000) -> tuple[list[StreamItem], int, bool]:
        """Events after ``after`` that ``flt`` passes: (up to ``limit`` of
        them, the last seq looked at, whether the file had no more)."""
        out: list[StreamItem] = []
        last = after
        chunk = min(max(limit, 200), scan)
        while True:
            rows = self.read_after(last, chunk)
            for item in rows:
                audience.saw(item)
                if flt.match(item, audience):
                    out.append(item)
                last = item.seq
                if len(out) >= limit:
                    return out, last, False
            if len(rows) < chunk:
                return out, last, True
            scan -= len(rows)
            if scan <= 0:
                return out, last, False

    def _seed_agent_states(self) -> None:
        for agent, body in self._read(_LAST_STATES, (self.seq - _LOOK_BACK,)):
            try:
                e = json.loads(body)
                self.translator.seed_agent(agent, e["current"], e.get("reason"))
            except (ValueError, KeyError, TypeError):
                continue
