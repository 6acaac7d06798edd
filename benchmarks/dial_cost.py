"""What one dial to an agent costs the loop thread, after an idle gap and back to back.

    python benchmarks/dial_cost.py            # 300 dials, 20 ms apart (the load's 50/s pace)
    python benchmarks/dial_cost.py --quick    # 30 dials, for a smoke run
    python benchmarks/dial_cost.py --json

Why: at 50 calls/s the engine's dispatch latency (agent free -> INVITE to
that agent leaves) is almost all the dial: ``sipagent.sip.leg.dial``, i.e.
building the CallLeg, its CallOpParam with the caller's headers, and
pjsua2's ``makeCall``, which creates the dialog, the RTP sockets and the SDP
and sends the INVITE before it returns.  Timing that inside a load run
mixes it with everything else the machine does; here it is alone.

How: a SipEndpoint with the engine's media settings (RTP bound to and
announced as 127.0.0.1) dials a UDP socket that never answers, so no
response ever reaches the loop while it dials.  Each round waits
``--gap`` s on the asyncio loop, dials once ("first": what a dispatch meets
after the loop was idle or busy elsewhere) and at once a second time
("second": the same code with warm caches).  For each part the wall time
and the loop thread's CPU time are recorded; medians and p90 are printed.

The gap between the two rows is the price of cold caches: on these shared
2-core machines a first dial took several times the second one.  A change
to the dial shows in both rows; the first is what the engine's histogram sees.
The unanswered legs end by pjsip's own INVITE timeout or at exit.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadkit  # noqa: E402  (puts the repo and tests/ on sys.path)
import pjsua2 as pj  # noqa: E402

from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.sip.endpoint import SipEndpoint  # noqa: E402
from sipagent.sip.leg import CallLeg, _add_headers  # noqa: E402

PARTS = ("leg", "param", "make_call", "dial")   # "dial" is the three together
# What the queue runtime sends an agent (sipagent/queue/entry.agent_headers).
HEADERS = {"X-Sipacd-Call-Id": "c0ffee", "X-Sipacd-Caller": "5551234",
           "X-Sipacd-Called": "100", "X-Sipacd-Queue": "support"}


def _one_dial(account, uri: str, n: int) -> tuple[dict, dict, CallLeg]:
    """sipagent.sip.leg.dial, step by step, with the time of each step."""
    wall, cpu = {}, {}
    w0, c0 = time.perf_counter(), time.thread_time()
    leg = CallLeg(account, label=f"dial-{n}")
    w1, c1 = time.perf_counter(), time.thread_time()
    prm = pj.CallOpParam(True)
    _add_headers(prm, HEADERS)
    w2, c2 = time.perf_counter(), time.thread_time()
    leg.makeCall(uri, prm)
    w3, c3 = time.perf_counter(), time.thread_time()
    for part, (wa, wb, ca, cb) in zip(PARTS, ((w0, w1, c0, c1), (w1, w2, c1, c2),
                                              (w2, w3, c2, c3), (w0, w3, c0, c3))):
        wall[part], cpu[part] = wb - wa, cb - ca
    return wall, cpu, leg


def _summary(samples: list[dict]) -> dict:
    out = {}
    for part in PARTS:
        xs = sorted(s[part] for s in samples)
        out[part] = {"p50_ms": round(1e3 * statistics.median(xs), 4),
                     "p90_ms": round(1e3 * xs[int(0.9 * (len(xs) - 1))], 4)}
    return out


async def measure(rounds: int, gap: float, sip_port: int) -> dict:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # swallows the INVITEs
    sink.bind(("127.0.0.1", 0))
    ep = SipEndpoint(listen="127.0.0.1", port=sip_port, pjsip_level=1)
    ep.start()
    ep.start_polling()
    account = pj.Account()
    legs: list[CallLeg] = []
    rows = {"first": ([], []), "second": ([], [])}
    try:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:sipacd@127.0.0.1:{sip_port}"
        cfg.sipConfig.transportId = ep.transport_ids["udp"]
        tcfg = cfg.mediaConfig.transportConfig
        tcfg.boundAddress = tcfg.publicAddress = "127.0.0.1"   # as the engine's account
        account.create(cfg, True)
        uri = f"sip:agent@127.0.0.1:{sink.getsockname()[1]}"
        await asyncio.sleep(0.5)
        for _ in range(rounds):
            await asyncio.sleep(gap)
            for row in ("first", "second"):
                wall, cpu, leg = _one_dial(account, uri, len(legs))
                legs.append(leg)
                rows[row][0].append(wall)
                rows[row][1].append(cpu)
    finally:
        for leg in legs:
            leg.end()
        await ep.pump(0.3)
        CallLeg.disown_all()
        legs.clear()
        account.shutdown()
        del account
        gc.collect()
        ep.destroy()
        sink.close()
    return {"rounds": rounds, "gap_s": gap,
            **{row: {"wall": _summary(w), "cpu": _summary(c)} for row, (w, c) in rows.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=150, help="rounds of two dials each")
    ap.add_argument("--gap", type=float, default=0.02, help="idle s before each round")
    ap.add_argument("--quick", action="store_true", help="15 rounds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds = 15
    if not 1 <= args.rounds <= 200:
        ap.error("--rounds: 1 to 200 (every dial keeps a call slot until pjsip's timeout)")
    out = claim_stdout()
    try:
        res = asyncio.run(measure(args.rounds, args.gap, loadkit.free_port()))
    finally:
        loadkit.release_ports()
    if args.json:
        out.write(json.dumps(res) + "\n")
    else:
        out.write(f"{2 * res['rounds']} dials, {res['rounds']} rounds {1e3 * res['gap_s']:.0f} ms "
                  "apart; ms of the loop thread, p50 / p90\n")
        out.write(f"{'dial':<7}{'part':<11}{'wall':>17}{'cpu':>17}\n")
        for row in ("first", "second"):
            for part in PARTS:
                w, c = res[row]["wall"][part], res[row]["cpu"][part]
                out.write(f"{row:<7}{part:<11}{w['p50_ms']:>8.3f} /{w['p90_ms']:>7.3f}"
                          f"{c['p50_ms']:>9.3f} /{c['p90_ms']:>7.3f}\n")
        f, s = res["first"]["cpu"]["dial"]["p50_ms"], res["second"]["cpu"]["dial"]["p50_ms"]
        out.write(f"first / second dial, CPU p50: {f / s:.2f}x\n" if s else "")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
