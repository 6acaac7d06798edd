"""The ``[cluster]`` table: this engine as one node of several.

::

    [cluster]
    node_id = "node-a"                      # unique per engine
    database = "postgresql://sipacd:secret@10.0.0.5/sipacd"
    sip_uri = "sip:10.0.0.11:5070"          # how Kamailio reaches this node
                                            # (default: sip:<sip.listen>:<sip.port>)
    lease_seconds = 6                       # a dead node's partitions move after this

    [cluster.partitions]
    front = ["support", "sales"]            # every queue an agent serves
    back  = ["billing"]                     # lies in one partition

Without ``[cluster]`` the engine is the embedded single process it always
was.  A partition's queues run on whichever node holds its lease
(sipagent/store/leases.py); Kamailio sends a partition's numbers there
(deploy/kamailio/kamailio.cfg).
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.config.values import Name, PostgresUrl, Section, as_tuple

# The lease is renewed three times per lease time; below 3 s a busy
# database or a GC pause could make a live node lose its partitions.
MIN_LEASE_SECONDS = 3.0


def _node_uri(value: str) -> str:
    if not re.fullmatch(r"sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?", value):
        raise ValueError(f"not a SIP URI of a host: {value!r} (expected sip:host[:port])")
    return value


class ClusterSection(Section):
    node_id: Name
    # The leases' database; by default the stores' ([data] database).
    database: PostgresUrl | None = None
    sip_uri: Annotated[str, AfterValidator(_node_uri)] | None = None
    lease_seconds: Annotated[float, Field(ge=MIN_LEASE_SECONDS, le=300)] = 6.0
    partitions: dict[Name, Annotated[tuple[Name, ...], BeforeValidator(as_tuple)]]

    def partition_of(self) -> dict[str, str]:
        """queue -> its partition."""
        return {q: p for p, queues in self.partitions.items() for q in queues}

    def partition_of_queues(self, queues) -> str | None:
        """The one partition of an agent's queues (None: no queue); a
        ValueError naming them if they span two."""
        where = self.partition_of()
        parts = sorted({where[q] for q in queues if q in where})
        if len(parts) > 1:
            raise ValueError(f"queues: the agent's queues span partitions {', '.join(parts)}; "
                             "every queue an agent serves must be in one partition")
        return parts[0] if parts else None

    def node_settings(self, config, agents) -> dict:
        """What ``sipagent.cluster.node.ClusterNode`` takes: plain values.
        ``agents``: the running agents' specs (file and admin database), of
        which those that log in by themselves follow their partition."""
        where = self.partition_of()
        partition_agents: dict[str, list[str]] = {p: [] for p in self.partitions}
        for agent_id, spec in agents.items():
            parts = {where[q] for q in spec.queues if q in where}
            if spec.auto_login and len(parts) == 1:
                partition_agents[parts.pop()].append(agent_id)
        numbers = {r.number: where[r.queue] for r in config.routes
                   if r.queue in where and r.match == "exact"}
        sip = config.sip
        return {"node_id": self.node_id, "database": self.database or config.data.database,
                "sip_uri": self.sip_uri or f"sip:{sip.listen}:{sip.port}",
                "lease_seconds": self.lease_seconds, "partition_agents": partition_agents,
                "numbers": numbers, "queue_partition": where}


def cluster_problems(config) -> list[tuple[tuple[str | int, ...], str]]:
    """Every queue in exactly one partition; every agent's queues in one."""
    cluster = config.cluster
    if cluster is None:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if config.data.database is None:
        # Without the shared store each node would keep its own event log,
        # users and callbacks: not one call center.
        problems.append((("data", "database"), "a cluster keeps its stores in PostgreSQL: "
                                               "set it to the nodes' shared database"))
    if not cluster.partitions:
        problems.append((("cluster", "partitions"), "at least one partition is required"))
    seen: dict[str, str] = {}
    known = ", ".join(config.queues) or "none"
    for name, queues in cluster.partitions.items():
        if not queues:
            problems.append((("cluster", "partitions", name), "a partition needs a queue"))
        for i, queue in enumerate(queues):
            where = ("cluster", "partitions", name, i)
            if queue not in config.queues:
                problems.append((where, f"unknown queue {queue!r} (defined queues: {known})"))
            elif queue in seen:
                problems.append((where, f"queue {queue!r} is already in partition "
                                        f"{seen[queue]!r}"))
            else:
                seen[queue] = name
    for queue in config.queues:
        if queue not in seen and cluster.partitions:
            problems.append((("cluster", "partitions"), f"queue {queue!r} is in no partition"))
    for agent_id, agent in config.agents.items():
        parts = sorted({seen[q] for q in agent.queues if q in seen})
        if len(parts) > 1:
            # Two owners could then offer the agent two calls at once.
            problems.append((("agents", agent_id, "queues"),
                             f"the agent's queues span partitions {', '.join(parts)}; "
                             "every queue an agent serves must be in one partition"))
    return problems
