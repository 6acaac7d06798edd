"""CPU that supervisor monitor sessions add to a process bridging N calls.

    python benchmarks/monitor_cpu.py                      # N = 10 and 50, 10 s windows
    python benchmarks/monitor_cpu.py --pairs 10 --window 5 --rounds 1 --json

How it measures
---------------
* This process is the B2BUA, built from the engine's pieces: SipEndpoint
  (RTP poller, call drain), CallLeg, and the queue's own
  :class:`sipagent.queue.conversation.Conversation`, whose ``paths()`` and
  Mix decide who hears whom, as in the engine.  The far ends are one
  answering pjsua2 process (benchmarks/pjsua2_capacity.py ``--role uas``,
  our child, stopped by PID), PCMU, VAD off: every leg carries RTP both
  ways (silence; pjmedia's bridge mixes silent frames like any other, its
  zero-level skip is compiled out).
* For each N (ascending): 2N legs dialled and made N conversations
  (caller-agent, talking).  Then ``--rounds`` times, a CPU window each:
  ``without`` (no supervisor), ``legs`` (N more legs up, in no
  conversation: the RTP cost of the supervisor's call alone), ``listen``
  (each joined to one conversation with ``set_monitor(LISTEN)``: caller and
  agent -> supervisor) and ``barge`` (everyone hears everyone); the N legs
  are then hung up.  CPU = growth of utime + stime of this process in /proc
  (benchmarks/procstat.py) over the window's wall time, 100 % = one core,
  every thread counted (pjmedia's clock thread does the mixing).
* Result per N: medians of the rounds, and (mode - without) / N as % of one
  core per monitor session.  The session's own asyncio task (waiting for a
  digit, the call's end or the hang-up) costs nothing between events and is
  not run here.
* Ports: one block from tests/portlocks.py (127.0.0.1 only).  Bounded:
  SIGALRM at ``--timeout`` ends a wedged run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from recording_cpu import against_answerer, b2bua, cpu_percent, grow_to  # noqa: E402
from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.queue.conversation import Conversation, Monitor  # noqa: E402
from sipagent.sip.leg import CallLeg  # noqa: E402

STAGES = ("without", "legs", "listen", "barge")


async def one_round(args, acc, uri: str, conversations: list[Conversation]) -> dict:
    n = len(conversations)
    cpu = {"without": await cpu_percent(args.window)}
    sups: list[CallLeg] = []
    await grow_to(acc, sups, n, uri)
    await asyncio.sleep(0.5)
    cpu["legs"] = await cpu_percent(args.window)
    for mode in (Monitor.LISTEN, Monitor.BARGE):
        for c, leg in zip(conversations, sups):
            c.set_monitor(leg, mode)
        # listen: caller<->agent + both -> supervisor; barge: + supervisor -> both
        wanted = 4 if mode is Monitor.LISTEN else 6
        if any(len(c.mix.paths) != wanted for c in conversations):
            raise RuntimeError(f"{mode.value}: not every conversation has {wanted} paths")
        await asyncio.sleep(0.5)
        cpu[mode.value] = await cpu_percent(args.window)
    for c in conversations:
        c.set_monitor(None, None)
    for leg in sups:
        leg.end()
    await asyncio.wait_for(asyncio.gather(*(leg.ended for leg in sups)), 20)
    await asyncio.sleep(1.0)       # the hung-up legs' last packets
    return cpu


async def measure(args, acc, uri: str, conversations: list[Conversation]) -> dict:
    rounds = [await one_round(args, acc, uri, conversations) for _ in range(args.rounds)]
    n = len(conversations)
    med = {s: statistics.median(r[s] for r in rounds) for s in STAGES}
    return {"pairs": n, "rounds": args.rounds, "window_s": args.window,
            **{f"cpu_{s}_pct": round(med[s], 2) for s in STAGES},
            **{f"cpu_{s}_all": [round(r[s], 2) for r in rounds] for s in STAGES},
            **{f"added_per_session_{s}_pct_core": round((med[s] - med["without"]) / n, 4)
               for s in STAGES[1:]}}


async def run(args, layout: dict) -> list[dict]:
    conversations: list[Conversation] = []
    results = []
    async with b2bua(layout) as (acc, uri, legs):
        for pairs in sorted(args.pairs):
            await grow_to(acc, legs, 2 * pairs, uri)
            for i in range(len(conversations), pairs):
                c = Conversation(f"bench-{i}", legs[2 * i], legs[2 * i + 1], f"agent{i}",
                                 music=None, clock=time.monotonic)
                c.start()
                conversations.append(c)
            await asyncio.sleep(1.0)   # let the new calls' start-up settle
            res = await measure(args, acc, uri, conversations)
            sys.stderr.write(f"monitor_cpu: {json.dumps(res)}\n")
            results.append(res)
        conversations.clear()
    return results


def table(results: list[dict]) -> str:
    head = f"{'pairs':>5} " + " ".join(f"{s:>8}" for s in STAGES) + "  | per session: " + \
        " ".join(f"{s:>7}" for s in STAGES[1:])
    rows = [head] + [
        f"{r['pairs']:>5} " + " ".join(f"{r[f'cpu_{s}_pct']:>7.1f}%" for s in STAGES)
        + "  |              " + " ".join(f"{r[f'added_per_session_{s}_pct_core']:>6.3f}%"
                                       for s in STAGES[1:])
        for r in results]
    return "\n".join(rows) + "\n(CPU: % of one core, medians of the rounds; per session = " \
        "(stage - without) / pairs)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[10, 50],
                    help="bridged pairs (= monitor sessions) to measure, each N (default 10 50)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds per CPU window")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the four windows per N")
    ap.add_argument("--timeout", type=float, default=900.0, help="overall bound in seconds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if min(args.pairs) < 1 or max(args.pairs) > 300:
        ap.error("--pairs: 1..300")
    if args.window <= 0 or args.rounds < 1:
        ap.error("--window must be > 0 and --rounds >= 1")
    out = claim_stdout()
    # Supervisor legs are dialled anew each round: room for one more round's
    # worth while the last one's calls are released.
    results = against_answerer("monitor_cpu", 3 * max(args.pairs) + max(args.pairs),
                               args.timeout, lambda layout: run(args, layout))
    if results is None:
        return 2
    out.write((json.dumps(results, indent=1) if args.json else table(results)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
