"""Prometheus metrics of the engine (``sipacd_`` prefix, base units).

Wait histograms get a bucket edge at every configured service-level
threshold and at the short-abandon threshold, or PromQL could not compute
service level exactly.  Live gauges (calls waiting, agents by state) are
read from the ACD at scrape time instead of being kept in step by hand.

Several engines (``[cluster]``): Prometheus scrapes every node and the
recording rules sum by queue (prometheus/rules.yml), so a node exports
what is its own and nothing twice.  A queue's counters exist at 0 from the
start (:meth:`EngineMetrics.declare_queues`): a node that takes a partition
over then counts its first call, where a series born at 1 would be lost to
``increase()``.  A queue whose partition another node runs is left out of
the agents, expected-wait and window gauges (its agents are off duty here,
and would count twice as logged out); its waiting callers still count,
since callers who waited on a node when it lost the partition stay there.

The shapes the voicemail and fax metrics share live here too: gauges read
at scrape time (:class:`ScrapeGauges`) and the counter of an outbox
notifier's attempts (:func:`notification_counter`).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")

from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

WAIT_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 300)
HANDLE_EDGES = (30, 60, 120, 180, 300, 600, 1200, 1800, 3600)


# Why a SIP request was refused: 403 forbidden (source not allowed), 503
# capacity, 404 no_route, 488 no_media (no usable audio offered),
# 400 bad_request (malformed), 481 no_dialog,
# 405 method_not_allowed, 501 not_implemented, 513 too_large
# (sipagent/sip/request_guard).
SIP_REJECT_REASONS = ("forbidden", "capacity", "no_route", "no_media", "bad_request", "no_dialog",
                      "method_not_allowed", "not_implemented", "too_large")

# Agents' keypad feature codes (sipagent/calls/agent_keypad.py): the
# command dialled, and how it ended.  Agent ids are never labels.
KEYPAD_COMMANDS = ("login", "logout", "pause", "ready", "end_wrap_up")
KEYPAD_RESULTS = ("ok", "refused", "wrong_pin", "locked", "no_input", "hung_up")

# Call pickups (sipagent/queue/pickup.py), by result; never agent ids.
PICKUP_RESULTS = ("picked_up", "nothing", "refused", "no_answer")

# The states occupancy is computed from (prometheus/rules.yml), declared at
# 0 with a queue; other states' series appear when an agent is in them.
AGENT_SECONDS_STATES = ("busy", "wrap_up", "available", "offered")

NOTIFY_CHANNELS = ("email", "webhook")
NOTIFY_RESULTS = ("sent", "failed", "gave_up")


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
        self.abandoned = Counter("sipacd_queue_abandoned", "Callers who hung up while waiting, "
                                 "short abandons included", ["queue"], registry=r)
        self.exited = Counter("sipacd_queue_exited", "Calls that left a queue for a reason "
                              "other than answer or abandon", ["queue", "reason"], registry=r)
        self.answer_wait = Histogram("sipacd_queue_answer_wait_seconds",
                                     "Wait of answered calls, queue entry to agent answer",
                                     ["queue"], buckets=buckets, registry=r)
        self.abandon_wait = Histogram("sipacd_queue_abandon_wait_seconds",
                                      "Wait of abandoned calls, queue entry to hang-up",
                                      ["queue"], buckets=buckets, registry=r)
        # KPI.md: a short abandon is counted, and excluded where a formula says so.
        self.short_abandoned = Counter("sipacd_queue_short_abandoned",
                                       "Abandons with a wait within the queue's short-abandon "
                                       "threshold; also counted in sipacd_queue_abandoned_total, "
                                       "excluded only by the excluding-short-abandons formulas",
                                       ["queue"], registry=r)
        self.callbacks = Counter("sipacd_queue_callbacks", "Callback requests and their outcomes",
                                 ["queue", "result"], registry=r)
        self.handle_time = Histogram("sipacd_queue_handle_time_seconds",
                                     "Talk plus wrap-up of answered calls", ["queue"],
                                     buckets=HANDLE_EDGES, registry=r)
        self.talk_seconds = Counter("sipacd_queue_talk_seconds", "Time agents spent talking",
                                    ["queue"], registry=r)
        self.wrap_up_seconds = Counter("sipacd_queue_wrap_up_seconds",
                                       "Time agents spent in wrap-up", ["queue"], registry=r)
        # Call operations (sipagent/queue/operations.py).  Hold is part of
        # talk time; these say how much of it was hold.
        self.holds = Counter("sipacd_queue_holds", "Times a connected caller was put on hold",
                             ["queue"], registry=r)
        self.hold_seconds = Counter("sipacd_queue_hold_seconds",
                                    "Time connected callers spent on hold", ["queue"], registry=r)
        self.transfers = Counter("sipacd_transfers", "Transfers by mode, target kind and result",
                                 ["kind", "target", "result"], registry=r)
        self.recordings = Counter("sipacd_recordings", "Conversation recordings started",
                                  ["queue", "trigger"], registry=r)
        self.recording_seconds = Counter("sipacd_recording_seconds",
                                         "Seconds of conversation recorded", ["queue"],
                                         registry=r)
        # Click-to-call (sipagent/queue/outbound.py): answered, busy, no_answer,
        # failed, agent_no_answer, refused (by a call restriction).
        self.outbound_calls = Counter("sipacd_outbound_calls",
                                      "Click-to-call calls by result", ["result"], registry=r)
        self.monitor_sessions = Counter("sipacd_monitor_sessions",
                                        "Supervisor monitor sessions by starting mode", ["mode"],
                                        registry=r)
        self.agent_seconds = Counter("sipacd_queue_agent_seconds",
                                     "Agent time by state (sampled each second), for occupancy",
                                     ["queue", "state"], registry=r)
        self.dispatch_latency = Histogram(
            "sipacd_dispatch_latency_seconds",
            "From the event that makes a match possible to the INVITE to the agent being sent",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r)
        self.offers = Counter("sipacd_agent_offers", "Calls offered to agents, by result",
                              ["queue", "result"], registry=r)
        self.sip_rejected = Counter("sipacd_sip_rejected",
                                    "SIP requests refused by the engine, by reason",
                                    ["reason"], registry=r)
        for reason in SIP_REJECT_REASONS:
            self.sip_rejected.labels(reason)
        self.calls = Counter("sipacd_calls", "Call legs ended, by direction",
                             ["direction"], registry=r)
        self.surveys = Counter("sipacd_survey_answers", "Post-call survey answers by score",
                               ["queue", "score"], registry=r)
        self.loop_stalls = Counter("sipacd_event_loop_stalls",
                                   "Times the event loop was blocked for 0.5 s or more",
                                   registry=r)
        self.flow_errors = Counter("sipacd_flow_errors", "Flows that raised", ["flow"], registry=r)
        self.flow_reloads = Counter("sipacd_flow_reloads", "Flow file reloads", ["result"],
                                    registry=r)
        self.keypad_commands = Counter("sipacd_agent_keypad_commands",
                                       "Agent commands dialled as feature numbers, by result",
                                       ["command", "result"], registry=r)
        for command in KEYPAD_COMMANDS:
            for result in KEYPAD_RESULTS:
                self.keypad_commands.labels(command, result)
        self.pickups = Counter("sipacd_pickups", "Ringing queue calls agents tried to pick up, "
                               "by result", ["result"], registry=r)
        for result in PICKUP_RESULTS:
            self.pickups.labels(result)

    def declare_queues(self, queues: Iterable[str]) -> None:
        """Every per-queue counter and histogram of ``queues`` at 0 now,
        rather than at its first event."""
        for queue in queues:
            for metric in (self.offered, self.answered, self.abandoned, self.short_abandoned,
                           self.answer_wait, self.abandon_wait, self.handle_time,
                           self.talk_seconds, self.wrap_up_seconds, self.holds,
                           self.hold_seconds):
                metric.labels(queue)
            for state in AGENT_SECONDS_STATES:
                self.agent_seconds.labels(queue, state)

    def add_live_gauges(self, read: Callable[[], dict]) -> None:
        """``read()`` returns {"active_calls", "capacity", "waiting": {queue: n},
        "agents": {queue: {state: n}}, "oldest_wait": {queue: s},
        "ewt": {queue: s or None},
        "windows": [(queue, window, kpi, labels, value)],
        "runs": the queues this node runs, or None for all} at scrape time."""
        self.registry.register(ScrapeGauges(read, _live_gauges))


def notification_counter(name: str, documentation: str,
                         registry: CollectorRegistry) -> Counter:
    """Notification attempts by ``channel`` and ``result`` (what an outbox
    notifier reports through ``on_result``), every series there from the
    start so a rate over it is 0, not missing."""
    counter = Counter(name, documentation, ["channel", "result"], registry=registry)
    for channel in NOTIFY_CHANNELS:
        for result in NOTIFY_RESULTS:
            counter.labels(channel, result)
    return counter


class ScrapeGauges:
    """A collector whose families are made at each scrape: ``read()`` gives
    a snapshot (None: nothing to report, such as a store not opened yet) and
    ``families(snapshot)`` yields the metric families."""

    def __init__(self, read: Callable[[], Any], families: Callable[[Any], Iterable]):
        self._read, self._families = read, families

    def describe(self):
        # Nothing up front: otherwise the registry would collect() at
        # registration, reading what may not exist yet.
        return []

    def collect(self):
        snapshot = self._read()
        if snapshot is not None:
            yield from self._families(snapshot)


def _live_gauges(snap: dict):
    runs = snap.get("runs")

    def run_here(queue: str) -> bool:
        return runs is None or queue in runs

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
        if not run_here(q):
            continue
        for state, n in states.items():
            agents.add_metric([q, state], n)
    oldest = GaugeMetricFamily("sipacd_queue_oldest_wait_seconds",
                               "How long the longest-waiting caller has waited", labels=["queue"])
    for q, v in snap.get("oldest_wait", {}).items():
        oldest.add_metric([q], v)
    ewt = GaugeMetricFamily("sipacd_queue_expected_wait_seconds",
                            "Expected wait of a caller joining the queue now "
                            "(position x recent handle time / agents serving)",
                            labels=["queue"])
    for q, v in snap.get("ewt", {}).items():
        # nobody serving: no estimate rather than infinity
        if v is not None and run_here(q):
            ewt.add_metric([q], v)
    yield from (active, capacity, waiting, agents, oldest, ewt)
    families: dict[str, GaugeMetricFamily] = {}
    for queue, window, kpi, labels, value in snap.get("windows", ()):
        if not run_here(queue):     # this node's past calls of a queue run elsewhere
            continue
        fam = families.get(kpi)
        if fam is None:
            fam = families[kpi] = GaugeMetricFamily(
                f"sipacd_queue_window_{kpi}", f"{kpi.replace('_', ' ')} over a sliding window",
                labels=["queue", "window", *labels])
        fam.add_metric([queue, window, *labels.values()], value)
    yield from families.values()
