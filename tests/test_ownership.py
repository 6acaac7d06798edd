"""Partition ownership between nodes on a real PostgreSQL server
(sipagent/cluster/ownership.py): a partition is run by one node, moves when
its node dies, is never taken back from a live node, and is given up by a
node whose renewals stall."""
from __future__ import annotations

import asyncio

import psycopg
import pytest

from sipagent.cluster.ownership import Ownership
from sipagent.store.leases import LeaseTable

pytestmark = pytest.mark.cluster

LEASE = 3.0


class Node:
    def __init__(self, postgres, name: str, partitions=("p1", "p2")):
        self.conn = psycopg.connect(postgres.dsn, autocommit=True)
        self.changes: list[tuple[str, str]] = []
        self.own = Ownership(LeaseTable(self.conn), name, f"sip:{name}", partitions, LEASE,
                             on_gain=lambda p: self.changes.append(("gain", p)),
                             on_loss=lambda p: self.changes.append(("loss", p)))
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.own.run())

    async def crash(self) -> None:
        """Stops renewing without a word (kill -9, seen from the database)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def close(self) -> None:
        self.conn.close()


async def until(predicate, timeout: float, what: str) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - start


def test_partitions_move_when_a_node_dies_and_stay_when_it_returns(postgres):
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS partition_lease")

    async def scenario():
        a, b = Node(postgres, "node-a"), Node(postgres, "node-b")
        a.start()
        await until(lambda: a.own.held.keys() == {"p1", "p2"}, 5, "node-a takes both")
        b.start()
        await asyncio.sleep(2 * LEASE)
        assert b.own.held == {} and b.changes == []         # nothing taken from a live node
        await a.crash()
        took = await until(lambda: b.own.held.keys() == {"p1", "p2"}, 3 * LEASE,
                           "node-b takes over")
        assert took <= LEASE + b.own.interval + 0.5, took
        # node-a comes back (a fresh process): it waits, it takes nothing.
        a2 = Node(postgres, "node-a")
        a2.start()
        await asyncio.sleep(2 * LEASE)
        assert a2.own.held == {} and b.own.held.keys() == {"p1", "p2"}
        # node-b stops cleanly: its leases are handed back at once.
        await b.crash()
        await b.own.release_all()
        handed = await until(lambda: a2.own.held.keys() == {"p1", "p2"}, 3 * LEASE,
                             "node-a takes back what was released")
        assert handed <= a2.own.interval + 0.5, handed
        await a2.crash()
        for node in (a, b, a2):
            node.close()
        return a.changes, b.changes, a2.changes

    a, b, a2 = asyncio.run(scenario())
    assert sorted(a) == [("gain", "p1"), ("gain", "p2")]
    assert sorted(b) == [("gain", "p1"), ("gain", "p2"), ("loss", "p1"), ("loss", "p2")]
    assert sorted(a2) == [("gain", "p1"), ("gain", "p2")]


def test_a_node_whose_renewals_stall_gives_up_before_another_can_take_over(postgres):
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS partition_lease")

    async def scenario():
        a, b = Node(postgres, "node-a", ("p1",)), Node(postgres, "node-b", ("p1",))
        a.start()
        await until(lambda: a.own.owns("p1"), 5, "node-a takes p1")
        # The database stops answering node-a (its connection is gone).
        a.conn.close()
        gave_up = await until(lambda: not a.own.owns("p1"), 2 * LEASE, "node-a gives up")
        # ... while its lease is still live in the database: nobody else
        # could have been running p1 yet.
        still_live = LeaseTable(b.conn).holder("p1").live
        b.start()
        await until(lambda: b.own.owns("p1"), 3 * LEASE, "node-b takes p1")
        await a.crash()
        await b.crash()
        b.close()
        return gave_up, still_live, a.changes

    gave_up, still_live, changes = asyncio.run(scenario())
    assert still_live
    # node-a stopped acting for p1 before the database let anyone else have it.
    assert gave_up <= LEASE, gave_up
    assert changes == [("gain", "p1"), ("loss", "p1")]
