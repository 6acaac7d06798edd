"""Partition leases on a real PostgreSQL server (sipagent/store/leases.py):
one holder at a time, the database's clock, an epoch per change of
holder, and a clean hand-back."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from sipagent.store.leases import LeaseTable

pytestmark = pytest.mark.cluster


@pytest.fixture
def table(postgres):
    conns = []

    def connect():
        conn = psycopg.connect(postgres.dsn, autocommit=True)
        conns.append(conn)
        return LeaseTable(conn)

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS partition_lease")
    yield connect
    for conn in conns:
        conn.close()


def test_one_holder_until_the_lease_runs_out(table):
    a, b = table(), table()
    first = a.hold("p1", "node-a", "sip:127.0.0.1:5070", ttl=0.6)
    assert first is not None and first.epoch == 1
    assert b.hold("p1", "node-b", "sip:127.0.0.1:5080", ttl=0.6) is None
    renewed = a.hold("p1", "node-a", "sip:127.0.0.1:5070", ttl=0.6)
    assert renewed.epoch == 1 and renewed.expires >= first.expires
    assert b.holder("p1").node == "node-a"
    time.sleep(0.8)                      # node-a stops renewing: it died
    assert b.holder("p1").live is False
    taken = b.hold("p1", "node-b", "sip:127.0.0.1:5080", ttl=5)
    assert taken is not None and taken.epoch == 2
    # node-a wakes up: its renewal is refused, and the holder is node-b.
    assert a.hold("p1", "node-a", "sip:127.0.0.1:5070", ttl=5) is None
    assert a.holder("p1").sip_uri == "sip:127.0.0.1:5080"


def test_release_hands_over_at_once(table):
    a, b = table(), table()
    lease = a.hold("p2", "node-a", "sip:a", ttl=60)
    assert b.hold("p2", "node-b", "sip:b", ttl=60) is None
    assert a.release(lease) is True
    assert a.release(lease) is False or b.holder("p2").live is False
    taken = b.hold("p2", "node-b", "sip:b", ttl=60)
    assert taken is not None and taken.epoch == lease.epoch + 1
    assert a.release(lease) is False     # not node-a's any more
    assert [(l.partition, l.node) for l in b.all()] == [("p2", "node-b")]


def test_racing_nodes_never_both_win(table):
    nodes = [table() for _ in range(4)]
    for round_ in range(30):
        partition = f"race-{round_}"
        barrier = threading.Barrier(len(nodes))
        won = []

        def contend(i):
            barrier.wait()
            if nodes[i].hold(partition, f"node-{i}", f"sip:{i}", ttl=30) is not None:
                won.append(i)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(nodes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(won) == 1, (partition, won)
        assert nodes[0].holder(partition).node == f"node-{won[0]}"


def test_a_lease_needs_a_positive_time(table):
    with pytest.raises(ValueError, match="ttl"):
        table().hold("p3", "node-a", "sip:a", ttl=0)
