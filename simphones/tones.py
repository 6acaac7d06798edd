"""Test tones: write a sine to a WAV file, and measure what a WAV contains.

The UA processes play a known tone into each call and record what they hear;
the tests then check that the *other* side's frequency came through. So this
module is both ends of that check: `write_tone` makes the source, and
`dominant_frequency` / `rms` judge a recording.

Measurement runs once per recording in a test, never per frame, so numpy here
is fine (the engine's real-time tone detection lives in C).
"""

from __future__ import annotations

import os
import struct
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 8000
# Full scale is 32767; -10 dBFS survives G.711 companding without clipping and
# is loud enough that PLC splices and comfort noise don't move the peak.
DEFAULT_AMPLITUDE = 0.3


def write_tone(path: str | os.PathLike, freq_hz: float, seconds: float = 1.0,
               rate: int = SAMPLE_RATE, amplitude: float = DEFAULT_AMPLITUDE) -> Path:
    """Write a mono 16-bit sine WAV. 0 Hz writes silence.

    The length is rounded to a whole number of cycles so that a player in loop
    mode restarts without a phase jump (a jump would smear the spectrum).
    """
    path = Path(path)
    n = int(round(seconds * rate))
    if freq_hz > 0:
        cycles = max(1, round(seconds * freq_hz))
        n_exact = cycles * rate / freq_hz
        # Only trim when it lands on an integer sample count; otherwise keep n.
        if abs(n_exact - round(n_exact)) < 1e-9:
            n = int(round(n_exact))
        t = np.arange(n) / rate
        samples = amplitude * np.sin(2 * np.pi * freq_hz * t)
    else:
        samples = np.zeros(n)
    pcm = np.round(samples * 32767).astype("<i2")
    # Write to a temporary name then rename: a concurrent reader (another UA
    # process sharing the cache) never sees a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)
    return path


def tone_file(freq_hz: float, cache_dir: str | os.PathLike | None = None) -> Path:
    """A cached loopable tone WAV for `freq_hz`, created on first use."""
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "sipacd-tones"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"tone-{freq_hz:g}hz-{SAMPLE_RATE}.wav"
    if not path.exists():
        write_tone(path, freq_hz)
    return path


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Samples as float in [-1, 1] (first channel) and the sample rate."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        width = w.getsampwidth()
        channels = w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * width}-bit")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        data = data[::channels]
    return data, rate


def wav_is_complete(path: str | os.PathLike) -> bool:
    """True once a WAV's RIFF size matches the file. pjmedia's WAV writer
    (a pjsua2 recorder) leaves the sizes at zero until its port is destroyed,
    so this is how to know a recording is final."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or size < 44:
        return False
    return struct.unpack("<I", head[4:8])[0] == size - 8


def _trim(samples: np.ndarray, rate: int, skip_seconds: float) -> np.ndarray:
    skip = int(skip_seconds * rate)
    # Never trim a short recording to nothing: measure what there is.
    return samples[skip:] if len(samples) > 2 * skip else samples


def dominant_frequency(path: str | os.PathLike, skip_seconds: float = 0.2) -> float:
    """The strongest frequency in the WAV, in Hz (0.0 for silence or empty).

    Skips the first `skip_seconds` (jitter-buffer fill, call setup clicks),
    windows with Hann to keep leakage from DC/silence out of the peak, and
    refines the FFT bin by parabolic interpolation so short files still give
    a sub-bin answer.
    """
    samples, rate = read_wav(path)
    samples = _trim(samples, rate, skip_seconds)
    if len(samples) < 16:
        return 0.0
    samples = samples - samples.mean()
    if not np.any(samples):
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    shift = 0.0
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
        denom = a - 2 * b + c
        if denom != 0:
            shift = 0.5 * (a - c) / denom
    return float((k + shift) * rate / len(samples))


def rms(path: str | os.PathLike, skip_seconds: float = 0.0) -> float:
    """Root-mean-square level of the WAV, full scale = 1.0."""
    samples, rate = read_wav(path)
    samples = _trim(samples, rate, skip_seconds)
    if len(samples) == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples ** 2)))


def rms_dbfs(path: str | os.PathLike, skip_seconds: float = 0.0) -> float:
    """RMS in dBFS (a full-scale sine is about -3 dBFS); -inf for silence."""
    level = rms(path, skip_seconds)
    return float(20 * np.log10(level)) if level > 0 else float("-inf")


def duration(path: str | os.PathLike) -> float:
    """Length of the WAV in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def tone_levels(samples: np.ndarray, freq_hz: float, rate: int = SAMPLE_RATE,
                frame_ms: int = 10) -> np.ndarray:
    """The amplitude of `freq_hz` in each `frame_ms` frame (its Fourier
    coefficient; full scale = 1.0), so that other audio in the recording
    (music on hold, the own side's echo) does not count as this tone."""
    step = rate * frame_ms // 1000
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    probe = np.exp(-2j * np.pi * freq_hz * np.arange(step) / rate)
    return np.abs(frames @ probe) * 2 / step


def quiet_runs(levels: np.ndarray, threshold: float) -> np.ndarray:
    """Lengths (in frames) of the runs of consecutive levels under
    `threshold`: each run is one gap."""
    quiet = np.concatenate(([0], (levels < threshold).astype(np.int8), [0]))
    edges = np.diff(quiet)
    return np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0]


def burst_onset(samples: np.ndarray, rate: int, rec_start: float, sent: float,
                search: float, onset: float = 0.3) -> float | None:
    """Seconds from `sent` until a burst (a marker: benchmarks/mouth_to_ear.py)
    shows in a recording that began at `rec_start` (both on the machine's
    monotonic clock): the first sample within `search` s after `sent` over
    `onset` of the loudest one there; None when nothing there is louder
    than 0.05 of full scale.  Meant for recordings that are otherwise
    silent; `search` must stay under the markers' period, or a late one
    is taken for the next."""
    i0 = max(0, int((sent - rec_start) * rate))
    i1 = min(len(samples), int((sent + search - rec_start) * rate))
    if i1 - i0 < rate // 100:
        return None
    env = np.abs(samples[i0:i1])
    peak = float(env.max())
    if peak < 0.05:
        return None
    k = int(np.argmax(env > onset * peak))
    return rec_start + (i0 + k) / rate - sent


def tone_source(freq_hz: float, amplitude: float = DEFAULT_AMPLITUDE):
    """A pjsua2 media source of a continuous sine (start it transmitting to
    a call).  Not a looping WAV player: pjsua2's AudioMediaPlayer returns one
    empty 20 ms frame at every loop (its end-of-file callback), which a
    recording then shows as a gap that no call path caused.  pjmedia's tone
    generator loops its tone without a dip.  Release it before libDestroy."""
    import pjsua2 as pj

    gen = pj.ToneGenerator()
    gen.createToneGenerator(SAMPLE_RATE, 1)
    tone = pj.ToneDesc()
    tone.freq1, tone.freq2 = int(round(freq_hz)), 0
    tone.on_msec, tone.off_msec = 10000, 0
    tone.volume = int(amplitude * 32767)
    tones = pj.ToneDescVector()
    tones.append(tone)
    gen.play(tones, True)
    return gen
