"""Mouth-to-ear delay through the engine, beside the same two phones called
directly, in one run: the difference is what the engine adds.

    python benchmarks/mouth_to_ear.py --quick     # ~25 s: 10 markers each way
    python benchmarks/mouth_to_ear.py             # 60 markers each way
    python benchmarks/mouth_to_ear.py --load-rate 50   # meanwhile load.py's traffic, 50/s
    python benchmarks/mouth_to_ear.py --json

What runs
---------
* The engine (``python -m sipagent run``, tests/engine_proc.py) with a
  route ``200``, a queue ``m2e`` and one agent, ``m2e0``, and a flow that
  answers and enqueues at once.
* Two simulated phones (simphones/phone.py, each its own pjsua2 process):
  "callers" and "agents".  The caller phone places two calls at the same
  time: ``eng`` to the engine (which answers, queues and bridges it to
  ``m2e0`` on the agent phone) and ``dir`` straight to the agent phone (user
  ``direct``).  Neither side plays anything else: both send G.711 silence
  between the markers (no VAD), as a quiet talker would.
* With ``--load-rate R`` the engine is benchmarks/load.py's (loadkit.py):
  its fleet of callers and agents runs at R new calls/s through the same
  engine meanwhile (``--load-warmup`` s before the two calls are placed),
  and the benchmark's calls have a route, queue and agent of their own.
* Markers: every ``--period`` s the caller phone plays a ``--ms`` burst of
  ``--freq`` Hz into both of its calls in the same instant (the phone's
  ``burst`` command), and half a period later the agent phone does the same
  into both of its calls: both directions, both paths, under the same load.
  Each phone records what it hears on each call.

Timing: the phones run on this machine and stamp their events with
``time.monotonic()`` (CLOCK_MONOTONIC, one clock for all processes).  A
burst's send time is when it was handed to the sending phone's bridge (it
goes out from that bridge's next tick: up to one 20 ms frame later); its
arrival is the first sample of the receiving phone's recording over 30 % of
the burst's peak, placed on the clock by the recording's start (its
``media`` event: the recorder's first frame comes at the next tick, up to a
frame later).  Those two unknown phases are alike on both paths, so they
cancel in the difference; the absolute figures carry an uncertainty of
about ±10 ms from them.  The recording's length is checked against the wall
clock (a recorder that skipped frames would shift every later marker).

What the direct path contains: the sender's packetisation and clock phase,
loopback UDP, and the receiver's jitter buffer and clock phase.  The engine
path has all of that plus the engine's receive jitter buffer, its bridge
tick and its sending: the difference.  At the end each receiving phone's
jitter buffer is read (the phone's ``jbuf`` command): a bigger buffer on
the engine path than on the direct one is delay the engine's sending
jitter caused at the far end.

What it showed (2-core machine shared with other runs; medians of one run,
caller->agent / agent->caller): engine otherwise idle, 60 markers, load
average 2.9: through the engine 51 / 61 ms, direct 32 / 18 ms, the
engine's share 19 / 43 ms (per-marker differences 11 / 43 ms).  Under the
load benchmark's 50 calls/s (``--load-rate 50``, load average 3-5), the
engine's share ranged 6-98 ms from run to run: the delay jumps by 200-500
ms after a stall of the machine and shrinks by 10 ms at a time as
progressive discard trims the jitter buffers (see ``all_ms`` in --json).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import procstat  # noqa: E402  (benchmarks/procstat.py)
from engine_proc import Engine, base_config  # noqa: E402
from portlocks import PortAllocator  # noqa: E402
from simphones.tones import burst_onset, read_wav  # noqa: E402
from sipua import UA  # noqa: E402

FLOW = '''"""Mouth-to-ear benchmark: answer and queue at once."""


async def flow(call):
    await call.answer()
    await call.enqueue("m2e")
'''
def stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "min": math.nan, "max": math.nan}
    a = 1e3 * np.array(xs)
    return {"n": len(xs), "p50": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "min": float(a.min()), "max": float(a.max())}


M2E_NUMBER, M2E_QUEUE, M2E_AGENT = "200", "m2e", "m2e0"


def add_m2e(config: dict, agent_uri: str) -> None:
    """The benchmark's own route, queue and agent, beside whatever else the
    engine's configuration has (under load: the load's queue and agents)."""
    config["routes"] = [*config.get("routes", []),
                        {"number": M2E_NUMBER, "flow": "m2e", "queue": M2E_QUEUE}]
    config["queues"] = {**config.get("queues", {}),
                        M2E_QUEUE: {"strategy": "longest_idle", "ring_timeout": 10,
                                    "service_levels": [20], "short_abandon": 5}}
    config["agents"] = {**config.get("agents", {}),
                        M2E_AGENT: {"uri": agent_uri, "queues": [M2E_QUEUE]}}


@contextmanager
def idle_engine(alloc: PortAllocator, work: Path, agent_uri: str, prompts: Path):
    cfg = base_config(alloc.get, work, prompts,
                      flows={"dir": str(work / "flows"), "prompts_dir": str(prompts)},
                      log={"level": "warning", "format": "json", "pjsip_level": 1},
                      routes=[], agents={})
    add_m2e(cfg, agent_uri)
    with Engine(work, cfg) as engine:
        yield engine


@contextmanager
def loaded_engine(work: Path, agent_uri: str, rate: float, agents: int, warmup: float, say):
    """The load benchmark's centre (benchmarks/loadkit.py: the engine and
    the fleet at `rate` new calls/s over `agents` agents) with the
    benchmark's route, queue and agent added."""
    import loadkit

    p = loadkit.Params(agents=agents, rate=rate, record=0)
    with loadkit.centre(p, workdir=work, say=say, prefix="sipacd-m2e-",
                        add_config=lambda cfg: add_m2e(cfg, agent_uri)) as c:
        say(f"load warm-up {warmup:g} s at {rate:g} calls/s, {agents} agents")
        loadkit.hold(c.engine, warmup, "warm-up")
        yield c.engine
        c.fleet.check()


