"""This engine as one node of several: its connection to the shared
PostgreSQL database, its numbers in Kamailio's routing table, its leases,
and which agents it runs.

The engine hands in plain values and two callables (it owns the queue
runtime, which this layer does not import):

- ``log_in(agent_id, paused)`` when a partition comes to this node: the
  partition's agents that log in by themselves go on duty here, in the
  state they last chose (``last_states``, read from the shared log: paused
  with its reason, or available; one who logged out stays out);
- ``log_out(agent_id)`` when it leaves: they go off duty here, so no
  agent is ever offered calls by two nodes at once;
- ``follow_queues(queues)`` (a coroutine) after each gain or loss and each
  sweep, with the queues this node runs now: their pending work in the
  shared store (callbacks) is taken up here, the others' let go;
- ``close_out_lost()`` (blocking; run in a thread) when a partition comes
  and every ``lease_seconds`` after: the calls, agents and records of nodes
  whose heartbeat stopped are ended in the shared log (``node_lost``,
  ``store/closeout.py``).  At a takeover it runs before this node logs the
  partition's agents in, so the stream says the dead node's "logged out"
  before our "logged in"; a later sweep leaves agents logged in here alone.

Kamailio (deploy/kamailio/kamailio.cfg) routes a number to the holder of
its partition's lease by joining ``partition_number`` with
``partition_lease``; :meth:`ClusterNode.start` publishes this node's
numbers there (the route numbers of the config whose queue is in a
partition).  Nodes run the same configuration, so they publish the same
rows.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Mapping

import structlog

from sipagent.cluster.ownership import Ownership
from sipagent.store.closeout import close_out_lost_nodes
from sipagent.store.leases import LeaseTable

log = structlog.get_logger("sipagent.cluster.node")

__all__ = ["ClusterNode", "NUMBERS_SCHEMA", "lost_node_closer"]

NUMBERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS partition_number (
    number    TEXT PRIMARY KEY,
    partition TEXT NOT NULL
)
"""
_PUBLISH = ("INSERT INTO partition_number (number, partition) VALUES (%s, %s) "
            "ON CONFLICT (number) DO UPDATE SET partition = excluded.partition")


def lost_node_closer(eventlog, lease_seconds: float, heartbeat_interval: float):
    """``close_out_lost`` for a node writing ``eventlog``: nodes silent for
    four heartbeats (a live one's is at most one interval and a flush old),
    and at least a lease, are dead."""
    stale, done = max(lease_seconds, 4 * heartbeat_interval), {}
    return lambda: close_out_lost_nodes(eventlog, stale_after=stale, done=done)


class ClusterNode:
    def __init__(self, *, node_id: str, database: str, sip_uri: str, lease_seconds: float,
                 partition_agents: Mapping[str, list[str]], numbers: Mapping[str, str],
                 queue_partition: Mapping[str, str],
                 log_in: Callable[[str], None], log_out: Callable[[str], None],
                 close_out_lost: Callable[[], object] | None = None,
                 last_states: Callable[[list[str]], Mapping[str, tuple]] | None = None,
                 follow_queues: Callable[[set[str]], Awaitable[None]] | None = None):
        self.node_id, self.sip_uri = node_id, sip_uri
        self._database = database
        self._lease_seconds = lease_seconds
        self._partition_agents = {p: list(a) for p, a in partition_agents.items()}
        self._numbers = dict(numbers)
        self._queue_partition = dict(queue_partition)
        self._log_in, self._log_out = log_in, log_out
        self._close_out_lost = close_out_lost
        self._last_states = last_states
        self._follow_queues = follow_queues
        self._takeovers: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._conn = None
        self.ownership: Ownership | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)
        leases = await asyncio.to_thread(LeaseTable, self._conn)
        self.ownership = Ownership(leases, self.node_id, self.sip_uri,
                                   self._partition_agents, self._lease_seconds,
                                   on_gain=self._gained, on_loss=self._lost)
        # The first round before the engine takes calls: a node alone (or the
        # first up) runs its partitions from its first call on.
        await self.ownership.round()
        await self.settled()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self.ownership.run())
        self._sweeper = loop.create_task(self._sweep()) if self._close_out_lost else None
        log.info("cluster node started", node=self.node_id, sip_uri=self.sip_uri,
                 partitions=sorted(self.ownership.held))

    def _connect(self):
        import psycopg

        conn = psycopg.connect(self._database, autocommit=True, connect_timeout=5)
        with conn.cursor() as cur:
            cur.execute(NUMBERS_SCHEMA)
            for number, partition in self._numbers.items():
                cur.execute(_PUBLISH, (number, partition))
        return conn

    async def settled(self) -> None:
        """Until the partitions gained so far have their agents logged in."""
        while self._takeovers:
            await asyncio.gather(*self._takeovers, return_exceptions=True)

    def set_partition_agents(self, partition_agents: Mapping[str, list[str]]) -> None:
        """Each partition's agents that log in by themselves, after an agent
        change: who goes on duty at the partition's next takeover."""
        self._partition_agents = {p: list(a) for p, a in partition_agents.items()}

    def queues_run(self) -> set[str]:
        """The queues of the partitions this node holds now."""
        return {q for q, p in self._queue_partition.items() if self.owns(p)}

    def owns(self, partition: str) -> bool:
        return self.ownership is not None and self.ownership.owns(partition)

    def _gained(self, partition: str) -> None:
        self._spawn(self._take_over(partition))

    def _spawn(self, work) -> None:
        """A step of a gain or loss, awaited by :meth:`settled`."""
        task = asyncio.get_running_loop().create_task(work)
        self._takeovers.add(task)
        task.add_done_callback(self._takeovers.discard)

    async def _close_out(self) -> None:
        try:
            closed = await asyncio.to_thread(self._close_out_lost)
            if closed:
                log.warning("closed out what lost nodes left open",
                            closed={n: c._asdict() for n, c in closed.items()})
        except Exception:    # the log is away: the next sweep tries again
            log.exception("close-out of lost nodes failed")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds)
            await self._close_out()
            await self._queues_changed()

    async def _queues_changed(self) -> None:
        if self._follow_queues is None:
            return
        try:
            await self._follow_queues(self.queues_run())
        except Exception:     # the next sweep tries again
            log.exception("queues' work not taken up")

    async def _take_over(self, partition: str) -> None:
        if self._close_out_lost is not None:
            await self._close_out()
        agents = self._partition_agents.get(partition, [])
        states: Mapping[str, tuple] = {}
        if self._last_states is not None and agents:
            try:
                states = await asyncio.to_thread(self._last_states, agents)
            except Exception:    # the log is away: they come on duty available
                log.exception("agents' last states not read", partition=partition)
        if not self.owns(partition):     # lost again meanwhile
            return
        for agent_id in agents:
            kind, reason = states.get(agent_id, (None, None))
            if kind == "LOGOUT":     # logged out by choice: stays so
                continue
            self._log_in(agent_id, reason if kind == "PAUSE" else None)
        await self._queues_changed()

    def _lost(self, partition: str) -> None:
        for agent_id in self._partition_agents.get(partition, ()):
            self._log_out(agent_id)
        self._spawn(self._queues_changed())

    async def stop(self) -> None:
        """Hand every lease back (another node takes over at once) and disconnect."""
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._sweeper = None
        await self.settled()
        if self.ownership is not None:
            await self.ownership.release_all()
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None
