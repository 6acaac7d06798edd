"""CPU per call: the whole load on one engine, then the same load spread over two.

    python benchmarks/cluster_cpu.py --quick          # ~2 min: 6 calls/s, 20 s per phase
    python benchmarks/cluster_cpu.py                  # 12 calls/s, 60 s per phase
    python benchmarks/cluster_cpu.py --rate 16 --window 90 --json
    python benchmarks/cluster_cpu.py --rate 30 --agents 50 --rounds 3   # ~10 min: a median

What runs
---------
On 127.0.0.1, as the cluster tests start them (tests/clusterkit.py,
tests/engine_proc.py through benchmarks/loadkit.py): a PostgreSQL server of
its own, Kamailio with the project's configuration (numbers routed to
their partition's lease holder), and engines with the same configuration:
two queues, ``q1`` (number 101, partition ``p1``, agents ``a0..``) and
``q2`` (number 102, partition ``p2``, agents ``b0..``), each fed by a
fleet process of benchmarks/fleet.py (Poisson callers to the queue's
number at Kamailio, agents who answer after ``--ring`` and talk
Exp(``--talk``)). The agents are registered at Kamailio with their
fleet's address, so an engine rings ``sip:a0@<kamailio>`` and Kamailio
finds the phone, as in a real center.

* Phase 1, one node: engine ``a`` alone holds both partitions and takes
  every call.
* Phase 2, two nodes: fresh engines ``a`` and ``b``; ``p2``'s lease is
  put in ``b``'s name before ``a`` starts, so ``a`` takes ``p1`` only and
  ``b``, starting, renews ``p2``: each node runs one queue. The callers
  are the same (same rates and seeds).

Each phase: the engines idle for ``--idle`` s (their fixed cost: timers,
lease renewals, Kamailio's OPTIONS probes), the fleets start, ``--warmup``
s, then the ``--window`` measured: CPU (user + system, /proc/PID/stat) of
every engine, and of Kamailio's and PostgreSQL's process trees, over the
calls the engines' counters say entered a queue in the window
(``sipacd_queue_offered_total``). CPU per call = CPU seconds in the window
/ calls offered in it; the ratio is the two nodes' total over the one
node's. It is also given by thread (``procstat.thread_cpu``: the event
loop, the event log's writer, the event follower, the rest). A second node brings its idle cost whatever the load, so the
ratio is also given without it (each node's CPU less its idle rate times
the window): what the calls themselves cost on one node and on two.
Both cores are shared with other runs: the load average is given with
every phase; compare runs made side by side (``--two-first`` swaps the
order of the phases).  Runs on the same code differ by up to ±10 % a
phase, as much as the difference sought: ``--rounds N`` runs both phases
N times on the same PostgreSQL and Kamailio, the order swapped each
round, and gives the median of the rounds' ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import loadkit  # benchmarks/loadkit.py: engine and fleet processes; puts the repo on sys.path
import procstat  # noqa: E402
import psycopg  # noqa: E402
from clusterkit import Kamailio, Postgres  # noqa: E402
from loadkit import EngineProc, FleetProc, Params  # noqa: E402
from rawsip import SipSocket  # noqa: E402
from scrape import delta, val  # noqa: E402
from sipagent.store.leases import LeaseTable  # noqa: E402

FLOW = '''"""CPU benchmark: answer and queue at once, in the route's queue."""


async def flow(call):
    await call.answer()
    await call.enqueue(call.vars["queue"])
