"""Soak: steady SIP traffic for minutes, then what the engine left behind.

    python benchmarks/soak.py                  # 20 calls/s for 9 min: under 10 min in all
    python benchmarks/soak.py --quick          # ~40 s; what tests/test_soak_quick.py runs
    python benchmarks/soak.py --rate 20 --minutes 30 --json

The call centre is the load benchmark's (``benchmarks/loadkit.py``): the
engine on a generated config with one queue, and one fleet process of
Poisson callers (exponential patience) and agents who ring, talk and hang
up, over real SIP and RTP on 127.0.0.1.  Callers who abandon, agents rung
for a caller who has just left, wrap-ups: every path a leg can end by runs
thousands of times.

Timeline
--------
1. The engine starts; before the fleet places a call, the idle engine is
   measured (RSS, open descriptors by kind, threads).
2. Traffic for ``--minutes``; the engine is sampled every ``--sample`` s
   from /proc/<pid> (RSS, descriptors, threads, CPU) and /metrics (calls
   ended, live legs, callers waiting).  The first ``--warmup`` s fill
   pools and caches: memory growth is counted from their end.
3. Arrivals stop; the calls in progress end on their own (bounded by
   ``--drain``); the fleet quits (hanging up whatever it still holds); the
   engine gets ``--settle`` s for wrap-ups and BYEs, and is measured again.

What counts as left behind (each makes the exit status 1)
---------------------------------------------------------
* live legs: ``sipacd_active_calls`` (the engine's table of call legs,
  inbound and to agents) above 0;
* calls in queues: ``waiting`` of ``/api/queues`` above 0;
* stuck agents: an agent of ``/api/agents`` not ``available``, or still
  holding a call;
* unfinished calls: calls that reached the engine, were not refused, and
  never ended (``sipacd_calls_total{direction="inbound"}`` counts a call
  when its flow is over): a call task that never returns;
* descriptors: more open than when idle, beyond ``--fd-tolerance`` (one
  is expected: the music-on-hold player opens its WAV on the first wait
  and keeps it).  Each leg holds its RTP and RTCP sockets while it lasts.

Memory is reported, not judged: RSS idle, after the warm-up and at the
end, growth per 1000 calls from the warm-up's end, and the slope fitted
over the second half of the traffic (a leak keeps a slope; an allocator
filling its arenas flattens out).  The CPU cores are shared with other
runs: quote this run's numbers side by side, not against another day's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

import loadkit  # benchmarks/loadkit.py: the engine, the fleet; puts the repo on sys.path
import procstat  # noqa: E402
from loadkit import QUEUE, Params  # noqa: E402
from scrape import total, val  # noqa: E402

# Occupancy about 85 %: agents busy, callers waiting and some abandoning, so
# that every way a leg can end is exercised, not only the happy path.
SOAK = Params(agents=85, rate=20.0, talk=3.0, ring=0.3, wrap_up=0.5, patience=6.0,
              duration=0.0, warmup=30.0, drain=45.0, record=0)
MINUTES = 9.0
QUICK = replace(SOAK, agents=30, rate=8.0, warmup=6.0, drain=15.0)
QUICK_MINUTES = 0.5


def measure(engine: loadkit.EngineProc, t0: float) -> dict:
    """One sample of the engine: /metrics and /proc/<pid>."""
    m = engine.scrape()
    if m is None or engine.proc.poll() is not None:
        raise RuntimeError(f"the engine failed ({engine.failure()}):\n{engine.log_tail(10)}")
    pid = engine.proc.pid
    fds = procstat.fd_kinds(pid)
    return {"t": round(time.monotonic() - t0, 2),
            "calls": val(m, "sipacd_calls_total", direction="inbound"),
            "offered": val(m, "sipacd_queue_offered_total", queue=QUEUE),
            "answered": val(m, "sipacd_queue_answered_total", queue=QUEUE),
            "abandoned": val(m, "sipacd_queue_abandoned_total", queue=QUEUE),
            "rejected": total(m, "sipacd_sip_rejected_total"),
            "loop_stalls": val(m, "sipacd_event_loop_stalls_total"),
            "legs": val(m, "sipacd_active_calls"),
            "waiting": val(m, "sipacd_queue_waiting_calls", queue=QUEUE),
            "rss_mb": procstat.rss_mb(pid), "fds": sum(fds.values()), "fd_kinds": fds,
            "threads": procstat.threads(pid), "cpu_s": procstat.cpu_seconds(pid)}


def wait_until(done, seconds: float, step: float = 0.5) -> float | None:
    """Poll ``done()`` for up to ``seconds``; how long it took, or None."""
    t0 = time.monotonic()
    while True:
        if done():
            return time.monotonic() - t0
        if time.monotonic() - t0 >= seconds:
            return None
        time.sleep(step)


def stuck_agents(agents: list[dict]) -> list[dict]:
    return [{"agent": a["agent"], "state": a["state"], "call": a.get("call")}
            for a in agents if a["state"] != "available" or a.get("call")]


def run(p: Params = SOAK, minutes: float = MINUTES, *, sample: float = 10.0,
        settle: float = 15.0, fd_tolerance: int = 8, ports: dict | None = None,
        workdir: Path | None = None, progress=None) -> dict:
    """One soak; the result as a dict (see the module doc and ``leaks``)."""
    say = progress or (lambda msg: None)
    traffic = 60.0 * minutes
    t0 = time.monotonic()
    samples: list[dict] = []
    notes: list[str] = []
    with loadkit.centre(p, ports=ports, workdir=workdir, say=say, prefix="sipacd-soak-",
                        before_fleet=lambda e: samples.append(measure(e, t0))) as c:
        engine, fleet = c.engine, c.fleet
        idle = samples[0]
        start = time.monotonic()
        say(f"traffic {minutes:g} min at {p.rate:g} calls/s ({p.warmup:g} s warm-up)")
        warm = None
        while (left := traffic - (time.monotonic() - start)) > 0:
            time.sleep(min(sample, left))
            fleet.check()
            samples.append(measure(engine, t0))
            if warm is None and time.monotonic() - start >= p.warmup:
                warm = samples[-1]
        traffic_end = samples[-1]
        fleet.send("arrivals", on=False)
        say("draining")
        drained = wait_until(lambda: fleet.last_stats.get("legs", 1) == 0
                             and measure(engine, t0)["legs"] == 0, p.drain)
        if drained is None:
            notes.append(f"calls still up {p.drain:g} s after arrivals stopped "
                         f"(fleet: {fleet.last_stats.get('legs')} legs); the fleet hung them up")
        fleet_stats = fleet.stop() or {}
        c.fleet = None

        def settled() -> bool:
            s = measure(engine, t0)
            return s["legs"] == 0 and s["waiting"] == 0 and \
                not stuck_agents(engine.api("/api/agents")["agents"])
        settled_in = wait_until(settled, settle)
        after = measure(engine, t0)
        agents = engine.api("/api/agents")["agents"]
        queues = engine.api("/api/queues")["queues"]
    fleet_counts = {k: fleet_stats.get(k) for k in (
        "placed", "setup_failed", "answered", "abandoned", "dropped", "agent_calls",
        "agent_cancelled", "fail_codes")}
    return summarise(p, minutes, samples, idle, warm or traffic_end, traffic_end, after,
                     agents, queues, fleet_counts, fd_tolerance=fd_tolerance, notes=notes,
                     timing={"drain_s": drained, "settle_s": settled_in,
                             "wall_s": time.monotonic() - t0})


def summarise(p, minutes, samples, idle, warm, traffic_end, after, agents, queues, fleet,
              *, fd_tolerance, notes, timing) -> dict:
    calls = after["calls"] - idle["calls"]
    # Calls that reached the engine (the fleet's own pjsua did not fail them)
    # and were not refused there: each must end, or its call task hangs.
    local_failures = sum(n for k, n in (fleet.get("fail_codes") or {}).items()
                         if k.startswith("makeCall:"))
    started = (fleet.get("placed") or 0) - local_failures - (after["rejected"] - idle["rejected"])
    stuck = stuck_agents(agents)
    steady = [s for s in samples[1:] if s["t"] >= warm["t"]]
    half = steady[len(steady) // 2:]
    slope = None
    if len(half) >= 3 and half[-1]["calls"] > half[0]["calls"]:
        slope = 1000 * float(np.polyfit([s["calls"] for s in half],
                                        [s["rss_mb"] for s in half], 1)[0])
    warm_calls = after["calls"] - warm["calls"]
    busy = [s for s in samples[1:] if s["t"] <= traffic_end["t"]]
    cpu = [100 * (b["cpu_s"] - a["cpu_s"]) / (b["t"] - a["t"])
           for a, b in zip(samples, samples[1:]) if b["t"] <= traffic_end["t"]]
    leaks = {
        "legs": after["legs"],
        "queued": sum(q["waiting"] for q in queues.values()),
        "stuck_agents": len(stuck),
        "unfinished_calls": max(0, started - calls),
        "fd_growth": after["fds"] - idle["fds"],
    }
    leaked = [k for k, v in leaks.items()
              if v > (fd_tolerance if k == "fd_growth" else 0)]
    if not calls:
        notes.append("no call completed: nothing was soaked")
    return {
        "params": {**asdict(p), "minutes": minutes, "fd_tolerance": fd_tolerance,
                   "erlangs": p.rate * p.service},
        "ok": not leaked and calls > 0, "leaked": leaked, "leaks": leaks,
        "calls": {"completed": calls, "started": started,
                  "offered": after["offered"] - idle["offered"],
                  "answered": after["answered"] - idle["answered"],
                  "abandoned": after["abandoned"] - idle["abandoned"],
                  "rejected": after["rejected"] - idle["rejected"],
                  "loop_stalls": after["loop_stalls"] - idle["loop_stalls"]},
        "fleet": fleet,
        "rss_mb": {"idle": idle["rss_mb"], "warm": warm["rss_mb"], "after": after["rss_mb"],
                   "max": max(s["rss_mb"] for s in (*samples, after)),
                   "per_1000_calls": (1000 * (after["rss_mb"] - warm["rss_mb"]) / warm_calls
                                      if warm_calls else None),
                   "per_1000_calls_second_half": slope},
        "fds": {"idle": idle["fds"], "warm": warm["fds"], "after": after["fds"],
                "max": max(s["fds"] for s in (*samples, after)), "idle_kinds": idle["fd_kinds"],
                "after_kinds": after["fd_kinds"]},
        "threads": {"idle": idle["threads"], "after": after["threads"],
                    "max": max(s["threads"] for s in (*samples, after))},
        "cpu_percent": {"mean": (100 * (traffic_end["cpu_s"] - idle["cpu_s"]) /
                                 (traffic_end["t"] - idle["t"])),
                        "median_sample": float(np.median(cpu)) if cpu else None},
        "legs_max": max((s["legs"] for s in busy), default=0),
        "waiting_max": max((s["waiting"] for s in busy), default=0),
        "stuck_agents": stuck[:20],
        "agents_by_state": {q: v["agents"] for q, v in queues.items()},
        "timing": timing, "notes": notes,
        "samples": [{k: v for k, v in s.items() if k != "fd_kinds"} for s in samples],
        "after": {k: v for k, v in after.items() if k != "fd_kinds"},
    }


# -- output -----------------------------------------------------------------------------

def _mb(x) -> str:
    return "n/a" if x is None else f"{x:+.2f} MB"


def table(r: dict) -> str:
    p, c, fl, lk = r["params"], r["calls"], r["fleet"], r["leaks"]
    rss, fds, th = r["rss_mb"], r["fds"], r["threads"]
    out = [f"soak: {p['rate']:g} calls/s for {p['minutes']:g} min ({p['warmup']:g} s of it "
           f"warm-up), {p['agents']} agents (talk {p['talk']:g} s, ring {p['ring']:g} s, "
           f"wrap-up {p['wrap_up']:g} s, patience {p['patience']:g} s; {p['erlangs']:.1f} Erl)",
           f"calls      {c['completed']:.0f} completed in the engine of {fl['placed']} placed "
           f"(answered {c['answered']:.0f}, abandoned {c['abandoned']:.0f}; refused "
           f"{c['rejected']:.0f}, failed set-up {fl['setup_failed']}"
           f"{' %s' % fl['fail_codes'] if fl['fail_codes'] else ''})",
           f"load       legs max {r['legs_max']:.0f}, callers waiting max "
           f"{r['waiting_max']:.0f}; CPU {r['cpu_percent']['mean']:.1f} % of one core "
           f"(median sample {r['cpu_percent']['median_sample'] or 0:.1f} %); event-loop "
           f"stalls {c['loop_stalls']:.0f}",
           "",
           f"{'time s':>8}{'calls':>8}{'legs':>6}{'waiting':>9}{'RSS MB':>9}{'fds':>6}"
           f"{'threads':>9}"]
    samples = r["samples"]
    step = max(1, len(samples) // 10)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    rows = [(f"{s['t']:.0f}", s) for s in shown] + [("after", r["after"])]
    for label, s in rows:
        out.append(f"{label:>8}{s['calls']:>8.0f}{s['legs']:>6.0f}{s['waiting']:>9.0f}"
                   f"{s['rss_mb']:>9.1f}{s['fds']:>6}{s['threads']:>9}")
    t = r["timing"]
    out += ["",
            f"after the traffic (drained in {_s(t['drain_s'])}, settled in {_s(t['settle_s'])})",
            f"  live legs         {lk['legs']:.0f}   (sipacd_active_calls)",
            f"  calls in queues   {lk['queued']}   (/api/queues waiting)",
            f"  stuck agents      {lk['stuck_agents']} of {p['agents']}   (/api/agents: not "
            "available or still on a call)",
            f"  unfinished calls  {lk['unfinished_calls']}   ({c['started']} reached the "
            f"engine and were not refused, {c['completed']:.0f} ended)",
            f"  open fds          idle {fds['idle']}, after warm-up {fds['warm']}, after "
            f"{fds['after']} ({lk['fd_growth']:+d}, tolerance {p['fd_tolerance']}); max "
            f"{fds['max']}; after: {fds['after_kinds']}",
            f"  threads           idle {th['idle']}, after {th['after']}, max {th['max']}",
            f"  RSS               idle {rss['idle']:.1f} MB, after warm-up {rss['warm']:.1f} MB,"
            f" after {rss['after']:.1f} MB, max {rss['max']:.1f} MB",
            f"  RSS per 1000 calls  {_mb(rss['per_1000_calls'])} from the warm-up's end; "
            f"{_mb(rss['per_1000_calls_second_half'])} fitted over the traffic's second half",
            "verdict: " + ("nothing left behind" if r["ok"] else
                           ("LEFT BEHIND: " + ", ".join(r["leaked"])) if r["leaked"] else
                           "no verdict: no call completed")]
    out += [f"stuck: {a}" for a in r["stuck_agents"]]
    out += [f"note: {n}" for n in r["notes"]]
    return "\n".join(out)


def _s(x) -> str:
    return "n/a (timed out)" if x is None else f"{x:.1f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the short run the test uses")
    ap.add_argument("--rate", type=float, help=f"new calls per second (default {SOAK.rate:g})")
    ap.add_argument("--minutes", type=float, help=f"traffic, warm-up included (default "
                                                 f"{MINUTES:g})")
    ap.add_argument("--agents", type=int, help=f"agents (default {SOAK.agents})")
    ap.add_argument("--warmup", type=float,
                    help=f"s before memory growth counts (default {SOAK.warmup:g})")
    ap.add_argument("--sample", type=float, help="s between samples (default 10, quick 2)")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="s the engine gets after the fleet quits (default 15)")
    ap.add_argument("--fd-tolerance", type=int, default=8,
                    help="descriptors more than idle that still pass (default 8)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--json-out", help="also write the result as JSON to this file")
    args = ap.parse_args(argv)
    p = QUICK if args.quick else SOAK
    p = replace(p, **{k: getattr(args, k) for k in ("rate", "agents", "warmup", "seed")
                      if getattr(args, k) is not None})
    minutes = args.minutes or (QUICK_MINUTES if args.quick else MINUTES)
    if 60 * minutes <= p.warmup:
        ap.error(f"--minutes {minutes:g} leaves no traffic after the {p.warmup:g} s warm-up")
    started = time.monotonic()
    r = run(p, minutes, sample=args.sample or (2.0 if args.quick else 10.0),
            settle=args.settle, fd_tolerance=args.fd_tolerance,
            progress=lambda m: print(f"[{time.monotonic() - started:5.1f} s] {m}",
                                     file=sys.stderr, flush=True))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1) if args.json else table(r))
    print(f"[{time.monotonic() - started:.0f} s in all]", file=sys.stderr)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
