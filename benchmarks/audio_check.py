"""Did a recorded leg of the SIP load benchmark hear the far end, whole?

The fleet (``benchmarks/fleet.py``) records a few answered callers and
their agents; each side plays its own tone (440 Hz callers, 880 Hz agents),
so a recording should hold music on hold, then the other side's tone.
"""
from __future__ import annotations

import math

import numpy as np


def audio_check(rec: dict) -> dict:
    """Did the recorded side hear the far end's tone, whole, once bridged?

    Two things: how long after the agent's answer the far end's tone is
    first heard (the bridge is made when the agent leg's media is up, then a
    jitter buffer fills), and, from 0.3 s after that to 0.2 s before the
    hang-up, the gaps (10 ms frames under a tenth of the median level).
    pjsua loses short slices between processes at any load (PJSIP notes), so
    a gap of a frame or two a second is the baseline, not a fault.
    """
    from simphones.tones import read_wav
    if rec.get("answered") is None or rec.get("start") is None or rec.get("end") is None:
        return {"ok": None, "why": "never bridged (abandoned)"}
    try:
        samples, rate = read_wav(rec["path"])
    except Exception as exc:
        return {"ok": False, "why": f"unreadable: {exc}"}
    bridged = rec["answered"] - rec["start"]
    ended = rec["end"] - rec["start"] - 0.2
    step = rate // 100
    frames = samples[: len(samples) // step * step].reshape(-1, step).astype(np.float64)
    level = np.sqrt((frames ** 2).mean(axis=1))
    first = int(max(0.0, bridged) * 100)
    last = int(max(0.0, ended) * 100)
    # The far end takes up to about 1 s after the bridge to be heard (music
    # still in the jitter buffer, then the agent's first packets), and the
    # reference level below is taken from the last 0.5 s: a leg bridged less
    # than 2 s before its end (the run's shutdown cuts many) has no reliable
    # reference.  Seen: a leg bridged 1.2 s before the end measured as music.
    if last - first < 200:
        return {"ok": None, "why": "bridged part under 2 s"}
    # The far end's tone in each frame (its Fourier coefficient), so that
    # music on hold still playing is not mistaken for the agent.
    n = np.arange(step)
    probe = np.exp(-2j * np.pi * rec["expect_hz"] * n / rate)
    tone = np.abs(frames @ probe) * 2 / step
    ref = float(np.median(tone[last - 50:last]))  # the far end, surely bridged by now
    heard = np.nonzero(tone[first:last] > 0.5 * ref)[0]
    if not len(heard):
        return {"ok": False, "why": "far end never heard", "startup_ms": math.inf}
    startup_ms = 10.0 * heard[0]
    lo = first + heard[0] + 30
    if last - lo < 50:
        return {"ok": None, "why": "under 0.5 s heard", "startup_ms": startup_ms}
    seg = samples[lo * step:last * step]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    freq = float(np.fft.rfftfreq(len(seg), 1.0 / rate)[spec.argmax()])
    silent = level[lo:last] < 0.1 * float(np.median(level[lo:last]))
    runs, run = [], 0
    for quiet in silent:
        if quiet:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    moh = None
    if rec["kind"] == "caller" and bridged > 1.0:
        hold = samples[int(0.3 * rate):int((bridged - 0.2) * rate)].astype(np.float64)
        moh = float(np.sqrt((hold ** 2).mean())) if len(hold) else 0.0
    seconds = len(seg) / rate
    longest = 10 * max(runs, default=0)
    ok = (abs(freq - rec["expect_hz"]) < 15 and float(silent.mean()) < 0.05 and longest <= 60
          and (moh is None or moh > 1e-3))
    return {"ok": bool(ok), "freq": freq, "silent_share": float(silent.mean()),
            "gaps_per_s": len(runs) / seconds, "longest_gap_ms": longest, "moh_rms": moh,
            "startup_ms": startup_ms, "seconds": seconds}
