"""A B2BUA process that records one bridged conversation, for
tests/test_stereo_recording.py (pjsua2 is never run inside pytest).

    python tests/recording_probe.py --sip-port P --folder DIR --agent URI \
        [--agent2 URI --switch-at S] [--pause-at A --pause-for B] --stop-at T

Built from the engine's own pieces (SipEndpoint, CallLeg, bridge,
ConversationRecording).  It answers the first call (the caller phone),
dials the agent, bridges the two and starts recording; on the recording's
own clock it pauses and resumes, switches to the second agent (dialled at
the start, bridged at the switch: a transfer) and stops.  JSON lines on
stdout: ``ready``, ``recording`` (with the recording's temporary file),
``files`` (the folder right before the stop), ``record`` (what stop()
returned), ``done``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pjsua2 as pj  # noqa: E402

# The B2BUA's account that hands over incoming calls as CallLegs.
from jbuf_probe import Trunk  # noqa: E402
from simphones.event_stdout import claim_stdout  # noqa: E402
from sipagent.logs import configure_logging  # noqa: E402
from sipagent.media.call_recording import ConversationRecording  # noqa: E402
from sipagent.media.playback import bridge  # noqa: E402
from sipagent.sip.endpoint import SipEndpoint  # noqa: E402
from sipagent.sip.leg import CallLeg, dial  # noqa: E402

OUT = None


def emit(**ev) -> None:
    OUT.write(json.dumps(ev) + "\n")


async def answered(trunk: Trunk, uri: str, label: str) -> CallLeg:
    leg = dial(trunk, uri, label=label)
    trunk.legs.append(leg)
    await asyncio.wait_for(leg.confirmed, 10)
    await asyncio.wait_for(leg.media_ready.wait(), 5)
    return leg


async def until(t0: float, at: float) -> None:
    await asyncio.sleep(max(0.0, t0 + at - asyncio.get_running_loop().time()))


async def conversation(args, trunk: Trunk) -> None:
    caller = await asyncio.wait_for(trunk.incoming.get(), 15)
    caller.respond(200)
    await asyncio.wait_for(caller.media_ready.wait(), 5)
    agent = await answered(trunk, args.agent, "agent1")
    agent2 = await answered(trunk, args.agent2, "agent2") if args.agent2 else None
    bridge(caller, agent)
    rec = ConversationRecording(Path(args.folder), args.recording_id)
    loop = asyncio.get_running_loop()
    rec.start(caller, agent)
    t0 = loop.time()
    emit(ev="recording", folder=args.folder)
    steps = []
    if args.pause_for:
        steps += [(args.pause_at, "pause"), (args.pause_at + args.pause_for, "resume")]
    if agent2 is not None:
        steps.append((args.switch_at, "switch"))
    for at, what in sorted(steps):
        await until(t0, at)
        if what == "pause":
            rec.pause()
        elif what == "resume":
            rec.resume()
        else:
            # The transfer: the caller now talks to agent2, agent1 leaves.
            caller.audio().stopTransmit(agent.audio())
            agent.audio().stopTransmit(caller.audio())
            bridge(caller, agent2)
            await rec.switch_agent(agent2)
            agent.end()
        emit(ev=what, at=loop.time() - t0)
    await until(t0, args.stop_at)
    emit(ev="files", names=sorted(p.name for p in Path(args.folder).iterdir()))
    record = await rec.stop()
    emit(ev="record", **dataclasses.asdict(record), seconds=record.seconds)


async def main_async(args) -> None:
    ep = SipEndpoint(listen="127.0.0.1", port=args.sip_port, pjsip_level=1)
    ep.start()
    ep.start_polling()
    trunk = Trunk(asyncio.get_running_loop())
    try:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:probe@127.0.0.1:{args.sip_port}"
        cfg.sipConfig.transportId = ep.transport_ids["udp"]
        trunk.create(cfg)
        emit(ev="ready")
        await conversation(args, trunk)
        for leg in trunk.legs:
            leg.end()
        await ep.pump(0.5)
    finally:
        CallLeg.disown_all()
        trunk.legs.clear()
        trunk.shutdown()
        del trunk           # ep.destroy() collects it before libDestroy
        ep.destroy()
    emit(ev="done")


def main(argv=None) -> int:
    global OUT
    OUT = claim_stdout()
    configure_logging("info", "json")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--recording-id", default="conv1")
    ap.add_argument("--agent", required=True)
    ap.add_argument("--agent2")
    ap.add_argument("--switch-at", type=float, default=3.0)
    ap.add_argument("--pause-at", type=float, default=1.0)
    ap.add_argument("--pause-for", type=float, default=0.0)
    ap.add_argument("--stop-at", type=float, default=3.0)
    asyncio.run(main_async(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
