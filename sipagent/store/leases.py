"""Partition leases in PostgreSQL: which engine runs which group of queues.

Several engines share one PostgreSQL database.  Queues are grouped into
partitions (every queue an agent serves is in one partition), and each
partition's scheduler runs on exactly one engine at a time: the holder of
the partition's lease.  No home-made consensus: PostgreSQL's row lock and
its one clock decide.

Theory of operation
-------------------
A lease is one row: partition, node, the node's SIP URI (where Kamailio
sends the partition's calls), ``expires`` and an ``epoch``.

- **Taking or keeping** a lease is one statement (:meth:`LeaseTable.hold`):
  insert the row, or update it *only if* this node already holds it or it
  has expired.  Two nodes racing for an expired lease serialise on the
  row; the loser's update matches nothing and it is told "held by X".
- **Time** is the database server's (``now()``), never a node's clock, so
  nodes whose clocks disagree still agree on who holds what.
- **Epoch**: every change of holder adds one.  A node stamps what it
  writes for a partition with the epoch it holds, so a node that lost its
  lease while it was stalled (a long GC pause, a frozen VM) and wakes up
  can be refused rather than believed (fencing).
- **A node stops acting for a partition** as soon as a renewal fails, and
  also when its last successful renewal is older than the lease time less
  a margin, whichever comes first: it may not know it lost the lease, but
  it knows the lease can have run out.
- **Giving back** (:meth:`LeaseTable.release`, at a clean shutdown) expires
  the row at once, so a survivor takes over without waiting the TTL out.

The statements use only parameters; the table is made by :data:`SCHEMA`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMA", "Lease", "LeaseTable"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS partition_lease (
    partition TEXT PRIMARY KEY,
    node      TEXT NOT NULL,
    sip_uri   TEXT NOT NULL,
    expires   TIMESTAMPTZ NOT NULL,
    epoch     BIGINT NOT NULL
)
"""

_HOLD = """
INSERT INTO partition_lease AS l (partition, node, sip_uri, expires, epoch)
VALUES (%(partition)s, %(node)s, %(sip_uri)s,
        now() + make_interval(secs => %(ttl)s), 1)
ON CONFLICT (partition) DO UPDATE
    SET node = excluded.node, sip_uri = excluded.sip_uri, expires = excluded.expires,
        epoch = CASE WHEN l.node = excluded.node AND l.expires >= now() THEN l.epoch
                     ELSE l.epoch + 1 END
    WHERE l.node = excluded.node OR l.expires < now()
RETURNING epoch, extract(epoch FROM expires)::float8
"""

_HOLDER = """
SELECT node, sip_uri, epoch, extract(epoch FROM expires)::float8, expires >= now()
FROM partition_lease WHERE partition = %(partition)s
"""

_RELEASE = """
UPDATE partition_lease SET expires = now() - interval '1 millisecond'
WHERE partition = %(partition)s AND node = %(node)s AND epoch = %(epoch)s
"""

_ALL = """
SELECT partition, node, sip_uri, epoch, extract(epoch FROM expires)::float8,
       expires >= now()
FROM partition_lease ORDER BY partition
"""


@dataclass(frozen=True)
class Lease:
    partition: str
    node: str
    sip_uri: str
    epoch: int
    expires: float           # epoch seconds, the database's clock
    live: bool = True        # not expired when it was read


class LeaseTable:
    """Leases over one psycopg connection (autocommit: every statement is
    its own transaction).  Blocking: call from a worker thread."""

    def __init__(self, connection: Any):
        self._conn = connection
        with self._conn.cursor() as cur:
            cur.execute(SCHEMA)

    def hold(self, partition: str, node: str, sip_uri: str, ttl: float) -> Lease | None:
        """Take the partition's lease or renew ours for ``ttl`` seconds; None
        when another node holds it and it has not expired."""
        if not ttl > 0:
            raise ValueError(f"lease ttl must be > 0, got {ttl!r}")
        with self._conn.cursor() as cur:
            cur.execute(_HOLD, {"partition": partition, "node": node, "sip_uri": sip_uri,
                                "ttl": float(ttl)})
            row = cur.fetchone()
        if row is None:
            return None
        return Lease(partition, node, sip_uri, int(row[0]), float(row[1]))

    def holder(self, partition: str) -> Lease | None:
        """Who holds (or last held) the partition; None if nobody ever did."""
        with self._conn.cursor() as cur:
            cur.execute(_HOLDER, {"partition": partition})
            row = cur.fetchone()
        if row is None:
            return None
        return Lease(partition, row[0], row[1], int(row[2]), float(row[3]), bool(row[4]))

    def release(self, lease: Lease) -> bool:
        """Give the lease back at once (a clean shutdown); False if it was no
        longer ours."""
        with self._conn.cursor() as cur:
            cur.execute(_RELEASE, {"partition": lease.partition, "node": lease.node,
                                   "epoch": lease.epoch})
            return cur.rowcount == 1

    def all(self) -> list[Lease]:
        with self._conn.cursor() as cur:
            cur.execute(_ALL)
            return [Lease(r[0], r[1], r[2], int(r[3]), float(r[4]), bool(r[5]))
                    for r in cur.fetchall()]