def run(markers: int, period: float, freq: float, ms: int, settle: float,
        work: Path, say=lambda m: None, load: tuple[float, int, float] | None = None) -> dict:
    """One run; ``load`` = (new calls/s, agents, warm-up s) runs the load
    benchmark's traffic through the same engine meanwhile."""
    alloc = PortAllocator()
    (work / "flows").mkdir(parents=True, exist_ok=True)
    (work / "flows" / "m2e.py").write_text(FLOW)
    prompts = Path(tempfile.gettempdir()) / "sipacd-load-prompts"
    try:
        with UA(alloc.get(), log_dir=work, name="agents", log_level=1) as agents, \
             UA(alloc.get(), log_dir=work, name="callers", log_level=1) as callers:
            say("starting the engine" + (" and the load" if load else ""))
            centre = (loaded_engine(work, agents.uri(M2E_AGENT), *load, say) if load
                      else idle_engine(alloc, work, agents.uri(M2E_AGENT), prompts))
            with centre as engine:
                load_before = os.getloadavg()
                cpu0, t_cpu0 = procstat.cpu_seconds(engine.proc.pid), time.monotonic()
                for user in (M2E_AGENT, "direct"):
                    agents.request("auto_answer", user=user, after=0.2, code=200,
                                   record=str(work / "agent-{user}.wav"))
                callers.request("call", call="eng", to=engine.number(M2E_NUMBER),
                                record=str(work / "caller-eng.wav"))
                callers.request("call", call="dir", to=agents.uri("direct"),
                                record=str(work / "caller-dir.wav"))
                rec = {}      # (side, path) -> (call name on that phone, recording start)
                for path in ("eng", "dir"):
                    rec[("caller", path)] = (path, callers.wait_event(
                        {"ev": "media", "call": path}, timeout=15)["at"])
                for _ in range(2):
                    inc = agents.wait_event({"ev": "incoming"}, timeout=15)
                    path = "eng" if inc["user"] == M2E_AGENT else "dir"
                    name = inc["call"]
                    agents.wait_state(name, "CONFIRMED", timeout=10)
                    rec[("agent", path)] = (name, agents.wait_event(
                        {"ev": "media", "call": name}, timeout=10)["at"])
                say(f"both calls up; settling {settle:g} s, then {markers} markers each way")
                time.sleep(settle)
                sent: dict[tuple[str, str], list[float]] = {k: [] for k in rec}
                t0 = time.monotonic()
                for i in range(markers):
                    for side, ua, offset in (("caller", callers, 0.0),
                                             ("agent", agents, period / 2)):
                        time.sleep(max(0.0, t0 + i * period + offset - time.monotonic()))
                        for path in ("eng", "dir"):
                            ua.send("burst", call=rec[(side, path)][0], freq=freq, ms=ms)
                # The send times, from the phones' own events.
                for side, ua in (("caller", callers), ("agent", agents)):
                    for path in ("eng", "dir"):
                        for _ in range(markers):
                            ev = ua.wait_event({"ev": "burst", "call": rec[(side, path)][0]},
                                               timeout=10)
                            sent[(side, path)].append(ev["at"])
                time.sleep(period)
                # What the phones' own jitter buffers hold at the end: the
                # part of each path's delay that is the receiving phone's.
                jbufs = {}
                for side, ua in (("caller", callers), ("agent", agents)):
                    for path in ("eng", "dir"):
                        name = rec[(side, path)][0]
                        ua.request("jbuf", call=name)
                        ev = ua.wait_event({"ev": "jbuf", "call": name}, timeout=5)
                        jbufs[f"{side} phone, {path}"] = {
                            k: ev[k] for k in ("size", "prefetch", "burst", "avgDelayMsec",
                                               "discard")}
                until = time.monotonic()
                engine_cpu = 100 * (procstat.cpu_seconds(engine.proc.pid) - cpu0) / \
                    (time.monotonic() - t_cpu0)
                load_after = os.getloadavg()
                callers.request("hangup", call="eng")
                callers.request("hangup", call="dir")
                for ua in (callers, agents):
                    for _ in range(2):
                        ua.wait_event({"ev": "recorded"}, timeout=15)
    finally:
        alloc.release_all()

    out: dict = {"params": {"markers": markers, "period_s": period, "freq_hz": freq,
                            "burst_ms": ms, "settle_s": settle,
                            "load": dict(zip(("rate", "agents", "warmup"), load)) if load
                            else None},
                 "loadavg_before": load_before, "loadavg_after": load_after,
                 "engine_cpu_percent": engine_cpu, "directions": {}, "recordings": {},
                 "phone_jbuf_at_end": jbufs}
    # A burst the caller sent is heard at the agent, and the other way round.
    files = {("caller", "eng"): work / f"agent-{M2E_AGENT}.wav",
             ("caller", "dir"): work / "agent-direct.wav",
             ("agent", "eng"): work / "caller-eng.wav", ("agent", "dir"): work / "caller-dir.wav"}
    listener = {"caller": "agent", "agent": "caller"}
    for (side, path), wav in files.items():
        samples, rate = read_wav(wav)
        rec_start = rec[(listener[side], path)][1]
        found = [burst_onset(samples, rate, rec_start, s, 0.9 * period)
                 for s in sent[(side, path)]]
        delays = [d for d in found if d is not None]
        key = f"{side}->{listener[side]}"
        out["directions"].setdefault(key, {})[path] = {
            **stats(delays), "missed": len(found) - len(delays),
            "all_ms": [None if d is None else round(1e3 * d, 1) for d in found]}
        # Timeline check: the recording should cover media start .. hang-up.
        out["recordings"][wav.name] = {"seconds": round(len(samples) / rate, 3),
                                       "wall_s_at_least": round(until - rec_start, 3)}
    for key, d in out["directions"].items():
        pairs = [a - b for a, b in zip(d["eng"]["all_ms"], d["dir"]["all_ms"])
                 if a is not None and b is not None]
        d["engine_share_ms"] = {"p50_difference": d["eng"]["p50"] - d["dir"]["p50"],
                                "p50_pairwise": float(np.median(pairs)) if pairs else math.nan}
    return out


