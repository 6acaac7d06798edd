"""What a caller's jitter buffer holds while it waits unbridged, and right
after it is bridged to an agent: the evidence behind the voice-path fix.

    python benchmarks/jbuf_probe.py [--wait 3] [--after 3]

One B2BUA in this process, built from the engine's own pieces (SipEndpoint,
CallLeg, MusicOnHold, bridge), and two simulated phones in their own
processes (tests/sipua.py): a caller playing 440 Hz and an agent answering
with 880 Hz.  The caller is answered and hears music for ``--wait`` s (as in
the queue), then the agent is dialled and the two are bridged (after
``--settle`` s), optionally unbridged and bridged again (``--rebridge``).
Every 0.5 s unbridged and every ``--step`` s bridged, one JSON line with
``Call.getStreamStat().jbuf`` of both legs: the buffer's current size in
frames (10 ms each for G.711), prefetch, burst level, average delay, the
running counts of frames discarded, lost and played empty, and the RTP
packets received so far (``rtcp.rxStat.pkt``).

What it showed (pjsua2 2.12.1, before sipagent/mediaports/rtp_poller.pyx
and drain.pyx): unbridged, the caller's buffer sits full at 50 frames
(500 ms) and discards 100 frames a second; pjmedia empties it on the
stream's first read, but right after the agent's media started no RTP at
all was received on either leg for 500 ms, after which 48-50 frames landed
at once and the legs played 500 ms late, trimmed by progressive discard by
one frame every 200 ms or so.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pjsua2 as pj  # noqa: E402

from portlocks import PortAllocator  # noqa: E402
from simphones.tones import tone_file  # noqa: E402
from sipagent.media.playback import MusicOnHold, bridge  # noqa: E402
from sipagent.sip.endpoint import SipEndpoint  # noqa: E402
from sipagent.sip.leg import CallLeg, dial  # noqa: E402
from sipua import UA  # noqa: E402

# (option, default, help): all in seconds.
OPTIONS = (("wait", 3.0, "the caller waits unbridged"),
           ("settle", 0.0, "between the agent's answer and the bridge"),
           ("after", 3.0, "observed after the bridge"),
           ("step", 0.1, "between samples after the bridge"),
           ("rebridge", 0.0, "then unbridged, and bridged again (0: not)"))
FIELDS = ("size", "prefetch", "burst", "avgDelayMsec", "discard", "lost", "empty")


def jbuf(leg: CallLeg) -> dict:
    """The fields of the leg's receive jitter buffer that show a backlog."""
    st = leg.getStreamStat(0)
    j = st.jbuf
    return {**{f: getattr(j, f) for f in FIELDS}, "rx_pkts": st.rtcp.rxStat.pkt}


class Trunk(pj.Account):
    def __init__(self, loop):
        super().__init__()
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.legs: list[CallLeg] = []

    def onIncomingCall(self, prm):
        leg = CallLeg(self, prm.callId, label="caller")
        self.legs.append(leg)
        self.incoming.put_nowait(leg)


async def probe(args, sip_port: int, caller: UA, agent: UA) -> list[dict]:
    loop = asyncio.get_running_loop()
    ep = SipEndpoint(listen="127.0.0.1", port=sip_port, pjsip_level=1)
    ep.start()
    ep.start_polling()
    rows: list[dict] = []
    trunk = Trunk(loop)
    moh = None
    try:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:probe@127.0.0.1:{sip_port}"
        cfg.sipConfig.transportId = ep.transport_ids["udp"]
        trunk.create(cfg)
        agent.request("auto_answer", user="*", after=0.2, code=200, tone=880)
        caller.request("call", call="c1", to=f"sip:100@127.0.0.1:{sip_port}", tone=440)
        c = await asyncio.wait_for(trunk.incoming.get(), 10)
        c.respond(200)
        await asyncio.wait_for(c.media_ready.wait(), 5)
        moh = MusicOnHold(tone_file(300, Path(tempfile.gettempdir()) / "sipacd-tones"))
        moh.start(c)
        t0 = time.monotonic()

        def row(phase: str, *legs: CallLeg) -> None:
            r = {"t": round(time.monotonic() - t0, 2), "phase": phase}
            for leg in legs:
                r[leg.label] = jbuf(leg)
            rows.append(r)
            print(json.dumps(r), flush=True)

        while time.monotonic() - t0 < args.wait:
            row("waiting, unbridged", c)
            await asyncio.sleep(0.5)
        a = dial(trunk, f"sip:agent@127.0.0.1:{agent.port}", label="agent")
        trunk.legs.append(a)
        await asyncio.wait_for(a.confirmed, 10)
        await asyncio.wait_for(a.media_ready.wait(), 5)
        row("agent answered", c, a)
        ts = time.monotonic()
        while time.monotonic() - ts < args.settle:
            await asyncio.sleep(args.step)
            row("agent answered", c, a)
        moh.stop(c)
        bridge(c, a)
        tb = time.monotonic()
        row("bridged", c, a)
        while time.monotonic() - tb < args.after:
            await asyncio.sleep(args.step)
            row("bridged", c, a)
        if args.rebridge:
            # Unbridged again (the caller back on hold), then bridged again:
            # does the stale backlog play this time?
            c.audio().stopTransmit(a.audio())
            a.audio().stopTransmit(c.audio())
            moh.start(c)
            tu = time.monotonic()
            while time.monotonic() - tu < args.rebridge:
                await asyncio.sleep(0.5)
                row("unbridged again", c, a)
            moh.stop(c)
            bridge(c, a)
            tb = time.monotonic()
            row("bridged again", c, a)
            while time.monotonic() - tb < 1.0:
                await asyncio.sleep(args.step)
                row("bridged again", c, a)
        for leg in trunk.legs:
            leg.end()
        await ep.pump(0.5)
    finally:
        if moh is not None:
            moh.release()
        CallLeg.disown_all()
        trunk.legs.clear()
        trunk.shutdown()
        del trunk
        gc.collect()
        ep.destroy()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default, what in OPTIONS:
        ap.add_argument(f"--{name}", type=float, default=default, help=what)
    args = ap.parse_args(argv)
    ports = PortAllocator()
    work = Path(tempfile.mkdtemp(prefix="sipacd-jbuf-"))
    try:
        with UA(ports.get(), log_dir=work, name="caller") as caller, \
             UA(ports.get(), log_dir=work, name="agent") as agent:
            asyncio.run(probe(args, ports.get(), caller, agent))
    finally:
        ports.release_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
