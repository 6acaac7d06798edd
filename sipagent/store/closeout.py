"""Closing out, at start, what a crash of the previous run left open.

A ``kill -9`` (or a power cut) stops the engine between two events: callers
were waiting, calls were bridged, agents were logged in, call records had
no end.  Their calls died with the process (the engine was the media path),
so each gets its ending now, at the last moment the previous run was known
alive: the later of its last event and its last heartbeat (see
``EventLog``: the heartbeat lags the crash by at most its interval plus a
flush interval).  Without it a report would count the lost callers as
offered with no outcome, the connected calls as talking for ever, and the
agents as idle until their next login.

What is written, all at that moment ``t``, with ``reason`` (``engine_restart``):

* a waiting caller: EXIT ``reason`` with its wait up to ``t``, its one outcome;
* a connected call: COMPLETE_SYSTEM ``reason`` (the talk ends at ``t``; the
  report counts the agent busy until then, and leaves the call out of AHT:
  it was cut short, and had no wrap-up);
* an agent still logged in: LOGOUT ``reason``;
* a call record without an end: ``end`` = ``t``, ``outcome`` = ``reason``,
  ``hangup_side`` = ``system``, and the best known ``talk`` and ``wait``.

It must run once at start, before the new run logs any call or login.

On a log several nodes share (PostgreSQL) it ends one ``node``'s calls,
agents and records only: those that node started (its ENTER, CONNECT,
LOGIN, its records), whoever logged their endings, at that node's last
moment known alive.  The node itself runs it at its restart; the node that
takes its partitions over runs it first (``reason`` ``node_lost``) if the
dead node's heartbeat has stopped.  Whichever runs second finds nothing
left open.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

import structlog

from sipagent.store.eventlog_schema import read_only

__all__ = ["RESTART", "NODE_LOST", "ClosedOut", "close_out", "close_out_lost_nodes"]

log = structlog.get_logger("sipagent.store.closeout")

#: The outcome and reason of everything closed out at a restart.
RESTART = "engine_restart"

# A caller waits minutes, not days: older events are not looked at.
_HORIZON = 86400.0
#: What a node that takes over a dead node's partitions closes out with.
NODE_LOST = "node_lost"

# {node} becomes a filter on the node that wrote a row, or nothing (one writer).
_LAST_T = "SELECT MAX(t) FROM event e WHERE TRUE {node}"
_WAITING = (
    "SELECT e.queue, e.call_id, e.t FROM event e WHERE e.kind = 'ENTER' AND e.t >= ? {node}"
    " AND NOT EXISTS (SELECT 1 FROM event x WHERE x.call_id = e.call_id AND x.queue = e.queue"
    "   AND x.kind IN ('CONNECT', 'ABANDON', 'EXIT')"
    "   AND (x.t > e.t OR (x.t = e.t AND x.id > e.id)))"
    " ORDER BY e.t, e.id"
)
# A talk starts at CONNECT, or at CALLBACK_CONNECTED for a callback whose
# outcome was counted when the caller pressed the key (no CONNECT then).
_TALKING = (
    "SELECT e.queue, e.call_id, e.agent, e.t FROM event e"
    " WHERE e.kind IN ('CONNECT', 'CALLBACK_CONNECTED') AND e.agent IS NOT NULL AND e.t >= ? {node}"
    " AND NOT EXISTS (SELECT 1 FROM event x WHERE x.call_id = e.call_id"
    "   AND x.kind IN ('COMPLETE_CALLER', 'COMPLETE_AGENT', 'COMPLETE_SYSTEM', 'TRANSFER')"
    "   AND (x.t > e.t OR (x.t = e.t AND x.id > e.id)))"
    " ORDER BY e.t, e.id"
)
# An agent logged in again elsewhere since (a node that took the partition
# over) is left alone: its session there is not this node's to end.
_LOGGED_IN = (
    "SELECT i.agent FROM (SELECT e.agent, MAX(e.t) AS t FROM event e WHERE e.kind = 'LOGIN'"
    "                     {node} GROUP BY e.agent) i"
    " LEFT JOIN (SELECT agent, MAX(t) AS t FROM event WHERE kind = 'LOGOUT' GROUP BY agent) o"
    " ON o.agent = i.agent"
    " JOIN (SELECT agent, MAX(t) AS t FROM event WHERE kind = 'LOGIN' GROUP BY agent) a"
    " ON a.agent = i.agent AND a.t = i.t"
    " WHERE o.t IS NULL OR o.t < i.t ORDER BY i.agent"
)
_OPEN_RECORDS = ('SELECT call_id, answer, talk, updated FROM call_record e WHERE "end" IS NULL'
                 ' {node} ORDER BY call_id')
_LAST_ALIVE = "SELECT t FROM node_heartbeat WHERE node = ?"
_LOST_NODES = ("SELECT node, t FROM node_heartbeat WHERE node <> ? AND t < ? AND t > ?"
               " ORDER BY node")
# Before schema 5 one writer stamped one row.
_LAST_ALIVE_ONE_WRITER = "SELECT t FROM heartbeat WHERE id = 1"


class LogWriter(Protocol):
    """What the close-out needs of ``EventLog`` (which imports this module)."""
    source: Path | str
    node: str | None

    def flush(self, timeout: float | None = ...) -> bool: ...
    def queue_event(self, t_wall: float, queue: str, call_id: str, kind: str,
                    **fields: Any) -> None: ...
    def agent_event(self, t_wall: float, agent: str, kind: str, **fields: Any) -> None: ...
    def call_record(self, call_id: str, **fields: Any) -> None: ...


class ClosedOut(NamedTuple):
    """What one close-out ended."""
    waiting: int = 0       # callers that were waiting (EXIT)
    talking: int = 0       # connected calls (COMPLETE_SYSTEM)
    agents: int = 0        # agents logged out
    records: int = 0       # call records given an end


def last_alive(conn, node: str) -> float | None:
    """``node``'s last heartbeat in the log, or None (never written)."""
    row = conn.execute(_LAST_ALIVE, (node,)).fetchone()
    if row is None and conn.dialect == "sqlite":
        row = conn.execute(_LAST_ALIVE_ONE_WRITER).fetchone()
    return None if row is None else row[0]


