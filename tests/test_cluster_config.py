"""The ``[cluster]`` table: partitions that cover every queue once and keep
each agent's queues together."""
from __future__ import annotations

import re

import pytest

from sipagent.config.cluster import ClusterSection

from test_agent_keypad_config import parse, problems   # queue support, agent alice
from test_config import EXAMPLE

NODE = ('[data]\ndatabase = "postgresql://u:p@127.0.0.1/db"\n'
        '[cluster]\nnode_id = "a"\n')


def test_no_cluster_table_is_one_engine_alone():
    assert parse("").cluster is None


def test_partitions_map_queues():
    config = parse('[queues.sales]\n' + NODE + '[cluster.partitions]\nfront = ["support"]\n'
                   'back = ["sales"]\n')
    assert config.cluster.partition_of() == {"support": "front", "sales": "back"}
    assert config.cluster.lease_seconds == 6.0 and config.cluster.sip_uri is None


BAD = [
    (NODE + '[cluster.partitions]\nfront = ["support", "nope"]', "cluster.partitions.front[1]",
     ["unknown queue 'nope'"]),
    ('[queues.sales]\n' + NODE + '[cluster.partitions]\nfront = ["support"]',
     "cluster.partitions", ["queue 'sales' is in no partition"]),
    ('[queues.sales]\n' + NODE + '[cluster.partitions]\na = ["support"]\nb = ["support", '
     '"sales"]', "cluster.partitions.b[0]", ["already in partition 'a'"]),
    ('[queues.sales]\n[agents.bob]\nuri = "sip:bob@h"\nqueues = ["support", "sales"]\n' + NODE
     + '[cluster.partitions]\na = ["support"]\nb = ["sales"]', "agents.bob.queues",
     ["span partitions a, b"]),
    ('[cluster]\nnode_id = "a"\ndatabase = "sqlite:///x"\n[cluster.partitions]\n'
     'a = ["support"]', "cluster.database", ["must be a PostgreSQL URL"]),
    (NODE + 'lease_seconds = 1\n[cluster.partitions]\na = ["support"]',
     "cluster.lease_seconds", ["must be >= 3"]),
    (NODE, "cluster.partitions", ["required"]),
    ('[cluster]\nnode_id = "a"\n[cluster.partitions]\na = ["support"]', "data.database",
     ["a cluster keeps its stores in PostgreSQL"]),
    ('[data]\ndatabase = "/var/lib/x.db"', "data.database", ["must be a PostgreSQL URL"]),
]


def test_leases_default_to_the_stores_database():
    config = parse(NODE + '[cluster.partitions]\nfront = ["support"]\n')
    assert config.cluster.database is None
    assert config.cluster.node_settings(config, {})["database"] == config.data.database
    assert config.data.place.database == "postgresql://u:p@127.0.0.1/db"


@pytest.mark.parametrize("extra, key, words", BAD, ids=[b[1] + ":" + b[2][0] for b in BAD])
def test_bad_cluster_config_names_the_key(extra, key, words):
    found = problems(extra)
    assert key in found, f"no problem under {key!r}: {found}"
    for word in words:
        assert word in found[key], found[key]


def test_example_documents_every_cluster_key():
    text = EXAMPLE.read_text()
    assert [k for k in ClusterSection.model_fields
            if not re.search(rf"(?m)^#: {k} = ", text) and k != "partitions"] == []
    assert "#: [cluster.partitions]" in text
