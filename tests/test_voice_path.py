"""The voice path of a bridged call, over real SIP/RTP on 127.0.0.1: each
side hears the other at once when the agent answers, and without a gap.

Three callers queue (hearing music) and are answered by agents about a
second apart, so each bridge happens while other calls are live.  Each
phone plays its own tone (callers 440 Hz, agents 880 Hz) and records what
it hears; the bridge time is the agent's CONFIRMED, stamped by its phone on
the machine's monotonic clock, as is the start of each recording.  Per leg
and direction:

* the far end's tone reaches half its level within FIRST_AUDIO_S of the
  bridge (on loopback the floor is a packet plus a small jitter buffer);
* from then to the hang-up, no 10 ms frame drops under a tenth of it.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from engine_proc import Engine, base_config
from simphones.tones import quiet_runs, read_wav, tone_levels
from sipua import UA

pytestmark = pytest.mark.sip

CALLER_HZ, AGENT_HZ = 440.0, 880.0
CALLS = 3
RING_S = 1.0          # each agent answers after this: the caller waits with music
TALK_S = 3.0          # bridged part the test listens to
FIRST_AUDIO_S = 0.2
FLOW = '''"""Answer and queue at once: the queue wait is the only wait."""


async def flow(call):
    await call.answer()
    await call.enqueue("support")
'''


def heard(path, freq_hz: float, rec_start: float, bridged: float, until: float) -> dict:
    """What a recording shows of the far end's tone from the bridge to
    `until` (monotonic times; the recording began at `rec_start`)."""
    samples, rate = read_wav(path)
    levels = tone_levels(samples, freq_hz, rate)
    first, last = int((bridged - rec_start) * 100), int((until - rec_start) * 100)
    part = levels[max(first, 0):last]
    assert len(part) > 100, f"{path}: {len(levels) / 100:.2f} s recorded, bridged part missing"
    ref = float(np.median(part))
    loud = np.nonzero(part > 0.5 * ref)[0]
    assert ref > 0.01 and len(loud), f"{path}: the far end ({freq_hz:g} Hz) was never heard"
    gaps = quiet_runs(part[loud[0]:], 0.1 * ref)
    return {"first_ms": 10 * int(loud[0]), "gaps": len(gaps),
            "gap_ms": [10 * int(n) for n in gaps]}


def test_each_side_hears_the_other_at_once_and_without_gaps(ports, workdir, prompts_dir):
    (workdir / "flows").mkdir()
    (workdir / "flows" / "voice.py").write_text(FLOW)
    with UA(ports(), log_dir=workdir, name="agents") as agents, \
         UA(ports(), log_dir=workdir, name="callers") as callers:
        cfg = base_config(
            ports, workdir, prompts_dir,
            flows={"dir": str(workdir / "flows"), "prompts_dir": str(prompts_dir)},
            routes=[{"number": "100", "flow": "voice", "queue": "support"}],
            agents={f"a{i}": {"uri": agents.uri(f"a{i}"), "queues": ["support"]}
                    for i in range(CALLS)})
        with Engine(workdir, cfg):
            agents.request("auto_answer", user="*", after=RING_S, code=200, tone=AGENT_HZ,
                           record=str(workdir / "agent-{call}.wav"))
            for i in range(CALLS):
                callers.request("call", call=f"c{i}", to=f"sip:100@127.0.0.1:{cfg['sip']['port']}",
                                tone=CALLER_HZ, record=str(workdir / f"caller-c{i}.wav"))
                time.sleep(0.7)
            legs = []
            for i in range(CALLS):
                caller_media = callers.wait_event({"ev": "media", "call": f"c{i}"})
                incoming = agents.wait_event({"ev": "incoming"}, timeout=20)
                name = incoming["call"]
                agent_media = agents.wait_event({"ev": "media", "call": name})
                bridged = agents.wait_state(name, "CONFIRMED")["at"]
                legs.append((f"c{i}", name, caller_media["at"], agent_media["at"], bridged))
            time.sleep(max(0.0, legs[-1][4] + TALK_S - time.monotonic()))
            until = time.monotonic() - 0.2
            for c, *_ in legs:
                callers.request("hangup", call=c)
            for _ in legs:
                callers.wait_event({"ev": "recorded"}, timeout=10)
                agents.wait_event({"ev": "recorded"}, timeout=10)

    results = {}
    for c, a, caller_start, agent_start, bridged in legs:
        results[f"{c}: agent->caller"] = heard(workdir / f"caller-{c}.wav", AGENT_HZ,
                                               caller_start, bridged, until)
        results[f"{c}: caller->agent"] = heard(workdir / f"agent-{a}.wav", CALLER_HZ,
                                               agent_start, bridged, until)
    print(results)
    late = {k: r["first_ms"] for k, r in results.items() if r["first_ms"] > 1000 * FIRST_AUDIO_S}
    gappy = {k: r["gap_ms"] for k, r in results.items() if r["gaps"]}
    assert not late, f"far end first heard later than {FIRST_AUDIO_S * 1000:.0f} ms " \
                     f"after the bridge (ms): {late}; all: {results}"
    assert not gappy, f"gaps in the bridged audio (ms each): {gappy}; all: {results}"
