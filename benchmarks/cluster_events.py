"""Event latency across the nodes of a cluster: a fact on one node -> an SSE
client of another node has the event.

    python benchmarks/cluster_events.py                 # 6 calls/s for 60 s
    python benchmarks/cluster_events.py --quick         # a few calls, ~30 s in all
    python benchmarks/cluster_events.py --rate 10 --duration 60 --json-out ev.json

How it measures
---------------
* On 127.0.0.1, as the cluster tests start them (tests/clusterkit.py,
  tests/engine_proc.py, tests/test_cluster_view.py's ``node_config``): a
  PostgreSQL server of its own, Kamailio with the project's configuration
  (owners looked up in PostgreSQL), two engines a and b on one
  configuration sharing the database; b starts first and holds the
  partition, so Kamailio sends it every call, and a handles none.
* The load is the SIP load benchmark's fleet (benchmarks/loadkit.py,
  benchmarks/fleet.py): Poisson callers dialling 100 at Kamailio at
  ``--rate`` calls/s, agents ``a0..`` on the fleet's port answering after
  0.3 s and talking an exponential 2 s (wrap-up 0.5 s); real SIP and RTP.
* Two SSE clients (tests/test_event_stream_sip.py's ``SSE``) read
  ``GET /api/events``: one on node a, which runs no call (every event
  crosses from b's commit through PostgreSQL's NOTIFY to a's follower
  thread), one on node b itself.  On a shared log b's own events take the
  same road (numbered in the commit, sent by b's follower), so the two
  differ by whichever follower wakes and reads first; the difference is
  the cross-node cost.  Each event is stamped when its frame is parsed;
  its latency is that instant minus the event's ``t`` (b's wall clock at
  the fact).  Every process runs on this machine, on one clock.
* A third observer LISTENs to ``sipacd_stream`` from this process and
  stamps each notification (sent at commit; its payload is the last seq
  the commit has numbered so far).  That splits the latency in two:
  *commit* (the fact -> its batch committed and notified: the writer's
  ``urgent_delay`` of gathering, then the transaction) and *fan-out* (the
  notification -> the client: the follower's read, the loop's hop, the
  HTTP write).  A commit notifies once per run of stream rows in its
  batch, all at the same instant: notifications less than 1 ms apart
  count as one commit in ``stream_commits``.
* Events are counted whose ``t`` falls in the window after ``--warmup``
  until arrivals stop; the calls then drain and both clients must reach
  the log's last seq.  Each client's seqs must be gap-free and the two
  clients must have seen the same sequence (exit status 1 if not).
* Quote one run's figures with the load average beside them: the machine
  is shared (2 cores) and the tail (p99, max) follows its load.
  Bounded: every wait has a timeout; all processes are stopped by PID.

What it showed (December 2026, 2 shared cores, load average 3-7, 6 calls/s,
about 5,200 events in the window): p50 52-54 ms on either node, p99
69-290 ms with the load; almost all of it is the commit part (p50 51-53
ms), i.e. the writer's 50 ms ``urgent_delay``; the fan-out is p50 1-2 ms
and node a pays nothing over node b (p50 difference within 0.3 ms).
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import psycopg  # noqa: E402

import procstat  # noqa: E402
from clusterkit import Kamailio, Postgres, scratch  # noqa: E402
from engine_proc import Engine  # noqa: E402
from loadkit import FleetProc, Params  # noqa: E402
from portlocks import Ports  # noqa: E402
from sipagent.store.eventlog import read_only  # noqa: E402
from sipagent.store.leases import LeaseTable  # noqa: E402
from test_cluster_view import node_config  # noqa: E402
from test_event_stream_sip import SSE  # noqa: E402

TYPES = ("call.started", "queue.joined", "offer.created", "bridge.started", "call.ended")
CHANNEL = "sipacd_stream"


class Arrivals(list):
    """The SSE reader's event list, stamped (wall clock) as each is appended."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, event) -> None:
        self.at.append(time.time())
        super().append(event)


class TimedSSE(SSE):
    """tests' SSE client whose ``events`` remember when each arrived."""

    @property
    def events(self) -> Arrivals:
        return self.arrivals

    @events.setter
    def events(self, value) -> None:
        self.arrivals = Arrivals()
        self.arrivals.extend(value)


