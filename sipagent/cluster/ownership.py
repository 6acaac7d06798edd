"""Which partitions this node runs: holding their leases, and letting go.

One asyncio task per node (:meth:`Ownership.run`).  Every third of the
lease time it tries to hold every partition: a lease it has is renewed, a
free or expired one is taken, one another live node holds is left alone.
So a node that starts (or restarts after a crash) takes only what nobody
holds: it never takes a partition back from a live node, and no call is
dropped for its return.

What the node does on a change is the caller's (``on_gain``, ``on_loss``):
log the partition's agents in, or out.  Both run on the loop.

Losing without being told
-------------------------
A node whose renewals stall (the database is unreachable, the loop froze)
cannot hear that its lease ran out.  It therefore gives a partition up by
its own clock too: once its last successful renewal is older than
``lease_seconds - margin``, it acts as if the lease were gone.  The margin
(one renewal interval) covers a renewal that was in flight.  Another node
can only take the lease after ``lease_seconds`` by the database's clock, so
the two never run the partition at the same time as long as their clocks
do not drift apart by more than the margin within one lease time.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable, Iterable

import structlog

from sipagent.store.leases import Lease, LeaseTable

log = structlog.get_logger("sipagent.cluster.ownership")

__all__ = ["Ownership"]


class Ownership:
    def __init__(self, leases: LeaseTable, node_id: str, sip_uri: str,
                 partitions: Iterable[str], lease_seconds: float, *,
                 on_gain: Callable[[str], None], on_loss: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic):
        self._leases = leases
        self.node_id, self.sip_uri = node_id, sip_uri
        self.partitions = tuple(partitions)
        self.lease_seconds = float(lease_seconds)
        self.interval = self.lease_seconds / 3
        self._on_gain, self._on_loss = on_gain, on_loss
        self._clock = clock
        self.held: dict[str, Lease] = {}
        self._renewed: dict[str, float] = {}     # partition -> our clock at the last renewal
        # One thread at a time on the one database connection.
        self._db_lock = asyncio.Lock()

    def owns(self, partition: str) -> bool:
        return partition in self.held

    async def run(self) -> None:
        """Renew and take leases, and watch the clock, until cancelled."""
        async def renew() -> None:
            while True:
                started = self._clock()
                await self.round()
                await asyncio.sleep(max(0.0, self.interval - (self._clock() - started)))

        async def watch() -> None:
            # Apart from the renewals: a renewal stuck in the database must
            # not keep a partition past the lease time.
            while True:
                self.check_clock()
                await asyncio.sleep(self.interval / 4)

        await asyncio.gather(renew(), watch())

    async def round(self) -> None:
        """One pass over every partition (also what tests step)."""
        for partition in self.partitions:
            try:
                async with self._db_lock:
                    lease = await asyncio.to_thread(self._leases.hold, partition, self.node_id,
                                                    self.sip_uri, self.lease_seconds)
            except Exception as exc:       # the database is away: keep what the clock allows
                log.warning("lease renewal failed", partition=partition, error=str(exc))
                continue
            if lease is not None:
                gained = partition not in self.held
                self.held[partition] = lease
                self._renewed[partition] = self._clock()
                if gained:
                    log.info("partition taken", partition=partition, epoch=lease.epoch)
                    self._on_gain(partition)
            elif partition in self.held:
                self._lose(partition, "held by another node")

    def check_clock(self) -> None:
        """Give up partitions whose last renewal is too old (call often)."""
        for partition in list(self.held):
            if self._expired_locally(partition):
                self._lose(partition, "no renewal within the lease time")

    async def release_all(self) -> None:
        """A clean stop: hand every lease back so another node takes over at once."""
        for partition, lease in list(self.held.items()):
            self._lose(partition, "released")
            try:
                async with self._db_lock:
                    await asyncio.to_thread(self._leases.release, lease)
            except Exception as exc:
                log.warning("lease release failed", partition=partition, error=str(exc))

    def _expired_locally(self, partition: str) -> bool:
        return self._clock() - self._renewed.get(partition, float("-inf")) \
            > self.lease_seconds - self.interval

    def _lose(self, partition: str, why: str) -> None:
        if self.held.pop(partition, None) is None:
            return
        self._renewed.pop(partition, None)
        log.warning("partition given up", partition=partition, reason=why)
        self._on_loss(partition)
