"""Failover time of a partition: ``kill -9`` of its node -> the next call answered.

    python benchmarks/cluster_failover.py               # 5 kills, lease 6 s (the default)
    python benchmarks/cluster_failover.py --kills 3 --lease 4 --json

How it measures
---------------
* On 127.0.0.1: a PostgreSQL server of its own, Kamailio with the
  project's configuration (deploy/kamailio/kamailio.cfg, owners looked up
  in PostgreSQL), two engines with the same configuration (queue
  ``support`` in partition ``p1``, agents alice and bob, whose phones
  register at Kamailio and answer after 0.2 s), and a caller phone, all as
  the cluster tests start them (tests/clusterkit.py, tests/engine_proc.py).
* Each kill: one call is answered on the partition's holder; the holder
  gets SIGKILL; at once a new call is placed through Kamailio; the time
  from the kill to that call's agent leg being confirmed is the failover
  time.  It contains the lease running out (at most ``--lease`` s after
  the last renewal), the survivor's next renewal round (a third of it),
  Kamailio's timeout on the dead holder (tm fr_timer, 3 s) when the lookup
  still names it, and the agent's ring.  The killed node is then started
  again (it joins without taking the partition back) and the next kill
  hits the other node.
* Quote the median of one run; the machine is shared.  Bounded: every
  wait has a timeout; all processes are stopped by PID.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import psycopg  # noqa: E402

from clusterkit import scratch, two_node_center  # noqa: E402
from engine_proc import Engine  # noqa: E402
from portlocks import Ports  # noqa: E402
from sipagent.store.leases import LeaseTable  # noqa: E402
from test_cluster_failover import node_config  # noqa: E402


def run(kills: int, lease: float, prompts: Path, work: Path, ports: Ports) -> list[float]:
    times: list[float] = []

    def make(name, k_port, dsn):
        cfg = node_config(ports, work, prompts, name, k_port, dsn)
        cfg["cluster"]["lease_seconds"] = lease
        return cfg

    with two_node_center(ports, work, make, ("alice", "bob")) as \
            (pg, cfgs, phones, caller, kam):
        leases = LeaseTable(psycopg.connect(pg.dsn, autocommit=True))
        engines = {n: Engine(work / n, cfgs[n], check_invariants=False) for n in ("a", "b")}
        seq = 0
        try:
            time.sleep(2.0)
            for _ in range(kills):
                holder = leases.holder("p1").node
                seq += 1
                caller.request("call", call=f"c{seq}", to=kam.aor("100"))
                caller.wait_state(f"c{seq}", "CONFIRMED", timeout=20)
                inc = phones.wait_event({"ev": "incoming", "call": f"in{seq}"}, timeout=20)
                phones.wait_state(inc["call"], "CONFIRMED", timeout=20)
                caller.request("hangup", call=f"c{seq}")
                time.sleep(1.0)
                os.kill(engines[holder].proc.pid, signal.SIGKILL)
                killed = time.monotonic()
                engines[holder].proc.wait(10)
                seq += 1
                caller.request("call", call=f"c{seq}", to=kam.aor("100"))
                inc = phones.wait_event({"ev": "incoming", "call": f"in{seq}"}, timeout=30)
                answered = phones.wait_state(inc["call"], "CONFIRMED", timeout=20)["at"]
                times.append(answered - killed)
                print(f"kill of {holder}: next call answered after {times[-1]:.2f} s",
                      file=sys.stderr)
                caller.request("hangup", call=f"c{seq}")
                engines[holder] = Engine(work / holder, cfgs[holder],
                                         check_invariants=False)
                time.sleep(1.0)
        finally:
            for engine in engines.values():
                engine.stop()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--lease", type=float, default=6.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with scratch("sipacd-failover-") as (work, prompts, ports):
        times = run(args.kills, args.lease, prompts, work, ports)
    result = {"kills": len(times), "lease_seconds": args.lease,
              "failover_seconds": [round(t, 2) for t in times],
              "median": round(statistics.median(times), 2),
              "max": round(max(times), 2)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"failover (kill -9 -> next call answered), lease {args.lease:g} s, "
              f"{len(times)} kills: median {result['median']} s, max {result['max']} s, "
              f"all {result['failover_seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
