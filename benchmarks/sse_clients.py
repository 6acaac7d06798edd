"""SSE clients under SIP load: what 100 clients of GET /api/events cost the
engine, and how late events reach them.

    python benchmarks/sse_clients.py --seconds 20     # short: ~2 minutes in all
    python benchmarks/sse_clients.py                  # 60 s phases
    python benchmarks/sse_clients.py --clients 100 --rate 50 --json

What runs
---------
The load benchmark's call centre (``benchmarks/loadkit.py``: the engine on
a generated config, the fleet of Poisson callers and answering agents over
real SIP/RTP on 127.0.0.1) at ``--rate`` new calls per second.  After a
warm-up, three phases of ``--seconds`` each:

1. no SSE client;
2. ``--clients`` clients (one asyncio process, aiohttp) each on
   ``GET /api/events`` without filters, i.e. every event;
3. no SSE client again (the clients disconnected).

Engine CPU is /proc/PID/stat over each phase (100 % = one core); "added by
the clients" is phase 2 minus the mean of phases 1 and 3, which cancels a
slow drift of the load.  Latency: for every ``call.started`` a client
receives, its arrival (wall clock) minus the event's ``t``, which the
engine stamps when the INVITE has been admitted and routed (the call
record's start): so INVITE -> commit -> SSE -> client.  p50/p99 over all
clients; and split per event into the first client's latency (the
engine's part) and the spread to the last client (fan-out to 100 sockets
and the client process).  A client only scans the bytes for ``call.started`` (a regex on
each chunk), so the client process stays light; it still shares the two
cores with the engine and the fleet, so its scheduling delay is in the
figure.  The machine is shared: quote the run, compare runs side by side.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time

import numpy as np

import loadkit  # benchmarks/loadkit.py: the engine, the fleet; puts the repo on sys.path
from loadkit import Params

STARTED = re.compile(rb'"seq":([0-9]+),"type":"call\.started","t":([0-9.]+)')


class Clients:
    """``n`` SSE clients on their own loop and thread."""

    def __init__(self, n: int, port: int, token: str):
        self.n, self.port, self.token = n, port, token
        self.latencies: list[float] = []
        self.arrivals: list[float] = []
        self.seqs: list[int] = []
        self.bytes = 0
        self.ended = 0          # streams the engine closed (a client fell behind)
        self.connected = 0
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),),
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.connected < self.n and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)

    async def _main(self) -> None:
        import aiohttp

        self._stop = asyncio.Event()
        conn = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
            tasks = [asyncio.create_task(self._client(http)) for _ in range(self.n)]
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, http) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with http.get(f"http://127.0.0.1:{self.port}/api/events", headers=headers) as r:
            assert r.status == 200, r.status
            self.connected += 1
            tail = b""
            async for chunk in r.content.iter_any():
                now = time.time()
                self.bytes += len(chunk)
                data = tail + chunk
                cut = data.rfind(b"\n\n")
                if cut < 0:
                    tail = data
                    continue
                tail = data[cut + 2:]
                for m in STARTED.finditer(data, 0, cut):
                    self.latencies.append(now - float(m.group(2)))
                    self.arrivals.append(now)
                    self.seqs.append(int(m.group(1)))
        self.ended += 1


def phase(engine, seconds: float) -> float:
    """Engine CPU over ``seconds`` of load, in % of one core."""
    cpu0, t0 = engine.cpu_seconds(), time.monotonic()
    loadkit.hold(engine, seconds, "measurement")
    return 100 * (engine.cpu_seconds() - cpu0) / (time.monotonic() - t0)


def run(args) -> dict:
    p = Params(agents=args.agents, rate=args.rate, talk=args.talk, wrap_up=0.5, ring=0.3,
               patience=30.0, duration=args.seconds, warmup=args.warmup, record=0)
    say = (lambda msg: None) if args.json else (lambda msg: print(f"-- {msg}", flush=True))
    with loadkit.centre(p, say=say, prefix="sipacd-sse-") as c:
        engine = c.engine
        token = engine.config["http"]["tokens"]["bench"]["token"]
        say(f"warm-up {args.warmup:g} s")
        loadkit.hold(engine, args.warmup, "warm-up")
        say(f"phase 1: no client, {args.seconds:g} s")
        before = phase(engine, args.seconds)
        clients = Clients(args.clients, engine.http_port, token)
        clients.start()
        say(f"phase 2: {clients.connected} clients, {args.seconds:g} s")
        mine0 = time.process_time()
        with_clients = phase(engine, args.seconds)
        client_cpu = 100 * (time.process_time() - mine0) / args.seconds
        received = len(clients.latencies)
        clients.stop()
        say(f"phase 3: no client, {args.seconds:g} s")
        after = phase(engine, args.seconds)
        offered = engine.metrics()
    lat = np.array(clients.latencies) * 1000
    # Per event: the first client's latency (the engine's part: INVITE ->
    # commit -> first write) and the spread to the last client (fan-out and
    # the clients' own scheduling).
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for seq, ms in zip(clients.seqs, lat):
        first[seq] = min(first.get(seq, ms), ms)
        last[seq] = max(last.get(seq, ms), ms)
    firsts = np.array(list(first.values()))
    spreads = np.array([last[k] - first[k] for k in first])
    # Seconds of phase 2 in which some client saw an event later than 250 ms:
    # spread thin (queueing) or in bursts (a stall somewhere)?
    at = np.array(clients.arrivals)
    slow = {}
    if len(at):
        for sec, ms in zip((at - at[0]).astype(int), lat):
            if ms > 250:
                slow[int(sec)] = max(slow.get(int(sec), 0.0), round(float(ms)))
    return {
        "rate": args.rate, "clients": args.clients, "connected": clients.connected,
        "seconds_per_phase": args.seconds,
        "engine_cpu_pct": {"without_1": round(before, 1), "with_clients": round(with_clients, 1),
                           "without_2": round(after, 1)},
        "cpu_added_pct_of_a_core": round(with_clients - (before + after) / 2, 1),
        "client_process_cpu_pct": round(client_cpu, 1),
        "seconds_with_an_event_over_250ms": slow,
        "call_started_received": received,
        "first_client_latency_ms": {"p50": round(float(np.percentile(firsts, 50)), 1),
                                    "p99": round(float(np.percentile(firsts, 99)), 1)}
        if len(firsts) else None,
        "spread_first_to_last_client_ms": {"p50": round(float(np.percentile(spreads, 50)), 1),
                                           "p99": round(float(np.percentile(spreads, 99)), 1)}
        if len(spreads) else None,
        "streams_closed_by_engine": clients.ended,
        "mbytes_to_clients": round(clients.bytes / 1e6, 1),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                       "p99": round(float(np.percentile(lat, 99)), 1),
                       "max": round(float(lat.max()), 1)} if len(lat) else None,
        "offered_total": sum(v for k, v in offered.items()
                             if k[0] == "sipacd_queue_offered_total"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--agents", type=int, default=260)
    ap.add_argument("--talk", type=float, default=4.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