def table(r: dict) -> str:
    p = r["params"]
    lines = [f"mouth-to-ear: {p['markers']} markers of {p['burst_ms']} ms at "
             f"{p['freq_hz']:g} Hz each way, every {p['period_s']:g} s; load average "
             f"{r['loadavg_before'][0]:.2f} before, {r['loadavg_after'][0]:.2f} after; "
             + (f"under load: {p['load']['rate']:g} new calls/s over {p['load']['agents']} "
                "agents (benchmarks/load.py's traffic) through the same engine; "
                if p["load"] else "engine otherwise idle; ")
             + f"engine CPU {r['engine_cpu_percent']:.1f} % of a core",
             f"{'direction':<16}{'path':<10}{'p50 ms':>8}{'p95 ms':>8}{'min':>7}{'max':>7}"
             f"{'n':>4}{'missed':>7}"]
    for key, d in r["directions"].items():
        for path, label in (("eng", "engine"), ("dir", "direct")):
            s = d[path]
            lines.append(f"{key:<16}{label:<10}{s['p50']:>8.1f}{s['p95']:>8.1f}{s['min']:>7.1f}"
                         f"{s['max']:>7.1f}{s['n']:>4}{s['missed']:>7}")
        e = d["engine_share_ms"]
        lines.append(f"{key:<16}{'ENGINE +':<10}{e['p50_difference']:>8.1f}   "
                     f"(median of per-marker differences {e['p50_pairwise']:.1f} ms)")
    lines.append("receiving phones' jitter buffers at the end (frames of 10 ms; avg delay ms): "
                 + ", ".join(f"{k}: size {v['size']}, avg {v['avgDelayMsec']}"
                             for k, v in r.get("phone_jbuf_at_end", {}).items()))
    lines.append("recordings (length vs wall time from media start to hang-up; a shorter "
                 "recording skipped frames): " + ", ".join(
                     f"{k} {v['seconds']:.2f}/{v['wall_s_at_least']:.2f} s"
                     for k, v in r["recordings"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 markers each way (~25 s)")
    ap.add_argument("--markers", type=int, default=None, help="markers each way (default 60)")
    ap.add_argument("--period", type=float, default=1.0,
                    help="s between a side's markers; a marker later than 0.9 of it is missed")
    ap.add_argument("--freq", type=float, default=1000.0, help="burst frequency, Hz")
    ap.add_argument("--ms", type=int, default=40, help="burst length, ms")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="s after both calls are up before the first marker")
    ap.add_argument("--load-rate", type=float, default=0.0,
                    help="meanwhile, the load benchmark's traffic at this many new calls/s "
                         "through the same engine (0: the engine is otherwise idle)")
    ap.add_argument("--load-agents", type=int, default=200, help="agents of that load")
    ap.add_argument("--load-warmup", type=float, default=20.0,
                    help="s of load before the two calls are placed")
    ap.add_argument("--workdir", help="keep recordings and logs here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    markers = args.markers or (10 if args.quick else 60)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sipacd-m2e-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        r = run(markers, args.period, args.freq, args.ms, args.settle, work,
                say=lambda m: print(f"[{time.monotonic() - started:5.1f} s] {m}",
                                    file=sys.stderr, flush=True),
                load=(args.load_rate, args.load_agents, args.load_warmup)
                if args.load_rate > 0 else None)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(r, indent=1) if args.json else table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