def _by_node(sql: str, node: str | None) -> tuple[str, tuple]:
    if node is None:
        return sql.format(node=""), ()
    return sql.format(node="AND e.node = ?"), (node,)


def _rows(conn, sql: str, args: Sequence, node: str | None) -> list:
    sql, extra = _by_node(sql, node)
    return conn.execute(sql, (*args, *extra)).fetchall()


def close_out(eventlog: LogWriter, reason: str = RESTART, alive: float | None = None, *,
              node: str | None = None) -> ClosedOut:
    """Close what the log left open at the later of its last event and ``alive``
    (the last heartbeat of the run that left it); ``node``: only that node's
    (module doc), None: everything.  Idempotent."""
    eventlog.flush()
    conn = read_only(eventlog.source)
    try:
        # Two nodes closing out one dead node must not both end its calls:
        # the second reads after the first has written and flushed.
        with conn.exclusive(f"closeout_{node or ''}"):
            return _close_out(conn, eventlog, reason, alive, node)
    finally:
        conn.close()


def _close_out(conn, eventlog: LogWriter, reason: str, alive: float | None,
               node: str | None) -> ClosedOut:
    known = [t for t in (_rows(conn, _LAST_T, (), node)[0][0], alive) if t is not None]
    if not known:
        return ClosedOut()
    at = max(known)
    waiting = _rows(conn, _WAITING, (at - _HORIZON,), node)
    talking = _latest_per_call(_rows(conn, _TALKING, (at - _HORIZON,), node))
    agents = [a for (a,) in _rows(conn, _LOGGED_IN, (), node)]
    records = _rows(conn, _OPEN_RECORDS, (), node)
    waits = {}
    for queue, call_id, entered in waiting:
        waits[call_id] = at - entered
        eventlog.queue_event(at, queue, call_id, "EXIT", reason=reason, wait=at - entered)
    for queue, call_id, agent, _connected in talking:
        eventlog.queue_event(at, queue, call_id, "COMPLETE_SYSTEM", agent=agent, reason=reason)
    for agent in agents:
        eventlog.agent_event(at, agent, "LOGOUT", reason=reason)
    for call_id, answer, talk, updated in records:
        # A record untouched for longer than the horizon is older than this
        # crash: its last update is the best known end.
        end = at if updated >= at - _HORIZON else max(updated, answer or updated)
        if talk is None and answer is not None:
            talk = max(0.0, end - answer)
        eventlog.call_record(call_id, end=end, outcome=reason, hangup_side="system", talk=talk,
                             wait=waits.get(call_id), t_wall=end)
    eventlog.flush()
    closed = ClosedOut(len(waiting), len(talking), len(agents), len(records))
    if any(closed):
        log.warning("closed what the last run left open", at=at, reason=reason, node=node,
                    **closed._asdict())
    return closed


def close_out_lost_nodes(eventlog: LogWriter, *, stale_after: float,
                         done: dict[str, float] | None = None,
                         now: float | None = None) -> dict[str, ClosedOut]:
    """On a shared log: close out (``node_lost``) every other node whose
    heartbeat stopped more than ``stale_after`` seconds ago (within the
    horizon); what was closed, by node.  ``done`` (node -> heartbeat) skips
    a node already closed out at that heartbeat: callers that sweep
    periodically pass the same dict each time."""
    now = time.time() if now is None else now
    done = {} if done is None else done
    conn = read_only(eventlog.source)
    try:
        lost = conn.read(_LOST_NODES, (eventlog.node or "", now - stale_after, now - _HORIZON))
    finally:
        conn.close()
    closed = {}
    for node, t in lost:
        if done.get(node) != t:
            closed[node] = close_out(eventlog, NODE_LOST, t, node=node)
            done[node] = t
    return {node: c for node, c in closed.items() if any(c)}


def _latest_per_call(talks: list) -> list:
    """One talk per call (its latest start), in the order of those starts:
    a transferred call may have connected several times."""
    latest = {}
    for queue, call_id, agent, t in talks:
        latest.pop(call_id, None)       # re-inserted last: dicts keep insertion order
        latest[call_id] = (queue, call_id, agent, t)
    return list(latest.values())
