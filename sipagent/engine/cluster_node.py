"""The engine as one node of several (``[cluster]``): its leases and the
agents it runs (``sipagent/cluster/node.py``), wired to the queue runtime,
the shared event log and the admin API.

- A partition that comes to this node puts its agents on duty here, after
  the close-out of lost nodes, as they last chose to be (paused stays
  paused); one that leaves takes them off duty.
- Pending callbacks are carried out by the node that runs their queue:
  taken up from the shared store at a takeover and at each sweep (a web
  request made on another node within a lease), let go when the
  partition leaves, unless already in line.
- Agent changes are made on the node that runs the agent's partition
  (``queue/agent_admin.py``); the others follow the ``agent.*`` events of
  the shared stream, and every node keeps its list of each partition's
  agents up to date, so a takeover puts a new agent on duty too.
"""
from __future__ import annotations

import asyncio
import json

import structlog

from sipagent.cluster.node import ClusterNode, lost_node_closer
from sipagent.store.agent_history import last_chosen_states

log = structlog.get_logger("sipagent.engine")

_AGENT_CHANGES = frozenset({"agent.added", "agent.updated", "agent.removed"})


async def join_cluster(engine, agents: dict, heartbeat_interval: float) -> ClusterNode:
    config, queues = engine.config, engine.queues
    settings = config.cluster.node_settings(config, agents)
    def log_in(agent_id: str, paused: str | None) -> None:
        queues.go_on_duty(agent_id)
        if paused is not None:
            queues.agent_command(agent_id, "pause", paused)

    async def follow_queues(run: set[str]) -> None:
        pending = await asyncio.to_thread(engine.callback_store.pending, run)
        queues.callbacks.run_only(run, pending)

    source = engine.eventlog.source
    node = ClusterNode(
        **settings, log_in=log_in,
        log_out=lambda agent_id: queues.go_off_duty(agent_id, "partition_moved"),
        close_out_lost=lost_node_closer(engine.eventlog, settings["lease_seconds"],
                                        heartbeat_interval),
        last_states=lambda agents: last_chosen_states(source, agents),
        follow_queues=follow_queues)
    admin = engine.agent_admin
    admin.partition_of = lambda spec: config.cluster.partition_of_queues(spec.queues)
    admin.runs = node.owns
    keypads = admin.on_change

    def changed(specs: dict) -> None:
        if keypads is not None:
            keypads(specs)
        node.set_partition_agents(config.cluster.node_settings(config, specs)["partition_agents"])

    admin.on_change = changed
    me = config.event_node

    def follow(batch) -> None:
        for item in batch or ():
            if item.type in _AGENT_CHANGES and item.agent \
                    and json.loads(item.body).get("node") != me:
                try:
                    admin.follow(item.agent)
                except Exception:    # this node keeps its old view; the store has the change
                    log.exception("agent change of another node not followed",
                                  agent=item.agent)

    if engine.events is not None:
        engine.events.subscribe(follow, prompt=False)   # 409s name the holder meanwhile
    await node.start()
    return node