'''
# queue -> (number, partition, agent name prefix)
QUEUES = {"q1": ("101", "p1", "a"), "q2": ("102", "p2", "b")}
LEASE = 6.0


@dataclass
class Load:
    rate: float = 12.0        # calls/s into the center, split evenly over the queues
    agents: int = 20          # per queue
    talk: float = 2.0         # mean talk, s
    ring: float = 0.3
    wrap_up: float = 0.5
    patience: float = 60.0    # long: the callers wait for their agent
    idle: float = 10.0
    warmup: float = 15.0
    window: float = 60.0


QUICK = dict(rate=6.0, agents=12, idle=5.0, warmup=8.0, window=20.0)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every live process under it (Kamailio's
    and PostgreSQL's workers are children of their first process)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    members, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in members:
                members.add(child)
                frontier.append(child)
    total = 0.0
    for pid in members:
        try:
            total += procstat.cpu_seconds(pid)
        except OSError:       # ended meanwhile
            pass
    return total


def node_config(name: str, load: Load, sip_port: int, http_port: int, k_port: int, dsn: str,
                work: Path, prompts: Path) -> dict:
    """loadkit's engine configuration, made into a node of the cluster with
    the two queues."""
    p = Params(agents=0, thresholds=(20.0,))
    cfg = loadkit.engine_config(p, sip_port, http_port, 0, work, prompts)
    base = cfg["queues"].pop(loadkit.QUEUE)
    cfg["queues"] = {q: dict(base, ring_timeout=5.0, wrap_up=load.wrap_up) for q in QUEUES}
    cfg["routes"] = [{"number": number, "flow": "load", "queue": q}
                     for q, (number, _, _) in QUEUES.items()]
    cfg["agents"] = {f"{prefix}{i}": {"uri": f"sip:{prefix}{i}@127.0.0.1:{k_port}",
                                      "queues": [q]}
                     for q, (_, _, prefix) in QUEUES.items() for i in range(load.agents)}
    cfg["data"]["database"] = dsn         # the shared store: one log for both nodes
    cfg["cluster"] = {"node_id": name, "lease_seconds": LEASE,
                      "partitions": {part: [q] for q, (_, part, _) in QUEUES.items()}}
    return cfg


def register_agents(kam: Kamailio, load: Load, fleet_ports: dict) -> None:
    """Each agent's phone registered at Kamailio, at its queue's fleet."""
    with SipSocket(kam.port) as sip:
        for q, (_, _, prefix) in QUEUES.items():
            for i in range(load.agents):
                aor = f"<sip:{prefix}{i}@{kam.uri_base}>"
                answer = sip.final(sip.request(
                    "REGISTER", uri=f"sip:{kam.uri_base}",
                    edits={"From": f"{aor};tag=r{prefix}{i}", "To": aor,
                           "Contact": f"<sip:{prefix}{i}@127.0.0.1:{fleet_ports[q]}>",
                           "Expires": "3600"}), timeout=3.0)
                if answer is None or answer.code != 200:
                    raise RuntimeError(f"REGISTER {prefix}{i}: {answer}")


def wait_on_duty(engines: dict, runs: dict, load: Load, timeout: float = 30.0) -> None:
    """Until each queue's agents are available on the node that runs it."""
    deadline = time.monotonic() + timeout
    for name, queues in runs.items():
        for q in queues:
            while val(engines[name].metrics(), "sipacd_queue_agents", queue=q,
                      state="available") < load.agents:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{q}'s agents are not on duty on {name}")
                time.sleep(0.5)


def hand_p2_to_b(leases: LeaseTable, b_uri: str) -> None:
    """``p2``'s lease in b's name (free after phase 1's clean stop; a lease
    left behind runs out within LEASE s)."""
    deadline = time.monotonic() + 3 * LEASE
    while leases.hold("p2", "b", b_uri, ttl=30.0) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"p2 stays held by {leases.holder('p2')}")
        time.sleep(0.5)


def phase(label: str, names: list[str], load: Load, sip_ports: dict, fleet_ports: dict,
          kam: Kamailio, pg: Postgres, leases: LeaseTable, work: Path, prompts: Path) -> dict:
    """One phase with fresh engines ``names`` and fleets.  The SIP ports are
    the run's: Kamailio's dispatcher list names the engines', and the
    agents stay registered at the fleets'."""
    ports = loadkit.free_port
    cfgs = {n: node_config(n, load, sip_ports[n], ports(), kam.port, pg.dsn,
                           work / f"{label}-{n}", prompts) for n in names}
    for n in names:
        (work / f"{label}-{n}" / "flows").mkdir(parents=True)
        (work / f"{label}-{n}" / "flows" / "load.py").write_text(FLOW)
    runs = {"a": ["q1", "q2"]} if names == ["a"] else {"a": ["q1"], "b": ["q2"]}
    if "b" in names:
        hand_p2_to_b(leases, f"sip:127.0.0.1:{cfgs['b']['sip']['port']}")
    engines: dict[str, EngineProc] = {}
    fleets: list[FleetProc] = []
    try:
        for n in names:
            say(f"{label}: starting engine {n}")
            engines[n] = EngineProc(cfgs[n], work / f"{label}-{n}")
        holders = {p: leases.holder(p).node for p in ("p1", "p2")}
        expected = {"p1": "a", "p2": "a" if names == ["a"] else "b"}
        if holders != expected:
            raise RuntimeError(f"partitions held by {holders}, expected {expected}")
        wait_on_duty(engines, runs, load)
        time.sleep(2.5)    # Kamailio's probes see every engine

        say(f"{label}: idle {load.idle:g} s")
        cpu0 = {n: e.cpu_seconds() for n, e in engines.items()}
        t0 = time.monotonic()
        time.sleep(load.idle)
        idle = {n: (e.cpu_seconds() - cpu0[n]) / (time.monotonic() - t0)
                for n, e in engines.items()}

        for i, (q, (number, _, _)) in enumerate(QUEUES.items()):
            p = Params(rate=load.rate / len(QUEUES), talk=load.talk, ring=load.ring,
                       wrap_up=load.wrap_up, patience=load.patience, seed=1 + i)
            fleet_work = work / f"{label}-fleet-{q}"
            fleet_work.mkdir()
            fleets.append(FleetProc(p, fleet_ports[q], f"sip:{number}@{kam.uri_base}",
                                    fleet_work, 6000 + 1000 * i))
        say(f"{label}: {load.rate:g} calls/s, warm-up {load.warmup:g} s")
        hold(engines, fleets, load.warmup)
        say(f"{label}: measuring {load.window:g} s")
        load_before = os.getloadavg()
        m_a = {n: e.metrics() for n, e in engines.items()}
        cpu_a = {n: e.cpu_seconds() for n, e in engines.items()}
        threads_a = {n: procstat.thread_cpu(e.proc.pid) for n, e in engines.items()}
        kam_a, pg_a = tree_cpu(kam.proc.pid), tree_cpu(pg.proc.pid)
        commits_a = pg_commits(pg.dsn)
        t_a = time.monotonic()
        hold(engines, fleets, load.window)
        window = time.monotonic() - t_a
        m_b = {n: e.metrics() for n, e in engines.items()}
        cpu_b = {n: e.cpu_seconds() for n, e in engines.items()}
        threads_b = {n: procstat.thread_cpu(e.proc.pid) for n, e in engines.items()}
        kam_b, pg_b = tree_cpu(kam.proc.pid), tree_cpu(pg.proc.pid)
        commits_b = pg_commits(pg.dsn)
        load_after = os.getloadavg()
        fleet_stats = [f.stop() or {} for f in fleets]
        fleets.clear()
    finally:
        for f in fleets:
            f.stop()
        for e in engines.values():
            e.stop()
    nodes = {}
    for n in names:
        calls = {q: delta(m_a[n], m_b[n], "sipacd_queue_offered_total", queue=q) for q in QUEUES}
        answered = sum(delta(m_a[n], m_b[n], "sipacd_queue_answered_total", queue=q)
                       for q in QUEUES)
        cpu = cpu_b[n] - cpu_a[n]
        nodes[n] = {"queues": runs[n], "calls": sum(calls.values()), "answered": answered,
                    "cpu_s": cpu, "cpu_percent": 100 * cpu / window,
                    "idle_cpu_percent": 100 * idle[n],
                    # what the calls added to the node's idle cost
                    "call_cpu_s": cpu - idle[n] * window}
    calls = sum(x["calls"] for x in nodes.values())
    cpu = sum(x["cpu_s"] for x in nodes.values())
    # Which of the engines' threads the CPU went to, every node's summed.
    by_thread: dict[str, float] = {}
    for n in names:
        for name, t in threads_b[n].items():
            by_thread[name] = by_thread.get(name, 0.0) + t - threads_a[n].get(name, 0.0)
    call_cpu = sum(x["call_cpu_s"] for x in nodes.values())
    for x in nodes.values():
        x["cpu_s_per_call"] = x["cpu_s"] / x["calls"] if x["calls"] else float("nan")
    return {"phase": label, "window_s": window, "calls": calls,
            "calls_per_s": calls / window, "answered": sum(x["answered"] for x in nodes.values()),
            "engines_cpu_s": cpu, "cpu_s_per_call": cpu / calls if calls else float("nan"),
            "call_cpu_s_per_call": call_cpu / calls if calls else float("nan"),
            "thread_cpu_s_per_call": {name: t / calls if calls else float("nan")
                                      for name, t in sorted(by_thread.items(),
                                                            key=lambda kv: -kv[1])},
            "kamailio_cpu_s_per_call": (kam_b - kam_a) / calls if calls else float("nan"),
            "postgres_cpu_s_per_call": (pg_b - pg_a) / calls if calls else float("nan"),
            "postgres_commits_per_call": (commits_b - commits_a) / calls if calls else float("nan"),
            "nodes": nodes, "loadavg_start": load_before, "loadavg_end": load_after,
            "fleet": [{k: s.get(k) for k in ("placed", "setup_failed", "answered", "abandoned",
                                              "dropped", "fail_codes")} for s in fleet_stats]}


def pg_commits(dsn: str) -> int:
    """Transactions committed in the center's database so far (every node's
    writes, reads and lease renewals; PostgreSQL's statistics, which a
    backend reports within a second)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT xact_commit FROM pg_stat_database"
                            " WHERE datname = current_database()").fetchone()[0]


def hold(engines: dict, fleets: list, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
        for n, e in engines.items():
            if e.proc.poll() is not None:
                raise RuntimeError(f"engine {n} died (exit {e.proc.returncode}):\n"
                                   + e.log_tail(10))
        for f in fleets:
            f.check()


def run(load: Load, work: Path, *, two_first: bool = False, rounds: int = 1) -> dict:
    """``rounds`` rounds of both phases on one PostgreSQL and Kamailio, the
    order swapped each round; the ratio of each round, and their median."""
    ports = loadkit.free_port
    prompts = Path(tempfile.gettempdir()) / "sipacd-load-prompts"
    k_port = ports()
    sip_ports = {"a": ports(), "b": ports()}
    fleet_ports = {q: ports() for q in QUEUES}
    results = []
    with Postgres(ports()) as pg:
        conn = psycopg.connect(pg.dsn, autocommit=True)
        try:
            leases = LeaseTable(conn)
            with Kamailio(work, k_port, list(sip_ports.values()), database=pg.dsn) as kam:
                register_agents(kam, load, fleet_ports)
                for i in range(rounds):
                    round_work = work / f"round{i + 1}"
                    round_work.mkdir()
                    done = {}
                    for label, names in sorted({"one-node": ["a"],
                                                "two-nodes": ["a", "b"]}.items(),
                                               reverse=two_first != (i % 2 == 1)):
                        done[label] = phase(label, names, load, sip_ports, fleet_ports, kam,
                                            pg, leases, round_work, prompts)
                    one, two = done["one-node"], done["two-nodes"]
                    results.append({
                        "one_node": one, "two_nodes": two,
                        "ratio": two["cpu_s_per_call"] / one["cpu_s_per_call"],
                        "ratio_without_idle": (two["call_cpu_s_per_call"]
                                               / one["call_cpu_s_per_call"])})
                    if rounds > 1:
                        say(f"round {i + 1}: ratio {results[-1]['ratio']:.3f}")
        finally:
            conn.close()
    return {"load": dict(load.__dict__), "rounds": results,
            "ratio_median": statistics.median(r["ratio"] for r in results),
            "ratio_without_idle_median": statistics.median(r["ratio_without_idle"]
                                                           for r in results)}


def ms(x: float) -> str:
    return f"{1e3 * x:.1f} ms"


def round_table(ld: dict, r: dict) -> str:
    out = [f"{ld['rate']:g} calls/s over queues q1 and q2 ({ld['agents']} agents each), "
           f"talk Exp({ld['talk']:g} s), ring {ld['ring']:g} s, wrap-up {ld['wrap_up']:g} s; "
           f"{ld['window']:g} s measured after {ld['warmup']:g} s warm-up",
           f"{'':<12}{'node':<6}{'queues':<9}{'calls':>7}{'CPU s':>8}{'CPU %':>8}"
           f"{'per call':>11}{'idle CPU %':>12}"]
    for key in ("one_node", "two_nodes"):
        ph = r[key]
        for n, x in ph["nodes"].items():
            out.append(f"{ph['phase']:<12}{n:<6}{','.join(x['queues']):<9}{x['calls']:>7.0f}"
                       f"{x['cpu_s']:>8.2f}{x['cpu_percent']:>8.1f}"
                       f"{ms(x['cpu_s_per_call']):>11}{x['idle_cpu_percent']:>12.1f}")
        la, lb = ph["loadavg_start"], ph["loadavg_end"]
        out.append(f"{ph['phase']:<12}{'all':<6}{'':<9}{ph['calls']:>7.0f}"
                   f"{ph['engines_cpu_s']:>8.2f}{'':>8}{ms(ph['cpu_s_per_call']):>11}   "
                   f"({ph['calls_per_s']:.1f} calls/s; Kamailio {ms(ph['kamailio_cpu_s_per_call'])}"
                   f", PostgreSQL {ms(ph['postgres_cpu_s_per_call'])} and "
                   f"{ph['postgres_commits_per_call']:.1f} commits a call; load average "
                   f"{la[0]:.2f} -> {lb[0]:.2f})")
    for key in ("one_node", "two_nodes"):
        ph = r[key]
        out.append(f"{ph['phase']:<12}by thread, per call: " + ", ".join(
            f"{name} {ms(t)}" for name, t in ph["thread_cpu_s_per_call"].items()))
    out.append(f"ratio, CPU per call of the engines, two nodes / one node: {r['ratio']:.3f}")
    out.append(f"the same without each node's idle CPU (the calls' own cost: "
               f"{ms(r['one_node']['call_cpu_s_per_call'])} / "
               f"{ms(r['two_nodes']['call_cpu_s_per_call'])}): {r['ratio_without_idle']:.3f}")
    for key in ("one_node", "two_nodes"):
        for i, f in enumerate(r[key]["fleet"], 1):
            out.append(f"{r[key]['phase']} fleet q{i}: placed {f['placed']}, answered "
                       f"{f['answered']}, abandoned {f['abandoned']}, dropped {f['dropped']}, "
                       f"setup failed {f['setup_failed']} {f['fail_codes'] or ''}")
    return "\n".join(out)


def table(r: dict) -> str:
    out = [round_table(r["load"], x) for x in r["rounds"]]
    if len(r["rounds"]) > 1:
        out.append(f"median over {len(r['rounds'])} rounds (order swapped each round): ratio "
                   f"{r['ratio_median']:.3f} ("
                   f"{', '.join(format(x['ratio'], '.3f') for x in r['rounds'])}), "
                   f"without idle CPU {r['ratio_without_idle_median']:.3f}")
    return "\n\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run (~2 min)")
    for name, default in Load().__dict__.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None)
    ap.add_argument("--two-first", action="store_true",
                    help="the two-node phase first (to see whether the order matters)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of both phases, the order swapped each round; the median ratio")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    load = Load(**QUICK) if args.quick else Load()
    load = replace(load, **{k: v for k, v in vars(args).items()
                            if k in Load().__dict__ and v is not None})
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="sipacd-cluster-cpu-") as tmp:
            result = run(load, Path(tmp), two_first=args.two_first, rounds=args.rounds)
    finally:
        loadkit.release_ports()
    print(json.dumps(result, indent=1) if args.json else table(result))
    say(f"{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
