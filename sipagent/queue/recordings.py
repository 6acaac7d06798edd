"""Recording agent conversations: which calls, for how long, and the record.

A queue's ``recording`` (percent of its connected calls, 0 = none, 100 =
all) decides when the caller joins, so the consent prompt, if the queue
has one, is heard before anyone answers.  A supervisor or the agent can
also start, pause, resume and stop it on demand (HTTP API).

One recording per *call*, not per agent: a transfer to another agent
closes a segment and opens the next under the same recording id, and the
record lists every segment (sipagent/media/call_recording.py does the
audio, in C).  The record is written, as ``<id>.json`` beside the WAVs,
when the call ends: temporary name, fsync, rename, so a half-written
record never exists.  Its ``call_id`` is the CDR's (EventLog call record),
which is how one finds the other; the event log also gets
RECORDING_START / _PAUSE / _RESUME / _STOP rows under the call id.

Retention: records (and their WAVs) older than ``[recording]
retention_days`` are deleted at start and then hourly.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import structlog

from sipagent.media.call_recording import ConversationRecording, RecordingPhaseError
from sipagent.media.recording import TMP_GLOB
from sipagent.sip.leg import CallLeg
from sipagent.store.files import fsync_dir

log = structlog.get_logger("sipagent.queue.recordings")

RETENTION_SWEEP = 3600.0


class RecordingRefused(RuntimeError):
    """The call cannot do that with its recording now (a 409 to the API)."""


class Recordings:
    def __init__(self, folder: Path, *, retention_days: float,
                 rng: Callable[[], float] = random.random):
        self.folder = Path(folder)
        self.retention_days = retention_days
        self.stats = None       # the queue runtime's QueueStats, set when it takes these
        self._rng = rng
        self.live: dict[str, tuple[ConversationRecording, dict]] = {}   # call id -> (rec, meta)
        self._closing: set[asyncio.Task] = set()    # records being written

    # -- policy -------------------------------------------------------------------------
    def wanted(self, percent: float) -> bool:
        """Whether a call joining a queue recording ``percent`` % is recorded."""
        return percent >= 100 or (percent > 0 and self._rng() * 100 < percent)

    # -- a call's recording ------------------------------------------------------------
    def start(self, call_id: str, queue: str, caller: CallLeg, agent: CallLeg, agent_id: str,
              *, trigger: str) -> str:
        if call_id in self.live:
            raise RecordingRefused(f"call {call_id!r} is already recorded")
        rec_id = uuid.uuid4().hex[:16]
        rec = ConversationRecording(self.folder, rec_id)
        rec.start(caller, agent)
        meta = {"recording_id": rec_id, "call_id": call_id, "queue": queue,
                "agents": [agent_id], "trigger": trigger, "started": time.time()}
        self.live[call_id] = (rec, meta)
        caller.ended.add_done_callback(lambda _f: self.stop_soon(call_id, queue))
        self.stats.recording(queue, time.time(), call_id, agent_id, "RECORDING_START", rec_id,
                             trigger)
        return rec_id

    async def agent_changed(self, call_id: str, agent: CallLeg, agent_id: str,
                            queue: str) -> None:
        """The call reached another agent (a transfer): the next segment."""
        found = self.live.get(call_id)
        if found is None:
            return
        rec, meta = found
        meta["agents"].append(agent_id)
        try:
            await rec.switch_agent(agent)
        except RecordingPhaseError:
            return
        except Exception as exc:
            log.error("recording could not follow the transfer", call_id=call_id,
                      error=str(exc))

    def pause(self, call_id: str, queue: str, agent_id: str, *, resume: bool = False) -> str:
        rec, meta = self._live(call_id)
        try:
            rec.resume() if resume else rec.pause()
        except RecordingPhaseError as exc:
            raise RecordingRefused(str(exc)) from None
        self.stats.recording(queue, time.time(), call_id, agent_id,
                             "RECORDING_RESUME" if resume else "RECORDING_PAUSE",
                             meta["recording_id"])
        return rec.phase

    def stop_soon(self, call_id: str, queue: str, agent_id: str | None = None) -> None:
        """Stop in a task of our own, which shutdown waits for (``settle``)."""
        if call_id not in self.live:
            return
        task = asyncio.get_running_loop().create_task(self.stop(call_id, queue, agent_id))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def settle(self) -> None:
        """Shutdown: wait for the records being written, then stop the rest
        here (stop_all_now), before the library goes."""
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5.0)
        self.stop_all_now()

    async def stop(self, call_id: str, queue: str, agent_id: str | None = None) -> dict | None:
        found = self.live.pop(call_id, None)
        if found is None:
            return None
        rec, meta = found
        record = await rec.stop()
        return await self._finish(rec, meta, record, queue, agent_id)

    async def _finish(self, rec, meta: dict, record, queue: str, agent_id: str | None) -> dict:
        meta.update(ended=time.time(), seconds=round(record.seconds, 3),
                    segments=[asdict(s) for s in record.segments], errors=list(record.errors))
        await asyncio.to_thread(_write_json, self.folder / f"{meta['recording_id']}.json", meta)
        self.stats.recording(queue, time.time(), meta["call_id"],
                             agent_id or meta["agents"][-1], "RECORDING_STOP",
                             meta["recording_id"], seconds=record.seconds)
        return meta

    def stop_all_now(self) -> None:
        """Shutdown, right before libDestroy: every live recording ends here."""
        for call_id, (rec, meta) in list(self.live.items()):
            try:
                record = rec.stop_now()
                meta.update(ended=time.time(), seconds=round(record.seconds, 3),
                            segments=[asdict(s) for s in record.segments],
                            errors=list(record.errors))
                _write_json(self.folder / f"{meta['recording_id']}.json", meta)
            except Exception as exc:
                log.error("recording lost at shutdown", call_id=call_id, error=str(exc))
        self.live.clear()

    def _live(self, call_id: str):
        found = self.live.get(call_id)
        if found is None:
            raise RecordingRefused(f"call {call_id!r} is not being recorded")
        return found

    def state(self, call_id: str) -> str | None:
        found = self.live.get(call_id)
        return None if found is None else found[0].phase

    # -- the records ------------------------------------------------------------------
    def record(self, recording_id: str) -> dict | None:
        path = self.folder / f"{recording_id}.json"
        if not _is_id(recording_id) or not path.is_file():
            return None
        return json.loads(path.read_text())

    def audio_path(self, recording_id: str, segment: int) -> Path | None:
        meta = self.record(recording_id)
        if meta is None or not 1 <= segment <= len(meta["segments"]):
            return None
        path = self.folder / meta["segments"][segment - 1]["file"]
        return path if path.is_file() else None

    def clean_strays(self) -> int:
        """Half-written audio and records a crash left behind."""
        if not self.folder.is_dir():
            return 0
        strays = [*self.folder.glob(TMP_GLOB), *self.folder.glob(".*.json.tmp")]
        for path in strays:
            path.unlink(missing_ok=True)
        return len(strays)

    def sweep(self, now: float | None = None) -> int:
        """Delete records (and their audio) older than the retention; how many."""
        if self.retention_days <= 0 or not self.folder.is_dir():
            return 0
        cutoff = (now or time.time()) - self.retention_days * 86400
        gone = 0
        for path in self.folder.glob("*.json"):
            try:
                meta = json.loads(path.read_text())
                if meta.get("ended", meta.get("started", 0)) >= cutoff:
                    continue
                for seg in meta.get("segments", ()):
                    (self.folder / seg["file"]).unlink(missing_ok=True)
                path.unlink()
                gone += 1
            except (OSError, ValueError, KeyError) as exc:
                log.warning("retention could not read a record", file=path.name,
                            error=str(exc))
        return gone

    async def keep_sweeping(self) -> None:
        while True:
            gone = await asyncio.to_thread(self.sweep)
            if gone:
                log.info("recordings past their retention deleted", count=gone)
            await asyncio.sleep(RETENTION_SWEEP)


def _is_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isalnum() or c in "-_" for c in text)


def _write_json(path: Path, meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")      # clean_strays' pattern
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fsync_dir(path.parent)
