"""The load benchmark's audio check: what each recorded leg heard once
bridged (benchmarks/load.py runs it on every recording of the window).

The fleet plays a 440 Hz tone into every caller and an 880 Hz tone into
every agent, and records what each side hears; a leg is judged here by the
far end's frequency alone, frame by frame.
"""
from __future__ import annotations

import math

import numpy as np

MIN_BRIDGED = 1.0    # s: shorter bridged legs are not judged


def pct(values, q, method: str = "linear") -> float:
    return float(np.percentile(values, q, method=method)) if len(values) else math.nan


def audio_check(rec: dict) -> dict:
    """Did the recorded side hear the far end's tone, at once and whole, once
    bridged?

    Judged per 10 ms frame by the level of the far end's own frequency (its
    Fourier coefficient), so music on hold still playing is not mistaken for
    the far end.  The reference is that level's median over the bridged
    part.  Two figures:

    * startup: the bridge (the agent's answer, as the fleet saw it) -> the
      first frame at half the reference: how late the first word is heard;
    * gaps: from that first frame to 0.2 s before the hang-up (the far end's
      BYE stops its audio first), runs of frames under a tenth of the
      reference.  On 127.0.0.1 nothing is lost on the wire, so every gap is
      a frame our media path dropped or starved: any gap fails the leg.

    A leg is judged when its bridged part lasted at least MIN_BRIDGED s.
    """
    from simphones.tones import quiet_runs, read_wav, tone_levels
    if rec.get("answered") is None or rec.get("start") is None or rec.get("end") is None:
        return {"ok": None, "why": "never bridged (abandoned)"}
    bridged = rec["answered"] - rec["start"]
    ended = rec["end"] - rec["start"] - 0.2
    if rec["end"] - rec["answered"] < MIN_BRIDGED:
        return {"ok": None, "why": f"bridged part under {MIN_BRIDGED:g} s"}
    try:
        samples, rate = read_wav(rec["path"])
    except Exception as exc:
        return {"ok": False, "why": f"unreadable: {exc}"}
    tone = tone_levels(samples, rec["expect_hz"], rate)
    first = int(max(0.0, bridged) * 100)
    last = min(int(ended * 100), len(tone))
    if last - first < 50:
        return {"ok": False, "why": "recording shorter than the call"}
    ref = float(np.median(tone[first:last]))
    heard = np.nonzero(tone[first:last] > 0.5 * ref)[0] if ref > 1e-4 else []
    if not len(heard):
        return {"ok": False, "why": "far end never heard", "startup_ms": math.inf}
    startup_ms = 10.0 * float(heard[0])
    lo = first + int(heard[0])
    lengths = quiet_runs(tone[lo:last], 0.1 * ref)
    step = rate // 100
    seg = samples[lo * step:last * step]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    freq = float(np.fft.rfftfreq(len(seg), 1.0 / rate)[spec.argmax()])
    moh = None
    if rec["kind"] == "caller" and bridged > 1.0:
        hold = samples[int(0.3 * rate):int((bridged - 0.2) * rate)].astype(np.float64)
        moh = float(np.sqrt((hold ** 2).mean())) if len(hold) else 0.0
    seconds = (last - lo) / 100
    ok = (abs(freq - rec["expect_hz"]) < 15 and not len(lengths)
          and (moh is None or moh > 1e-3))
    return {"ok": bool(ok), "freq": freq, "gaps": int(len(lengths)),
            "gap_frames": int(lengths.sum()), "gaps_per_s": len(lengths) / seconds,
            "longest_gap_ms": 10 * int(lengths.max(initial=0)), "moh_rms": moh,
            "startup_ms": startup_ms, "seconds": seconds}


def audio_summary(audio: list[dict]) -> dict:
    """Every bridged leg judged, and the figures per direction: "caller"
    legs hear the agent, "agent" legs hear the caller."""
    judged = [a for a in audio if a["ok"] is not None]
    out = {"recorded": len(audio), "judged": len(judged),
           "intact": sum(1 for a in judged if a["ok"]),
           "with_gaps": sum(1 for a in judged if a.get("gaps")),
           "unheard": sum(1 for a in judged if a.get("why") == "far end never heard"),
           "gaps_per_s_median": None, "gap_legs_gaps_per_s_median": None,
           "longest_gap_ms": max((a.get("longest_gap_ms", 0) for a in judged), default=None),
           "startup_ms": {}}
    rates = [a["gaps_per_s"] for a in judged if "gaps_per_s" in a]
    if rates:
        out["gaps_per_s_median"] = float(np.median(rates))
        gappy = [r for r in rates if r > 0]
        out["gap_legs_gaps_per_s_median"] = float(np.median(gappy)) if gappy else 0.0
    for kind, hears in (("caller", "agent"), ("agent", "caller")):
        s = [a["startup_ms"] for a in judged if a["kind"] == kind and "startup_ms" in a]
        # "nearest": a never-heard leg (inf) must count, not turn the figure into NaN.
        out["startup_ms"][f"{hears}->{kind}"] = {
            "n": len(s), "p50": pct(s, 50, "nearest"), "p95": pct(s, 95, "nearest"),
            "max": max(s, default=None)}
    out["details"] = audio
    return out
