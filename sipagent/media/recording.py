"""Recording a caller into a complete WAV file.

The recorder writes under a hidden temporary name; only a finished file
(header written, trailing quiet trimmed, fsynced) is renamed into place, so a
crash leaves a stray ``.rec-*.tmp.wav`` to clean at start, never a file that
looks complete.  Silence is detected from the conference bridge's signal
level of the caller's port (``getRxLevel``), polled ten times a second:
Python never reads audio frames while recording.
"""
from __future__ import annotations

import asyncio
import os
import uuid
import wave
from pathlib import Path

import numpy as np
import pjsua2 as pj
import structlog

from ivrflows.call import Recording
from sipagent.sip.endpoint import pj_error_text
from sipagent.sip.leg import CallLeg
from sipagent.store.files import write_wav_atomic

log = structlog.get_logger("sipagent.media.recording")

POLL = 0.1
# Bridge signal level (0..255, roughly linear in amplitude) below which the
# caller counts as quiet; background noise on a G.711 line sits well below.
QUIET_LEVEL = 8
# Sample amplitude (16 bit) below which trailing audio is trimmed as quiet.
QUIET_SAMPLE = 600
TMP_GLOB = ".rec-*.tmp.wav"


def clean_stray_recordings(folder: Path) -> int:
    """Remove half-written recordings a crash left behind."""
    removed = 0
    for stray in Path(folder).glob(TMP_GLOB):
        stray.unlink(missing_ok=True)
        removed += 1
    return removed


async def record_caller(leg: CallLeg, folder: Path, *, max_length: float, silence: float,
                        terminators: str) -> Recording:
    folder.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    tmp = folder / f".rec-{name}.tmp.wav"
    final = folder / f"rec-{name}.wav"
    recorder = pj.AudioMediaRecorder()
    recorder.createRecorder(str(tmp))
    caller_audio = leg.audio()
    caller_audio.startTransmit(recorder)
    loop = asyncio.get_running_loop()
    started = loop.time()
    quiet_since = started
    ended_by = "max_length"
    try:
        while loop.time() - started < max_length:
            if leg.is_ended:
                ended_by = "hangup"
                break
            digit = leg.take_digit()
            if digit is not None and digit in terminators:
                ended_by = "terminator"
                break
            level = caller_audio.getRxLevel()
            now = loop.time()
            if level > QUIET_LEVEL:
                quiet_since = now
            elif silence and now - quiet_since >= silence:
                ended_by = "silence"
                break
            await asyncio.sleep(POLL)
    finally:
        if not leg.is_ended:
            try:
                caller_audio.stopTransmit(recorder)
            except Exception as exc:
                log.debug("recorder stopTransmit failed", error=pj_error_text(exc))
        # The WAV header is written when the recorder is destroyed, on a later
        # tick of the bridge: drop it, then give the bridge time to run.
        del recorder
        await _until_complete(tmp)
    try:
        duration = _finish(tmp, final, trim=ended_by in ("silence", "terminator", "hangup"))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("recording finished", path=str(final), seconds=round(duration, 2), ended_by=ended_by)
    return Recording(str(final), duration, ended_by)


async def _until_complete(path: Path, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if _header_matches_size(path):
            return
        await asyncio.sleep(0.05)
    log.warning("recorder header not final in time", path=str(path))


def _header_matches_size(path: Path) -> bool:
    try:
        with wave.open(str(path), "rb") as w:
            expected = 44 + w.getnframes() * w.getsampwidth() * w.getnchannels()
        return w.getnframes() > 0 and abs(path.stat().st_size - expected) <= 2
    except (OSError, EOFError, wave.Error):
        return False


def _finish(tmp: Path, final: Path, *, trim: bool) -> float:
    """Trim trailing quiet (and the terminator's tone), then publish atomically."""
    with wave.open(str(tmp), "rb") as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if trim and len(samples):
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > QUIET_SAMPLE)
        end = 0 if len(loud) == 0 else min(len(samples), loud[-1] + int(0.25 * rate))
        samples = samples[:end]
    write_wav_atomic(final, samples, rate)
    tmp.unlink(missing_ok=True)
    # The rename is durable only once the folder itself is synced.
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(samples) / float(rate)
