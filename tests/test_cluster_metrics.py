"""What each node of several exports, so that Prometheus' sums over the
nodes (prometheus/rules.yml, ``sum by (queue)``) count everything once.

- A node exports a queue's agents (and its expected-wait and window
  gauges) only while it runs the queue's partition: elsewhere the agents
  are off duty, and their copies would count every agent again as logged
  out.  Callers waiting on a node count wherever they are.
- A queue's counters are there at 0 from the start, so the first call a
  node takes after a failover is counted by ``increase()``.
"""
from __future__ import annotations

import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sipagent.metrics import EngineMetrics


def samples(metrics: EngineMetrics) -> list[tuple[str, dict, float]]:
    text = generate_latest(metrics.registry).decode()
    return [(s.name, s.labels, s.value)
            for fam in text_string_to_metric_families(text) for s in fam.samples]


def queue_series(rows, queue: str) -> set[str]:
    return {name for name, labels, _ in rows if labels.get("queue") == queue}


def snapshot(runs):
    agents = {"support": {"logged_out": 2, "available": 0, "busy": 0},
              "sales": {"logged_out": 0, "available": 1, "busy": 2}}
    return {"active_calls": 4, "capacity": 500, "runs": runs,
            "waiting": {"support": 1, "sales": 3}, "agents": agents,
            "oldest_wait": {"support": 200.0, "sales": 12.0},
            "ewt": {"support": 60.0, "sales": 30.0},
            "windows": [(q, "15m", "asa_seconds", {}, 9.0) for q in ("support", "sales")]}


def test_a_node_exports_the_agents_only_of_the_queues_it_runs():
    metrics = EngineMetrics()
    metrics.add_live_gauges(lambda: snapshot({"sales"}))
    rows = samples(metrics)
    # Runs sales: everything.
    assert queue_series(rows, "sales") == {
        "sipacd_queue_waiting_calls", "sipacd_queue_agents", "sipacd_queue_oldest_wait_seconds",
        "sipacd_queue_expected_wait_seconds", "sipacd_queue_window_asa_seconds"}
    # support runs elsewhere: its callers still waiting here, no agents.
    assert queue_series(rows, "support") == {"sipacd_queue_waiting_calls",
                                              "sipacd_queue_oldest_wait_seconds"}
    assert ("sipacd_queue_waiting_calls", {"queue": "support"}, 1.0) in rows


def test_a_single_engine_exports_every_queue():
    for runs in (None, "absent"):
        metrics = EngineMetrics()
        snap = snapshot(runs)
        if runs == "absent":
            del snap["runs"]
        metrics.add_live_gauges(lambda snap=snap: snap)
        rows = samples(metrics)
        assert queue_series(rows, "support") == queue_series(rows, "sales")
        assert ("sipacd_queue_agents", {"queue": "support", "state": "logged_out"}, 2.0) in rows


def test_declared_queues_count_from_zero():
    metrics = EngineMetrics((20.0,))
    metrics.declare_queues(["support"])
    rows = samples(metrics)
    for name in ("sipacd_queue_offered_total", "sipacd_queue_answered_total",
                 "sipacd_queue_abandoned_total", "sipacd_queue_short_abandoned_total",
                 "sipacd_queue_answer_wait_seconds_count", "sipacd_queue_handle_time_seconds_sum"):
        assert (name, {"queue": "support"}, 0.0) in rows, name
    assert ("sipacd_queue_answer_wait_seconds_bucket", {"queue": "support", "le": "20.0"},
            0.0) in rows
    for state in ("busy", "wrap_up", "available", "offered"):
        assert ("sipacd_queue_agent_seconds_total", {"queue": "support", "state": state},
                0.0) in rows


# -- two engines, one PostgreSQL: what Prometheus would sum -------------------------


def scrape(engine) -> list[tuple[str, dict, float]]:
    return [(s.name, s.labels, s.value)
            for fam in text_string_to_metric_families(engine.metrics_text())
            for s in fam.samples]


def over_nodes(scrapes, name: str, **labels) -> float:
    """``sum(name{labels})`` over every node's scrape."""
    return sum(v for rows in scrapes for n, lab, v in rows
               if n == name and all(lab.get(k) == x for k, x in labels.items()))


@pytest.mark.sip
@pytest.mark.cluster
def test_the_sum_over_two_nodes_counts_each_agent_once(ports, workdir, prompts_dir):
    """node-a holds the partition (2 agents, both on duty there); node-b
    runs nothing. Before the fix node-b exported both as logged out, so the
    center showed 4 agents, 2 of them logged out."""
    from clusterkit import Postgres
    from engine_proc import Engine
    from test_cluster_failover import node_config

    k_port = ports()       # no Kamailio: nothing here rings a phone
    for name in ("a", "b"):
        (workdir / name).mkdir()
    with Postgres(ports()) as pg:
        cfgs = {n: node_config(ports, workdir, prompts_dir, n, k_port, pg.dsn) for n in "ab"}
        with Engine(workdir / "a", cfgs["a"], check_invariants=False) as a, \
                Engine(workdir / "b", cfgs["b"], check_invariants=False) as b:
            deadline = time.monotonic() + 10
            while a.metric("sipacd_queue_agents", queue="support", state="available") != 2:
                assert time.monotonic() < deadline, a.metrics_text()
                time.sleep(0.2)
            nodes = [scrape(a), scrape(b)]
            agents = {state: over_nodes(nodes, "sipacd_queue_agents", queue="support",
                                        state=state)
                      for state in ("available", "logged_out", "busy", "paused")}
            assert agents == {"available": 2, "logged_out": 0, "busy": 0, "paused": 0}
            assert over_nodes(nodes, "sipacd_queue_agents", queue="support") == 2
            assert over_nodes(nodes, "sipacd_queue_waiting_calls", queue="support") == 0
            # node-b's counters are there at 0, ready for a takeover.
            assert ("sipacd_queue_offered_total", {"queue": "support"}, 0.0) in nodes[1]
            assert ("sipacd_queue_answered_total", {"queue": "support"}, 0.0) in nodes[1]
