"""Files beside a store's index, put in place in one step.

A reader (the index, a player, the HTTP API) must never see half a file,
so every file is written under a hidden temporary name (``.*.tmp.<ext>``,
what the stores' ``clean_strays`` sweeps), fsynced, renamed, and its folder
fsynced so the rename itself survives a power cut.  :func:`publish` serves
the voicemail and fax stores alike; the WAV helpers serve voicemail
(messages and greetings: 8 kHz mono 16-bit), prompts and recordings.
"""
from __future__ import annotations

import errno
import io
import os
import uuid
import wave
from pathlib import Path

import numpy as np

RATE = 8000
_COPY_CHUNK = 1 << 16


def wav_seconds(path: Path) -> float:
    """Length of a complete PCM WAV; ValueError for anything else (a file
    whose header disagrees with its size was not finished)."""
    try:
        with wave.open(str(path), "rb") as w:
            frames, rate, width, chans = (w.getnframes(), w.getframerate(), w.getsampwidth(),
                                          w.getnchannels())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file: {path.name} ({exc})") from None
    if path.stat().st_size < 44 + frames * width * chans:
        raise ValueError(f"incomplete WAV file: {path.name}")
    return frames / float(rate)


def read_wav_8k(audio: Path | bytes) -> np.ndarray:
    """Any 8/16-bit PCM WAV as 8 kHz mono int16 samples."""
    try:
        with wave.open(io.BytesIO(audio) if isinstance(audio, bytes) else str(audio)) as w:
            rate, width, chans = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file ({exc})") from None
    if width not in (1, 2) or not 1 <= chans <= 2:
        raise ValueError("a greeting must be 8 or 16-bit PCM, mono or stereo")
    data = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) * 256 if width == 1 \
        else np.frombuffer(raw, "<i2")
    mono = data.reshape(-1, chans).mean(axis=1)
    if rate != RATE and len(mono):
        n = int(len(mono) * RATE / rate)
        mono = np.interp(np.arange(n) * (rate / RATE), np.arange(len(mono)), mono)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


def publish(src: Path, final: Path) -> None:
    """Put a complete file at ``final`` in one step, durable once returned."""
    fsync_file(src)
    try:
        os.rename(src, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = final.with_name(f".{final.stem}.tmp{final.suffix}")
        try:
            copy_into(src, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        src.unlink(missing_ok=True)
    fsync_dir(final.parent)


def copy_into(src: Path, tmp: Path) -> None:
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        while chunk := fin.read(_COPY_CHUNK):
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_wav_atomic(target: Path, samples: np.ndarray, rate: int = RATE) -> None:
    """Mono 16-bit ``samples`` (8 kHz unless said) to ``target``, never half written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}-{uuid.uuid4().hex}.tmp.wav")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(samples.astype("<i2").tobytes())
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