class Commits:
    """LISTEN ``sipacd_stream`` on a thread: (last seq of a batch, when notified)."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.last: list[int] = []
        self.at: list[float] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            for n in self.conn.notifies(timeout=0.5):
                t = time.time()
                self.last.append(int(n.payload))
                self.at.append(t)

    def when(self, seq: int) -> float | None:
        """When the batch holding ``seq`` was notified."""
        i = bisect.bisect_left(self.last, seq)
        return self.at[i] if i < len(self.at) else None

    def in_window(self, t_from: float, t_to: float) -> dict:
        """The commits notified in the window, and their size.  A commit may
        notify more than once (the writer numbers each run of stream rows
        in its batch apart), all at once when it commits: notifications
        less than 1 ms apart are counted as one commit."""
        commits: list[int] = []
        prev_t = None
        for a, b, t in zip(self.last, self.last[1:], self.at[1:]):
            if not t_from <= t < t_to:
                continue
            if prev_t is not None and t - prev_t < 0.001:
                commits[-1] += b - a
            else:
                commits.append(b - a)
            prev_t = t
        notified = sum(1 for t in self.at if t_from <= t < t_to)
        return {"notifications": notified, "commits": len(commits),
                "commits_per_s": round(len(commits) / max(1e-9, t_to - t_from), 1),
                "events_per_commit_mean": round(sum(commits) / len(commits), 2)
                if commits else None,
                "events_per_commit_max": max(commits, default=None)}

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5.0)
        self.conn.close()


def quantiles(values: list[float]) -> dict:
    """count, p50/p95/p99/max in ms (nearest rank)."""
    if not values:
        return {"count": 0}
    v = sorted(values)

    def rank(q: float) -> float:
        return round(1000 * v[min(len(v) - 1, max(0, int(q * len(v) + 0.999999) - 1))], 1)
    return {"count": len(v), "p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99),
            "max_ms": round(1000 * v[-1], 1), "mean_ms": round(1000 * sum(v) / len(v), 1)}


def gap_free(seqs: list[int]) -> dict:
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    return {"events": len(seqs), "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None, "gaps": len(gaps),
            "first_gaps": gaps[:5]}


def client_figures(sse: TimedSSE, commits: Commits, t_from: float, t_to: float) -> dict:
    total: list[float] = []
    fan_out: list[float] = []
    commit: list[float] = []
    by_type: dict[str, list[float]] = {k: [] for k in TYPES}
    events, at = list(sse.events), list(sse.events.at)
    for e, arrived in zip(events, at):
        if not t_from <= e["t"] < t_to:
            continue
        total.append(arrived - e["t"])
        if e["type"] in by_type:
            by_type[e["type"]].append(arrived - e["t"])
        notified = commits.when(e["seq"])
        if notified is not None:
            commit.append(notified - e["t"])
            fan_out.append(arrived - notified)
    return {"all": quantiles(total), "by_type": {k: quantiles(v) for k, v in by_type.items()},
            "split": {"fact_to_commit_notify": quantiles(commit),
                      "notify_to_client": quantiles(fan_out)},
            "sequence": gap_free([e["seq"] for e in events]),
            "events_by_node": {n: sum(e["node"] == n for e in events)
                               for n in sorted({e["node"] for e in events})}}


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def load_params(args) -> Params:
    return Params(agents=args.agents, rate=args.rate, talk=args.talk, ring=0.3,
                  wrap_up=0.5, patience=60.0, seed=args.seed)


def run(args, prompts: Path, work: Path, ports: Ports, say) -> dict:
    p = load_params(args)
    k_port, fleet_port = ports(), ports()
    with Postgres(ports()) as pg:
        cfgs = {}
        for name in ("a", "b"):
            (work / name).mkdir()
            cfg = node_config(ports, work, prompts, name, k_port, pg.dsn)
            cfg["agents"] = {f"a{i}": {"uri": f"sip:a{i}@127.0.0.1:{fleet_port}",
                                       "queues": ["support"]} for i in range(p.agents)}
            cfg["http"]["tokens"] = {k: t for k, t in cfg["http"]["tokens"].items()
                                     if "agent" not in t}      # alice is not one of them
            cfg["queues"]["support"].update(wrap_up=p.wrap_up, ring_timeout=5)
            cfg["sip"]["max_calls"] = 400
            cfg["log"]["level"] = "warning"      # info lines per call would load the loop
            cfgs[name] = cfg
        leases = LeaseTable(psycopg.connect(pg.dsn, autocommit=True))
        with Kamailio(work, k_port, [cfgs["a"]["sip"]["port"], cfgs["b"]["sip"]["port"]],
                      database=pg.dsn) as kam:
            say("starting node b, then node a")
            with Engine(work / "b", cfgs["b"], check_invariants=False) as node_b, \
                    Engine(work / "a", cfgs["a"], check_invariants=False) as node_a:
                holder = leases.holder("p1").node
                if holder != "b":
                    raise RuntimeError(f"partition p1 is held by {holder!r}, not b")
                commits = Commits(pg.dsn)
                on_a, on_b = TimedSSE(node_a), TimedSSE(node_b)
                fleet = None
                try:
                    if (on_a.status, on_b.status) != (200, 200):
                        raise RuntimeError(f"SSE refused: {on_a.status} {on_b.status}")
                    time.sleep(2.0)        # the dispatcher's probes see both engines
                    cpu0 = {n: procstat.cpu_seconds(e.proc.pid)
                            for n, e in (("a", node_a), ("b", node_b))}
                    load0 = os.getloadavg()
                    c_t0 = time.monotonic()
                    say(f"load: {p.rate:g} calls/s through Kamailio for "
                        f"{args.warmup + args.duration:g} s ({args.warmup:g} s warm-up)")
                    fleet = FleetProc(p, fleet_port, kam.aor("100"), work, 6000)
                    t_from = time.time() + args.warmup
                    t_end = t_from + args.duration
                    while time.time() < t_end:
                        fleet.check()
                        for node in (node_a, node_b):
                            if node.proc.poll() is not None:
                                raise RuntimeError(f"an engine exited:\n{node.log_tail()}")
                        time.sleep(min(1.0, max(0.0, t_end - time.time())))
                    fleet.send("arrivals", on=False)
                    t_to = time.time()
                    load1 = os.getloadavg()
                    say("arrivals stopped; draining")
                    try:
                        wait_for(lambda: fleet.last_stats.get("legs", 1) == 0, 60, "calls to end")
                    except RuntimeError as exc:
                        say(f"{exc}; going on")
                    cpu1 = {n: procstat.cpu_seconds(e.proc.pid)
                            for n, e in (("a", node_a), ("b", node_b))}
                    c_t1 = time.monotonic()
                    summary = fleet.stop()
                    fleet = None
                    time.sleep(1.0)
                    reader = read_only(pg.dsn)
                    try:
                        last = reader.read("SELECT COALESCE(MAX(seq), 0) FROM stream_event")[0][0]
                    finally:
                        reader.close()
                    for sse, name in ((on_a, "a"), (on_b, "b")):
                        wait_for(lambda: sse.seqs() and sse.seqs()[-1] >= last, 15,
                                 f"node {name}'s client to reach seq {last}")
                    offered = {n: e.metric("sipacd_queue_offered_total", queue="support")
                               for n, e in (("a", node_a), ("b", node_b))}
                finally:
                    if fleet is not None:
                        fleet.stop()
                    on_a.close()
                    on_b.close()
                    commits.close()
    window = t_to - t_from
    counts = summary or {}
    a_fig = client_figures(on_a, commits, t_from, t_to)
    b_fig = client_figures(on_b, commits, t_from, t_to)
    diff = {k: round(a_fig["all"][k] - b_fig["all"][k], 1)
            for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
            if k in a_fig["all"] and k in b_fig["all"]}
    return {
        "benchmark": "cluster_events", "quick": args.quick,
        "load": {"rate_per_s": p.rate, "agents": p.agents, "talk_mean_s": p.talk,
                 "window_s": round(window, 1), "warmup_s": args.warmup,
                 "placed": counts.get("placed"), "answered": counts.get("answered"),
                 "abandoned": counts.get("abandoned"),
                 "setup_failed": counts.get("setup_failed"),
                 "offered_on_node": offered},
        "loadavg_1m": {"start": round(load0[0], 2), "end_of_window": round(load1[0], 2)},
        "cpu_percent_of_a_core": {n: round(100 * (cpu1[n] - cpu0[n]) / (c_t1 - c_t0), 1)
                                  for n in cpu0},
        "log_last_seq": last,
        "stream_commits": commits.in_window(t_from, t_to),
        "same_sequence_on_both": on_a.seqs() == on_b.seqs(),
        "client_on_a": a_fig,
        "client_on_b": b_fig,
        "cross_node_cost_ms": diff,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few calls (about 30 s in all)")
    ap.add_argument("--rate", type=float, default=6.0, help="calls per second")
    ap.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    ap.add_argument("--warmup", type=float, default=5.0, help="load before the window, s")
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--talk", type=float, default=2.0, help="mean talk, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out", help="also write the result as JSON to this file")
    args = ap.parse_args()
    if args.quick:
        args.rate, args.duration, args.warmup, args.agents, args.talk = 2.0, 4.0, 0.0, 8, 1.0

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    with scratch("sipacd-cluster-events-") as (work, prompts, ports):
        result = run(args, prompts, work, ports, say)
    for name in ("a", "b"):
        fig = result[f"client_on_{name}"]
        say(f"client on node {name}: {fig['all']}, sequence {fig['sequence']}")
    say(f"cross-node cost (a - b): {result['cross_node_cost_ms']}")
    text = json.dumps(result, indent=1)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    print(json.dumps(result))
    return 0 if all(result[f"client_on_{n}"]["sequence"]["gaps"] == 0 for n in ("a", "b")) \
        and result["same_sequence_on_both"] else 1


if __name__ == "__main__":
    sys.exit(main())
