"""What the console's data costs: the wallboard, the interval report and the
staffing what-if, on synthetic days written into real event logs
(tests/callday.py: the runtime's event kinds, from a simulation of its own).

* wallboard: ``GET /api/wallboard`` on the engine's real HTTP app
  (tests/apikit.py) over a log of ~50k events of today; the first request
  replays the day, later ones read only new rows.  For scale, the same
  figures computed the plain way: ``report()`` over today on every request.
* interval report: one day at 15-minute intervals over the same log.
* what-if: one day of ~5000 calls replayed through acdcore's scheduler.

Medians of ``--repeat`` runs; the machine is shared, so compare ratios.

    .venv/bin/python benchmarks/console_reports.py [--events 50000] [--calls 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests"))      # the suite's engine app and synthetic day

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from apikit import SUPERVISOR, EngineApp  # noqa: E402
from callday import DayShape, write_day  # noqa: E402
from portlocks import PortAllocator, Ports  # noqa: E402
from sipagent.api.server import build_app  # noqa: E402
from sipagent.store.day_counters import local_day  # noqa: E402
from sipagent.store.intervals import interval_rows, span_of  # noqa: E402
from sipagent.store.report import report  # noqa: E402
from sipagent.store.whatif import read_day, whatif  # noqa: E402

UTC = ZoneInfo("UTC")
EVENTS_PER_CALL = 5.5       # what callday writes on average


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bench_wallboard(work: Path, events: int, repeat: int) -> None:
    day_start, day_end = local_day(time.time(), UTC)
    calls = int(events / EVENTS_PER_CALL)
    allocator = PortAllocator()

    async def go():
        engine = EngineApp(work)
        try:
            counts = write_day(engine.queues.stats.log.path,
                               DayShape(t0=day_start, calls=calls, agents=max(4, calls // 160)))
            print(f"wallboard: {counts['events']} events of today in the log "
                  f"({calls} calls)")
            async with TestClient(TestServer(build_app(engine), host="127.0.0.1",
                                             port=Ports(allocator)())) as client:
                t = time.perf_counter()
                r = await client.get("/api/wallboard", headers=SUPERVISOR)
                assert r.status == 200, await r.text()
                first = time.perf_counter() - t
                body = await r.json()
                times, fed = [], []
                log = engine.queues.stats.log
                for i in range(repeat):
                    # a few new events between fetches, as on a live day
                    for k in range(3):
                        log.queue_event(time.time(), "sales", f"bench-{i}-{k}", "ENTER")
                    t = time.perf_counter()
                    r = await client.get("/api/wallboard", headers=SUPERVISOR)
                    await r.read()
                    times.append(time.perf_counter() - t)
                assert r.status == 200
            db = engine.queues.stats.log.path
            plain = []
            for _ in range(max(3, repeat // 20)):
                t = time.perf_counter()
                report(db, day_start, day_end, thresholds=(20.0,))    # all of the log
                plain.append(time.perf_counter() - t)
            return first, times, plain, body
        finally:
            engine.close()
            allocator.release_all()

    first, times, plain, body = asyncio.run(go())
    offered = body["queues"]["sales"]["today"]["offered"]
    print(f"  first request (replays today): {_ms(first)}; today offered = {offered}")
    print(f"  later requests: median {_ms(statistics.median(times))}, "
          f"p90 {_ms(sorted(times)[int(0.9 * len(times))])} over {len(times)}")
    print(f"  report() over today on every request instead: median "
          f"{_ms(statistics.median(plain))} "
          f"({statistics.median(plain) / statistics.median(times):.0f}x)")


def bench_intervals(work: Path, events: int) -> None:
    db = work / "intervals.sqlite3"
    t0 = datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()
    calls = int(events / EVENTS_PER_CALL)
    counts = write_day(db, DayShape(t0=t0, calls=calls, agents=max(4, calls // 160)))
    span = span_of(date(2026, 11, 23), date(2026, 11, 23), "15m", UTC)
    t = time.perf_counter()
    rows = interval_rows(db, span, None)
    took = time.perf_counter() - t
    print(f"interval report: 1 day at 15m, {counts['events']} events, {len(rows)} rows: "
          f"{_ms(took)} ({took / counts['events'] * 1e6:.1f} us/event; a 31-day "
          f"request of such days: ~{took * 31:.0f} s)")


def bench_whatif(work: Path, calls: int, repeat: int) -> None:
    db = work / "whatif.sqlite3"
    t0 = datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()
    agents = max(2, round(calls / 36000 * 190 * 1.1))     # ~ the offered load + 10 %
    write_day(db, DayShape(t0=t0, calls=calls, agents=agents))
    span = span_of(date(2026, 11, 23), date(2026, 11, 23), "15m", UTC)
    reads, totals = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        read_day(db, "sales", span.t_from, span.t_to)
        reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = whatif(db, span, "sales", agents)
        totals.append(time.perf_counter() - t)
    tot = result["total"]
    print(f"what-if: 1 day, {result['calls']} calls, {agents} agents ({result['engine']}): "
          f"median {_ms(statistics.median(totals))} (reading the log "
          f"{_ms(statistics.median(reads))}); SL actual {tot['actual']['sl']:.3f} "
          f"predicted {tot['predicted']['sl']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        work = Path(tmp)
        (work / "wb").mkdir()
        bench_wallboard(work / "wb", args.events, args.repeat)
        bench_intervals(work, args.events)
        bench_whatif(work, args.calls, max(3, args.repeat // 40))


if __name__ == "__main__":
    main()
