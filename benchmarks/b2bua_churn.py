"""The raw B2BUA floor with calls coming and going: the load benchmark's
fleet of callers and agents, carried by a bare pjsua2 B2BUA instead of the
engine, so the engine's CPU per call can be compared with what answering,
dialling, bridging and hanging up cost by themselves.

    python benchmarks/b2bua_churn.py --rate 50 --agents 200 --talk 4 --duration 60 [--json]

``benchmarks/load.py --floor`` runs it right after its own window with the
load's parameters, beside benchmarks/b2bua_floor.py (the same pairs held
still).  That static floor leaves out every call's set-up and tear-down;
a B2BUA carrying a call centre's traffic cannot, so this one keeps them.

What runs: this process is the B2BUA, built from the engine's own pieces
(sipagent.sip.endpoint.SipEndpoint with its RTP poller and call drain,
CallLeg and dial, the conference-bridge connect of sipagent.media), and
nothing else: no ACD, no flows, no API, no events, no metrics.  The fleet
(benchmarks/fleet.py, niced as in the load) calls it at ``--rate``.  Each
caller is answered at once and waits in one first-come-first-served line
(silence, no music); ``--agents`` agents ``a0..`` are dialled longest-idle
first, each INVITE carrying the caller's Call-ID as the engine's does (the
fleet ends the caller's patience on the agent's answer); the pair is bridged
on the answer, and the first BYE ends both legs; an agent is free again
``--wrap-up`` s after its call.  So the fleet behaves as in the load test:
the same set-ups, abandons, talk and wrap-up.

How it measures: after ``--warmup`` s, growth of this process's utime +
stime (all threads) over ``--duration`` s of wall time, 100 % = one core
(benchmarks/procstat.py); legs and waiting callers sampled each second;
pairs = (legs - waiting) / 2, as load.py counts the engine's.  Calls
offered = callers answered by the B2BUA in the window.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import loadkit  # noqa: E402  (puts the repo and tests/ on sys.path)
import pjsua2 as pj  # noqa: E402
import procstat  # noqa: E402

from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.media.playback import bridge  # noqa: E402
from sipagent.sip.endpoint import SipEndpoint  # noqa: E402
from sipagent.sip.leg import CallLeg, LegEnded, dial  # noqa: E402


class Floor(pj.Account):
    """Answers every caller, lines them up, and connects each to the
    longest-idle agent."""

    def __init__(self, agents: int, agent_port: int, wrap_up: float):
        super().__init__()
        self.loop = asyncio.get_running_loop()
        self.idle = collections.deque(f"a{i}" for i in range(agents))
        self.agent_port = agent_port
        self.wrap_up = wrap_up
        self.line: collections.deque[CallLeg] = collections.deque()
        self.legs: set[CallLeg] = set()
        self.tasks: set[asyncio.Task] = set()
        self.offered = 0
        self.failed = 0

    def onIncomingCall(self, prm):
        leg = CallLeg(self, prm.callId, label=f"in-{prm.callId}")
        leg.sip_call_id = leg.getInfo().callIdString
        self._keep(leg)
        # Never call pjsua back from inside its callback.
        self.loop.call_soon(self._answer, leg)

    def _keep(self, leg: CallLeg) -> None:
        self.legs.add(leg)
        leg.ended.add_done_callback(lambda _f: self.legs.discard(leg))

    def _answer(self, caller: CallLeg) -> None:
        if caller.is_ended:
            return
        try:
            caller.respond(200)
        except pj.Error:
            self.failed += 1
            return
        self.offered += 1
        self.line.append(caller)
        self._match()

    def waiting(self) -> int:
        return sum(1 for c in self.line if not c.is_ended)

    def _match(self) -> None:
        while self.idle and self.line:
            caller = self.line.popleft()
            if caller.is_ended:
                continue              # abandoned while waiting
            task = self.loop.create_task(self._connect(caller, self.idle.popleft()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _connect(self, caller: CallLeg, agent: str) -> None:
        leg = None
        try:
            leg = dial(self, f"sip:{agent}@127.0.0.1:{self.agent_port}", label=agent,
                       headers={"X-Sipacd-Call-Id": caller.sip_call_id})
            self._keep(leg)
            answered = asyncio.ensure_future(leg.until_answered())
            await asyncio.wait({answered, caller.ended}, return_when=asyncio.FIRST_COMPLETED)
            if not answered.done():     # the caller hung up while the agent rang
                answered.cancel()
                return
            if answered.exception() is not None:
                # The agent's phone refused: the caller is let go, not
                # offered again (this floor has no ACD).
                self.failed += 1
                return
            if caller.is_ended:
                return
            await asyncio.wait_for(asyncio.gather(caller.media_ready.wait(),
                                                  leg.media_ready.wait()), 5.0)
            bridge(caller, leg)
            await asyncio.wait({caller.ended, leg.ended}, return_when=asyncio.FIRST_COMPLETED)
        except (LegEnded, pj.Error, asyncio.TimeoutError):
            self.failed += 1
        finally:
            caller.end()
            if leg is not None:
                leg.end()
            self.loop.call_later(self.wrap_up, self._free, agent)

    def _free(self, agent: str) -> None:
        self.idle.append(agent)
        self._match()


async def measure(args, sip_port: int, fleet_port: int, work: Path) -> dict:
    ep = SipEndpoint(listen="127.0.0.1", port=sip_port, pjsip_level=1)
    ep.start()
    ep.start_polling()
    floor = Floor(args.agents, fleet_port, args.wrap_up)
    fleet = None
    try:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:floor@127.0.0.1:{sip_port}"
        cfg.sipConfig.transportId = ep.transport_ids["udp"]
        cfg.mediaConfig.transportConfig.port = 4000
        cfg.mediaConfig.transportConfig.portRange = 1990
        cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        floor.create(cfg, True)
        p = loadkit.Params(agents=args.agents, rate=args.rate, talk=args.talk, ring=args.ring,
                           wrap_up=args.wrap_up, patience=args.patience, seed=args.seed)
        loop = asyncio.get_running_loop()
        # Same ports as the load: the fleet's RTP from 6000, ours from 4000.
        fleet = await loop.run_in_executor(
            None, lambda: loadkit.FleetProc(p, fleet_port, f"sip:100@127.0.0.1:{sip_port}",
                                            work, 6000))
        await asyncio.sleep(args.warmup)
        pid = os.getpid()
        offered_a, failed_a = floor.offered, floor.failed
        cpu_a, t_a = procstat.cpu_seconds(pid), time.monotonic()
        fleet_cpu_a = procstat.cpu_seconds(fleet.proc.pid)
        fleet.send("mark")
        samples = []
        while time.monotonic() - t_a < args.duration:
            await asyncio.sleep(1.0)
            samples.append((len(floor.legs), floor.waiting()))
            fleet.check()
        cpu_b, t_b = procstat.cpu_seconds(pid), time.monotonic()
        window = t_b - t_a
        fleet_cpu = 100 * (procstat.cpu_seconds(fleet.proc.pid) - fleet_cpu_a) / window
        fleet.send("arrivals", on=False)
        offered = floor.offered - offered_a
        failed = floor.failed - failed_a
        cpu = 100 * (cpu_b - cpu_a) / window
        pairs = statistics.median((legs - waiting) / 2 for legs, waiting in samples)
        stats = dict(fleet.last_stats)
    finally:
        if fleet is not None:
            await asyncio.get_running_loop().run_in_executor(None, fleet.stop)
        for leg in list(floor.legs):
            leg.end()
        await ep.pump(1.0)
        for task in list(floor.tasks):
            task.cancel()
        CallLeg.disown_all()
        floor.legs.clear()
        floor.line.clear()
        floor.shutdown()
        del floor
        gc.collect()
        ep.destroy()
    return {"rate": args.rate, "agents": args.agents, "window_s": round(window, 1),
            "cpu_percent": round(cpu, 2), "offered": offered,
            "offered_per_s": round(offered / window, 2),
            "failed": failed,
            "pairs_median": pairs, "legs_median": statistics.median(s[0] for s in samples),
            "waiting_median": statistics.median(s[1] for s in samples),
            "cpu_per_pair_pct_core": round(cpu / pairs, 4) if pairs else None,
            "cpu_ms_per_call": round(10 * cpu * window / offered, 3) if offered else None,
            "fleet": {k: stats.get(k) for k in ("answered", "abandoned", "setup_failed",
                                                 "agent_calls")},
            "fleet_cpu_percent": round(fleet_cpu, 1), "loadavg": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    d = loadkit.Params()
    ap.add_argument("--rate", type=float, default=d.rate, help="new calls per second")
    ap.add_argument("--agents", type=int, default=d.agents)
    ap.add_argument("--talk", type=float, default=d.talk, help="mean talk, s")
    ap.add_argument("--ring", type=float, default=d.ring, help="agents answer after, s")
    ap.add_argument("--wrap-up", type=float, default=d.wrap_up, help="s")
    ap.add_argument("--patience", type=float, default=d.patience, help="mean, s")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--warmup", type=float, default=20.0, help="s before the window")
    ap.add_argument("--duration", type=float, default=60.0, help="the window, s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = claim_stdout()
    with tempfile.TemporaryDirectory(prefix="sipacd-floor-") as work:
        try:
            res = asyncio.run(measure(args, loadkit.free_port(), loadkit.free_port(), Path(work)))
        finally:
            loadkit.release_ports()
    if args.json:
        out.write(json.dumps(res) + "\n")
    else:
        out.write(f"raw B2BUA carrying {res['offered_per_s']:.1f} calls/s ({res['agents']} "
                  f"agents): {res['cpu_percent']:.1f} % of one core over {res['pairs_median']:.0f}"
                  f" pairs, {res['cpu_per_pair_pct_core']:.3f} % per pair, "
                  f"{res['cpu_ms_per_call']:.2f} ms of CPU per call; fleet "
                  f"{res['fleet']}; load average {res['loadavg']:.2f}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
