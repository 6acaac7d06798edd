"""Prometheus metrics of the engine (``sipacd_`` prefix, base units).

Wait histograms get a bucket edge at every configured service-level
threshold and at the short-abandon threshold, or PromQL could not compute
service level exactly.  Live gauges (calls waiting, agents by state) are
read from the ACD at scrape time instead of being kept in step by hand.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")

from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

WAIT_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 300)


def wait_buckets(thresholds: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted({float(x) for x in (*WAIT_EDGES, *thresholds)})) + (float("inf"),)


class EngineMetrics:
    def __init__(self, thresholds: Iterable[float] = ()):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        buckets = wait_buckets(thresholds)
        self.offered = Counter("sipacd_queue_offered", "Calls that entered a queue",
                               ["queue"], registry=r)
        self.answered = Counter("sipacd_queue_answered", "Queued calls connected to an agent",
                                ["queue"], registry=r)
        self.abandoned = Counter("sipacd_queue_abandoned", "Callers who hung up while waiting",
                                 ["queue"], registry=r)
        self.exited = Counter("sipacd_queue_exited", "Calls that left a queue for a reason "
                              "other than answer or abandon", ["queue", "reason"], registry=r)
        self.answer_wait = Histogram("sipacd_queue_answer_wait_seconds",
                                     "Wait of answered calls, queue entry to agent answer",
                                     ["queue"], buckets=buckets, registry=r)
        self.abandon_wait = Histogram("sipacd_queue_abandon_wait_seconds",
                                      "Wait of abandoned calls, queue entry to hang-up",
                                      ["queue"], buckets=buckets, registry=r)
        self.offers = Counter("sipacd_agent_offers", "Calls offered to agents, by result",
                              ["queue", "result"], registry=r)
        self.sip_rejected = Counter("sipacd_sip_rejected", "INVITEs refused by the engine",
                                    ["reason"], registry=r)
        self.calls = Counter("sipacd_calls", "Call legs ended, by direction",
                             ["direction"], registry=r)
        self.flow_errors = Counter("sipacd_flow_errors", "Flows that raised", ["flow"], registry=r)
        self.flow_reloads = Counter("sipacd_flow_reloads", "Flow file reloads", ["result"],
                                    registry=r)

    def add_live_gauges(self, read: Callable[[], dict]) -> None:
        """``read()`` returns {"active_calls", "capacity", "waiting": {queue: n},
        "agents": {queue: {state: n}}} at scrape time."""
        self.registry.register(_LiveGauges(read))


class _LiveGauges:
    def __init__(self, read):
        self._read = read

    def describe(self):
        return []

    def collect(self):
        snap = self._read()
        active = GaugeMetricFamily("sipacd_active_calls", "Call legs in the engine now")
        active.add_metric([], snap["active_calls"])
        capacity = GaugeMetricFamily("sipacd_call_capacity",
                                     "Call legs the engine accepts before answering 503")
        capacity.add_metric([], snap["capacity"])
        waiting = GaugeMetricFamily("sipacd_queue_waiting_calls", "Calls waiting in the queue",
                                    labels=["queue"])
        for q, n in snap["waiting"].items():
            waiting.add_metric([q], n)
        agents = GaugeMetricFamily("sipacd_queue_agents", "Agents of the queue by state",
                                   labels=["queue", "state"])
        for q, states in snap["agents"].items():
            for state, n in states.items():
                agents.add_metric([q, state], n)
        yield from (active, capacity, waiting, agents)
