"""CPU that stereo conversation recording adds to a process bridging N calls.

    python benchmarks/recording_cpu.py                    # N = 50 and 100, 10 s windows
    python benchmarks/recording_cpu.py --pairs 20 --window 5 --rounds 1 --json

How it measures
---------------
* This process is the B2BUA, built from the engine's pieces (SipEndpoint
  with its RTP poller and call drain, CallLeg, bridge,
  ConversationRecording).  The far ends are one answering pjsua2 process
  (benchmarks/pjsua2_capacity.py ``--role uas``, started as our child and
  stopped by PID), PCMU, VAD off, so every leg carries RTP both ways.
* For each N (ascending) it dials legs until 2N are up and bridges them in
  pairs, then, ``--rounds`` times: CPU over ``--window`` s with no
  recording; N recordings started (left = one leg, right = its partner);
  CPU over the next window; the N recordings stopped (files finished,
  fsynced, renamed) and deleted.  CPU = growth of utime + stime of this
  process in /proc (benchmarks/procstat.py) over the window's wall time,
  100 % = one core; all threads count (pjmedia's clock thread, which runs
  the recorder's ports, and the RTP poller).
* Result per N: medians of the rounds, and (with - without) / N as % of
  one core per recorded call.  Also the time to start and to stop N
  recordings on the loop thread.
* Ports: one block from tests/portlocks.py (127.0.0.1 only).  Bounded:
  SIGALRM at ``--timeout`` ends a wedged run.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pjsua2 as pj  # noqa: E402

from capacity_ua import port_layout, ports_needed, raise_fd_limit  # noqa: E402
from pjsua2_capacity import UasChild  # noqa: E402
from portlocks import PortAllocator  # noqa: E402
from procstat import cpu_seconds  # noqa: E402
from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.logs import configure_logging  # noqa: E402
from sipagent.media.call_recording import ConversationRecording  # noqa: E402
from sipagent.media.playback import bridge  # noqa: E402
from sipagent.sip.endpoint import SipEndpoint  # noqa: E402
from sipagent.sip.leg import CallLeg, dial  # noqa: E402

DIAL_RATE = 100.0           # INVITEs per second


async def cpu_percent(window: float) -> float:
    pid = os.getpid()
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


async def grow_to(acc, legs: list[CallLeg], count: int, uri: str) -> None:
    """Dial until `count` legs are up (media active), at DIAL_RATE."""
    new = []
    for i in range(len(legs), count):
        leg = dial(acc, uri, label=f"leg{i}")
        legs.append(leg)
        new.append(leg)
        await asyncio.sleep(1.0 / DIAL_RATE)
    for leg in new:
        await asyncio.wait_for(leg.confirmed, 30)
        await asyncio.wait_for(leg.media_ready.wait(), 10)


async def measure(args, legs: list[CallLeg], pairs: int, folder: Path) -> dict:
    without, with_rec, start_s, stop_s = [], [], [], []
    for r in range(args.rounds):
        without.append(await cpu_percent(args.window))
        t = time.perf_counter()
        recs = []
        for i in range(pairs):
            rec = ConversationRecording(folder, f"r{r}-{i}")
            rec.start(legs[2 * i], legs[2 * i + 1])
            recs.append(rec)
        start_s.append(time.perf_counter() - t)
        await asyncio.sleep(0.5)
        with_rec.append(await cpu_percent(args.window))
        t = time.perf_counter()
        records = [await rec.stop() for rec in recs]
        stop_s.append(time.perf_counter() - t)
        errors = [e for rec in records for e in rec.errors]
        if errors:
            raise RuntimeError(f"recordings failed: {errors[:3]}")
        secs = statistics.median(rec.seconds for rec in records)
        for f in folder.iterdir():
            f.unlink()
    wo, wi = statistics.median(without), statistics.median(with_rec)
    return {"pairs": pairs, "legs": 2 * pairs, "rounds": args.rounds, "window_s": args.window,
            "cpu_without_pct": round(wo, 2), "cpu_with_pct": round(wi, 2),
            "cpu_without_all": [round(x, 2) for x in without],
            "cpu_with_all": [round(x, 2) for x in with_rec],
            "added_per_call_pct_core": round((wi - wo) / pairs, 4),
            "start_all_ms": round(1000 * statistics.median(start_s), 1),
            "stop_all_ms": round(1000 * statistics.median(stop_s), 1),
            "recorded_s_median": round(secs, 2)}


@contextlib.asynccontextmanager
async def b2bua(layout: dict):
    """This process as the B2BUA: the engine's SipEndpoint and an account
    whose RTP ports are the layout's; yields (account, the answerer's URI,
    the list to keep every leg in).  Every leg is hung up and released, and
    the library destroyed, on the way out."""
    ep = SipEndpoint(listen="127.0.0.1", port=layout["uac_sip"], pjsip_level=1)
    ep.start()
    ep.start_polling()
    acc = pj.Account()
    legs: list[CallLeg] = []
    try:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:bench@127.0.0.1:{layout['uac_sip']}"
        cfg.sipConfig.transportId = ep.transport_ids["udp"]
        cfg.mediaConfig.transportConfig.port = layout["uac_rtp"]
        cfg.mediaConfig.transportConfig.portRange = layout["rtp_span"]
        cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acc.create(cfg)
        yield acc, f"sip:agent@127.0.0.1:{layout['uas_sip']}", legs
        for leg in legs:
            leg.end()
        await ep.pump(1.0)
    finally:
        CallLeg.disown_all()
        legs.clear()
        acc.shutdown()
        del acc
        gc.collect()
        ep.destroy()


async def run(args, layout: dict, folder: Path) -> list[dict]:
    results = []
    async with b2bua(layout) as (acc, uri, legs):
        for pairs in sorted(args.pairs):
            bridged = len(legs) // 2
            await grow_to(acc, legs, 2 * pairs, uri)
            for i in range(bridged, pairs):
                bridge(legs[2 * i], legs[2 * i + 1])
            await asyncio.sleep(1.0)   # let the new calls' start-up settle
            res = await measure(args, legs, pairs, folder)
            sys.stderr.write(f"recording_cpu: {json.dumps(res)}\n")
            results.append(res)
    return results


def table(results: list[dict]) -> str:
    head = f"{'pairs':>5} {'CPU without':>12} {'CPU with':>9} {'added/call':>11} " \
           f"{'start all':>10} {'stop all':>9}"
    rows = [head] + [f"{r['pairs']:>5} {r['cpu_without_pct']:>11.1f}% {r['cpu_with_pct']:>8.1f}% "
                     f"{r['added_per_call_pct_core']:>10.3f}% {r['start_all_ms']:>8.1f}ms "
                     f"{r['stop_all_ms']:>7.1f}ms" for r in results]
    return "\n".join(rows) + "\n(CPU: % of one core, medians of the rounds; added/call = " \
        "(with - without) / pairs)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[50, 100],
                    help="bridged pairs to measure, each N (default 50 100)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds per CPU window")
    ap.add_argument("--rounds", type=int, default=3, help="without/with rounds per N")
    ap.add_argument("--timeout", type=float, default=600.0, help="overall bound in seconds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if min(args.pairs) < 1 or max(args.pairs) > 400:
        ap.error("--pairs: 1..400")
    if args.window <= 0 or args.rounds < 1:
        ap.error("--window must be > 0 and --rounds >= 1")
    out = claim_stdout()
    folder = Path(tempfile.mkdtemp(prefix="sipacd-reccpu-"))
    try:
        results = against_answerer("recording_cpu", 2 * max(args.pairs), args.timeout,
                                   lambda layout: run(args, layout, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if results is None:
        return 2
    out.write((json.dumps(results, indent=1) if args.json else table(results)) + "\n")
    return 0


def against_answerer(name: str, legs: int, timeout: float, body) -> list[dict] | None:
    """Run ``body(layout)`` (a coroutine) in this process against one
    answering process for ``legs`` calls, ports from tests/portlocks.py,
    the whole bounded by SIGALRM at ``timeout``; None if the answering
    process did not start.  Call ``claim_stdout`` first: pjsua's prints
    must not mix with the result."""
    configure_logging("warning", "json")
    raise_fd_limit(4 * legs + 256)
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(int(timeout))
    alloc = PortAllocator()
    child = None
    try:
        base = alloc.block(ports_needed(legs))
        layout = port_layout(base, legs)
        child = UasChild(argparse.Namespace(port_base=base, calls=legs, timeout=timeout,
                                            log_level=1))
        ready = child.read_line(20)
        if not ready or not ready.get("ready"):
            sys.stderr.write(f"{name}: the answering process did not start: {ready}\n")
            return None
        return asyncio.run(body(layout))
    finally:
        if child is not None:
            child.stop()
        alloc.release_all()
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
