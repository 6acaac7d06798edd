"""The floor the engine's CPU per bridged call is compared with: a raw
pjsua2 B2BUA holding N bridged pairs (two legs each, no ACD, no flows, no
API), measured the same way as the engine in benchmarks/load.py.

    python benchmarks/b2bua_floor.py --pairs 170 --window 10 --rounds 3 [--json]

``benchmarks/load.py --floor`` runs it right after its own window, at the
load's median number of bridged pairs, so both figures come from one run.

How it measures: this process is the B2BUA, built from the engine's own
media pieces (sipagent.sip.endpoint.SipEndpoint with its RTP poller and
call drain, CallLeg, the conference-bridge connect of sipagent.media); the
far ends are one answering pjsua2 process (benchmarks/pjsua2_capacity.py
``--role uas``).  It dials 2N legs, bridges them in pairs, lets them settle,
then takes ``--rounds`` CPU samples of ``--window`` s each: growth of utime
+ stime of this process (all threads) over the window's wall time, 100 % =
one core (benchmarks/procstat.py).  The set-up is
benchmarks/recording_cpu.py's (b2bua, against_answerer), reused.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import recording_cpu  # noqa: E402  (puts the repo and tests/ on sys.path)
from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.media.playback import bridge  # noqa: E402


async def measure(layout: dict, pairs: int, window: float, rounds: int) -> dict:
    async with recording_cpu.b2bua(layout) as (acc, uri, legs):
        await recording_cpu.grow_to(acc, legs, 2 * pairs, uri)
        for i in range(pairs):
            bridge(legs[2 * i], legs[2 * i + 1])
        await asyncio.sleep(2.0)      # the new calls' start-up settles
        samples = [await recording_cpu.cpu_percent(window) for _ in range(rounds)]
    med = statistics.median(samples)
    return {"pairs": pairs, "window_s": window, "rounds": rounds,
            "cpu_percent": round(med, 2), "cpu_all": [round(x, 2) for x in samples],
            "cpu_per_pair_pct_core": round(med / pairs, 4) if pairs else None,
            "loadavg": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, required=True, help="bridged pairs (2 legs each)")
    ap.add_argument("--window", type=float, default=10.0, help="s per CPU sample")
    ap.add_argument("--rounds", type=int, default=3, help="CPU samples (median reported)")
    ap.add_argument("--timeout", type=float, default=300.0, help="the whole run, s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    out = claim_stdout()
    res = recording_cpu.against_answerer(
        "b2bua_floor", 2 * args.pairs, args.timeout,
        lambda layout: measure(layout, args.pairs, args.window, args.rounds))
    if res is None:
        return 2
    if args.json:
        out.write(json.dumps(res) + "\n")
    else:
        out.write(f"raw B2BUA, {res['pairs']} bridged pairs: {res['cpu_percent']:.1f} % of one "
                  f"core (samples {res['cpu_all']}), {res['cpu_per_pair_pct_core']:.3f} % per "
                  f"pair; load average {res['loadavg']:.2f}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
