"""Hearing a fax machine call (CNG, 1100 Hz): sipagent/mediaports/cng.pyx.

Most tests run spandsp's detector on samples in memory (`feed()`), which is
what the bridge thread does with a call's audio 20 ms at a time.  The last
ones run the port on a real pjsua conference bridge, in a process of its
own (pjsua2 allows one library per process), fed by pjsua's tone generator.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import select
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# Not importorskip: a missing build must fail the suite, not hide it.
from sipagent.mediaports.cng import FaxToneListener, cng_samples  # noqa: E402

RATE = 8000
# spandsp's CNG (-11 dBm0) peaks at 6433; 0 dBm0 is this peak amplitude.
DBM0 = 22_900


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def cadence(freq: float, on: float, off: float, seconds: float, dbm0: float = -11) -> np.ndarray:
    """A tone switched on for `on` s and off for `off` s, starting on."""
    t = _t(seconds)
    gate = (t % (on + off)) < on
    return _pcm(DBM0 * 10 ** (dbm0 / 20) * np.sin(2 * np.pi * freq * t) * gate)


def heard_after(samples) -> float | None:
    with FaxToneListener() as listener:
        listener.feed(samples)
        return listener.heard_after


# --- a fax machine calling --------------------------------------------------------


def test_spandsp_cng_is_heard_at_the_end_of_the_first_burst():
    samples = cng_samples(8.0)
    assert len(samples) == 8 * RATE * 2
    # The burst is 0.5 s; spandsp reports it 415 ms in, we count it when it
    # stops (a held tone is not CNG), at the end of that 20 ms frame.
    assert heard_after(samples) == pytest.approx(0.52, abs=0.02)
    # No earlier than the burst is whole: 0.45 s of it is not yet CNG.
    with FaxToneListener() as listener:
        assert not listener.feed(samples[: int(0.45 * RATE) * 2])
        assert listener.heard_after is None
        assert listener.feed(samples[int(0.45 * RATE) * 2:])
        assert listener.heard_after == pytest.approx(0.52, abs=0.02)


def test_joining_mid_burst_hears_the_next_one():
    # The IVR starts listening 0.2 s into a burst: the 0.3 s left is too
    # short, the next burst (3.5 s after the first began) counts.
    samples = cng_samples(8.0)[int(0.2 * RATE) * 2:]
    assert heard_after(samples) == pytest.approx(3.3 + 0.52, abs=0.02)


@pytest.mark.parametrize("freq", [1062, 1100, 1138])     # T.30: 1100 ±38 Hz
@pytest.mark.parametrize("on", [0.425, 0.5, 0.575])      # T.30: 0.5 s ±15 %
def test_cng_within_t30_tolerances_is_heard(freq, on):
    assert heard_after(cadence(freq, on, 3.0, 4.0)) == pytest.approx(on + 0.02, abs=0.03)


@pytest.mark.parametrize("dbm0", [-11, -30, -40])
def test_quiet_cng_is_heard(dbm0):
    assert heard_after(cadence(1100, 0.5, 3.0, 4.0, dbm0)) == pytest.approx(0.52, abs=0.02)


def test_cng_over_line_noise_is_heard():
    # 20 dB SNR still works (15 dB does not: noise fills spandsp's notch).
    cng = np.frombuffer(cng_samples(4.0), dtype=np.int16).astype(float)
    rms = np.sqrt(np.mean(cng[: RATE // 2] ** 2))
    noise = np.random.default_rng(7).normal(0, rms / 10, len(cng))
    assert heard_after(_pcm(cng + noise)) == pytest.approx(0.52, abs=0.02)


def test_a_held_1100hz_tone_then_real_cng_is_heard_at_the_cng():
    # spandsp reports a continuous 1100 Hz tone as CNG after 0.42 s and
    # never takes it back; the listener does not count it, and it does not
    # stop the listener from hearing the fax machine afterwards.
    held = cadence(1100, 5.0, 0.0, 5.0)
    gap = np.zeros(RATE, dtype=np.int16)
    cng = np.frombuffer(cng_samples(4.0), dtype=np.int16)
    assert heard_after(np.concatenate([held, gap, cng])) == pytest.approx(6.52, abs=0.02)


# --- what is not a fax machine ---------------------------------------------------


def _speech_like(seconds: float) -> np.ndarray:
    """A voiced vowel at 110 Hz pitch: its 10th harmonic is exactly
    1100 Hz, among all the others, with a 4 Hz syllable rhythm."""
    t = _t(seconds)
    f0 = 110 * (1 + 0.03 * np.sin(2 * np.pi * 0.7 * t))        # intonation
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 31))   # harmonics to 3.3 kHz
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return _pcm(8000 * voice * syllables)


NOT_CNG = {
    "440+880 Hz": lambda: _pcm(4000 * (np.sin(2 * np.pi * 440 * _t(5)) + np.sin(2 * np.pi * 880 * _t(5)))),
    "white noise": lambda: _pcm(np.random.default_rng(1).normal(0, 3000, 5 * RATE)),
    "speech-like vowel": lambda: _speech_like(5.0),
    "silence": lambda: np.zeros(5 * RATE, dtype=np.int16),
    "continuous 1100 Hz": lambda: cadence(1100, 5.0, 0.0, 5.0),
    "1100 Hz, 1 s on / 3 s off": lambda: cadence(1100, 1.0, 3.0, 8.0),
    "1100 Hz beeps of 0.3 s": lambda: cadence(1100, 0.3, 0.5, 5.0),
    "1100 Hz + 440 Hz, same level": lambda: _pcm(cadence(1100, 0.5, 3.0, 8.0).astype(float)
                                                 + 6433 * np.sin(2 * np.pi * 440 * _t(8))),
    "1200 Hz cadence": lambda: cadence(1200, 0.5, 3.0, 8.0),
    "V.8 calling tone (1300 Hz)": lambda: cadence(1300, 0.6, 2.0, 8.0),
    "CED / ANS (2100 Hz)": lambda: cadence(2100, 3.3, 0.0, 5.0),
    "CNG at -50 dBm0": lambda: cadence(1100, 0.5, 3.0, 8.0, -50),
}


@pytest.mark.parametrize("name", NOT_CNG)
def test_not_cng_is_not_heard(name):
    assert heard_after(NOT_CNG[name]()) is None


# --- the Python side ----------------------------------------------------------------


def test_feed_takes_bytes_arrays_and_numpy_alike():
    cng = cng_samples(1.0)
    for samples in (cng, bytearray(cng), array.array("h", cng), np.frombuffer(cng, dtype=np.int16)):
        with FaxToneListener() as listener:
            assert listener.feed(samples) is True
            assert listener.heard is True
    with FaxToneListener() as listener:
        with pytest.raises(ValueError, match="odd number of bytes"):
            listener.feed(b"\x00\x01\x02")
        with pytest.raises((ValueError, TypeError)):
            listener.feed(np.zeros(10, dtype=np.float32))
        assert listener.feed(b"") is False


def test_the_eventfd_and_wait_report_cng_once_heard():
    async def scenario():
        with FaxToneListener() as listener:
            fd = listener.fileno()
            assert select.select([fd], [], [], 0)[0] == []
            assert await listener.wait(timeout=0.05) is False
            listener.feed(cng_samples(1.0))
            assert select.select([fd], [], [], 0)[0] == [fd]
            assert await listener.wait(timeout=0.05) is True
            assert await listener.wait() is True       # heard stays heard
            # wait() removed its reader: closing now is safe.
    asyncio.run(scenario())


def test_closed_listener():
    listener = FaxToneListener()
    fd = listener.fileno()
    with listener:
        pass
    assert not listener.heard and listener.heard_after is None and listener.slot is None
    with pytest.raises(OSError):
        os.fstat(fd)
    for call in (listener.fileno, lambda: listener.feed(b""), lambda: listener.attach(0)):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    listener.close()
    listener.detach()


# --- on pjsua's conference bridge ---------------------------------------------------

# One pjsua library, three tone generators standing in for callers' audio
# (the bridge cannot tell a call's slot from theirs).  Prints one JSON line.
BRIDGE_SCRIPT = textwrap.dedent("""
    import asyncio, json, threading
    import pjsua2 as pj
    from sipagent.mediaports.cng import FaxToneListener

    def tone_generator(freq, on_ms, off_ms):
        gen = pj.ToneGenerator()
        gen.createToneGenerator(8000, 1)
        desc = pj.ToneDesc()
        desc.freq1, desc.freq2, desc.on_msec, desc.off_msec, desc.volume = freq, 0, on_ms, off_ms, 0
        descs = pj.ToneDescVector()
        descs.append(desc)
        return gen, descs

    async def main():
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.logConfig.level = cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.sndAutoCloseTime = -1
        ep.libInit(cfg)
        ep.libStart()
        ep.audDevManager().setNullDev()     # clocks the bridge
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        async def poll():
            while not stop.is_set():
                ep.libHandleEvents(0)
                await asyncio.sleep(0.005)

        poller = asyncio.ensure_future(poll())
        callers = {"cng": tone_generator(1100, 500, 3000), "voice": tone_generator(440, 800, 200),
                   "held": tone_generator(1100, 10000, 0)}
        out = {}
        listeners = {name: FaxToneListener() for name in callers}
        for name in callers:
            slot = listeners[name].attach(callers[name][0].getPortId())
            out[name] = {"slot": slot,
                         "port_listeners": list(pj.AudioMedia.getPortInfoFromId(slot).listeners)}
        for name in callers:
            callers[name][0].play(callers[name][1], True)
        t0 = loop.time()

        async def hear(name):
            heard = await listeners[name].wait(timeout=3.0)
            out[name].update(heard=heard, wall=round(loop.time() - t0, 3),
                             heard_after=listeners[name].heard_after)

        await asyncio.gather(*(hear(name) for name in callers))
        errors = []
        thread = threading.Thread(target=lambda: errors.append(
            _raises(lambda: listeners["cng"].detach())))
        thread.start()
        thread.join()
        out["detach_from_other_thread"] = errors[0]
        for name, listener in listeners.items():
            listener.detach()
            out[name]["slot_after_detach"] = listener.slot
            out[name]["feed_after_detach"] = listener.feed(bytes(320))
            listener.close()
        stop.set()
        await poller
        for name in callers:
            callers[name][0].stop()
        callers.clear()                     # nothing pjsua2 may outlive the library
        ep.libDestroy()
        print(json.dumps(out), flush=True)

    def _raises(fn):
        try:
            fn()
        except RuntimeError as e:
            return str(e)
        return None

    asyncio.run(main())
""")


@pytest.mark.sip
@pytest.mark.slow
def test_listener_on_the_conference_bridge():
    proc = subprocess.run([sys.executable, "-c", BRIDGE_SCRIPT], capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cng, voice, held = out["cng"], out["voice"], out["held"]
    # Heard from the bridge thread, through the eventfd, within the burst.
    assert cng["heard"] is True, out
    assert cng["heard_after"] == pytest.approx(0.52, abs=0.06), out
    assert cng["wall"] < 1.0, out
    assert voice["heard"] is False and held["heard"] is False, out
    for result in (cng, voice, held):
        assert result["port_listeners"] == []        # it listens, never transmits
        assert result["slot_after_detach"] is None
    assert voice["feed_after_detach"] is False and cng["feed_after_detach"] is True
    assert out["detach_from_other_thread"] == "FaxToneListener.detach must run in the pjsua2 thread"
