"""Recording an agent conversation: stereo WAV segments, caller left, agent right.

A `ConversationRecording` is one recording id.  It records the caller leg
and the current agent leg through a C `StereoRecorder` on the conference
bridge (sipagent/mediaports/stereo_recorder.pyx: no Python per frame, the
two channels aligned on the bridge's clock).  A transfer to another agent
(`switch_agent`) ends the current segment file and starts the next, under
the same id.  Pausing keeps the timeline: a paused span is silence in the
file, and its start and end (seconds into its segment) are in the record.

Files: a segment is written under ``.rec-<id>-<n>.tmp.wav`` in the folder
(the name `clean_stray_recordings` sweeps at start) and only renamed to
``<id>-<n>.wav`` once complete (header, fsync, then the folder's fsync), so
a crash leaves no file under a final name.  pjsua2 is touched only in the
loop thread; the file's last writes and fsync run in a worker thread, after
the taps are off the bridge.
"""
from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from sipagent.mediaports.stereo_recorder import StereoRecorder
from sipagent.sip.endpoint import pj_error_text
from sipagent.sip.leg import CallLeg
from sipagent.store.files import fsync_dir

log = structlog.get_logger("sipagent.media.call_recording")

RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# Everything that moves a recording between its phases: {phase: {action: next phase}}.
TRANSITIONS: dict[str, dict[str, str]] = {
    "ready": {"start": "recording"},
    "recording": {"pause": "paused", "switch_agent": "recording", "stop": "stopped"},
    "paused": {"resume": "recording", "switch_agent": "paused", "stop": "stopped"},
    "stopped": {},
}


class RecordingPhaseError(RuntimeError):
    """An action the recording's phase does not allow (pause twice, stop twice ...)."""


@dataclass(frozen=True)
class PausedSpan:
    start: float          # seconds into the segment
    end: float


@dataclass(frozen=True)
class RecordingSegment:
    file: str             # name in the recording folder
    started_at: float     # wall clock (epoch seconds) when the taps were attached
    seconds: float
    agent: str            # the agent leg's label
    paused: tuple[PausedSpan, ...]


@dataclass(frozen=True)
class ConversationRecord:
    recording_id: str
    segments: tuple[RecordingSegment, ...]
    # Segments that could not be written (disk full ...): their reasons.
    errors: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.segments)

    @property
    def paused(self) -> tuple[tuple[int, PausedSpan], ...]:
        """Every paused span as (segment index, span)."""
        return tuple((i, p) for i, s in enumerate(self.segments) for p in s.paused)


@dataclass
class _Segment:
    recorder: StereoRecorder
    tmp: Path
    final: Path
    agent: str
    started_at: float
    paused: list[PausedSpan] = field(default_factory=list)
    paused_from: float | None = None

    def close_pause(self, at: float) -> None:
        if self.paused_from is not None:
            self.paused.append(PausedSpan(round(self.paused_from, 3), round(at, 3)))
            self.paused_from = None


def _slot(leg: CallLeg) -> int:
    try:
        return leg.audio().getPortId()
    except Exception as exc:
        raise RuntimeError(f"leg {leg.label or '?'} has no active audio to record: "
                           f"{pj_error_text(exc)}") from None


def _publish(seg: _Segment) -> RecordingSegment:
    """Finish the segment's file and rename it into place (any thread; the
    recorder is detached)."""
    try:
        seconds = seg.recorder.finish()
        os.rename(seg.tmp, seg.final)
        fsync_dir(seg.final.parent)
    except BaseException:
        seg.recorder.close()
        seg.tmp.unlink(missing_ok=True)
        raise
    seg.close_pause(seconds)
    spans = tuple(PausedSpan(p.start, min(p.end, seconds)) for p in seg.paused)
    return RecordingSegment(seg.final.name, seg.started_at, seconds, seg.agent, spans)


class ConversationRecording:
    """One recording id.  start(), pause(), resume() and the pjsua2 half of
    switch_agent()/stop() run in the loop thread."""

    def __init__(self, folder: Path, recording_id: str):
        if not RECORDING_ID.fullmatch(recording_id or ""):
            raise ValueError(f"recording_id {recording_id!r}: use 1-64 letters, digits, "
                             "'-' or '_', starting with a letter or digit")
        self.folder = Path(folder)
        self.recording_id = recording_id
        self.phase = "ready"
        self._caller: CallLeg | None = None
        self._current: _Segment | None = None
        self._done: list[RecordingSegment] = []
        self._errors: list[str] = []
        self._opened = 0
        self.log = log.bind(recording=recording_id)

    def _move(self, action: str) -> None:
        nxt = TRANSITIONS[self.phase].get(action)
        if nxt is None:
            raise RecordingPhaseError(f"recording {self.recording_id}: cannot {action} "
                                      f"while {self.phase}")
        self.phase = nxt

    # -- segments ----------------------------------------------------------------
    def _open_segment(self, agent: CallLeg, *, paused: bool) -> _Segment:
        self._opened += 1
        n = self._opened
        final = self.folder / f"{self.recording_id}-{n}.wav"
        if final.exists():
            raise FileExistsError(f"recording {final.name} already exists in {self.folder}")
        tmp = self.folder / f".rec-{self.recording_id}-{n}.tmp.wav"
        tmp.unlink(missing_ok=True)   # a stray of an earlier crash under the same id
        recorder = StereoRecorder(tmp)
        try:
            if paused:
                recorder.pause()
            recorder.attach(_slot(self._caller), _slot(agent))
        except BaseException:
            recorder.close()
            tmp.unlink(missing_ok=True)
            raise
        seg = _Segment(recorder, tmp, final, agent.label, time.time())
        if paused:
            seg.paused_from = 0.0
        return seg

    def _detach_current(self) -> _Segment:
        seg, self._current = self._current, None
        seg.recorder.detach()
        return seg

    def _keep(self, seg: _Segment, result: RecordingSegment | BaseException) -> None:
        if isinstance(result, BaseException):
            self._errors.append(f"{seg.final.name}: {result}")
            self.log.error("recording segment lost", file=seg.final.name, error=str(result))
        else:
            self._done.append(result)
            self.log.info("recording segment written", file=result.file,
                          seconds=round(result.seconds, 2), agent=result.agent)

    async def _publish_later(self, seg: _Segment) -> None:
        try:
            result = await asyncio.to_thread(_publish, seg)
        except Exception as exc:
            result = exc
        self._keep(seg, result)

    def _record(self) -> ConversationRecord:
        return ConversationRecord(self.recording_id, tuple(self._done), tuple(self._errors))

    # -- actions -------------------------------------------------------------------
    def start(self, caller_leg: CallLeg, agent_leg: CallLeg) -> None:
        self._move("start")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._caller = caller_leg
        self.log = self.log.bind(call=caller_leg.sip_call_id)
        try:
            self._current = self._open_segment(agent_leg, paused=False)
        except BaseException:
            self._move("stop")
            raise
        self.log.info("recording started", caller=caller_leg.label, agent=agent_leg.label)

    def pause(self) -> None:
        self._move("pause")
        self._current.recorder.pause()
        self._current.paused_from = self._current.recorder.seconds

    def resume(self) -> None:
        self._move("resume")
        seg = self._current
        seg.recorder.resume()
        seg.close_pause(seg.recorder.seconds)

    async def switch_agent(self, new_agent_leg: CallLeg) -> None:
        """The caller now talks to `new_agent_leg` (a transfer): end this
        segment and record the next one, paused if this one was."""
        self._move("switch_agent")
        old = self._detach_current()
        try:
            self._current = self._open_segment(new_agent_leg, paused=self.phase == "paused")
        except BaseException:
            self._move("stop")
            await self._publish_later(old)
            raise
        await self._publish_later(old)

    async def stop(self) -> ConversationRecord:
        self._move("stop")
        await self._publish_later(self._detach_current())
        self._caller = None
        return self._record()

    def stop_now(self) -> ConversationRecord:
        """stop() without leaving the loop thread: for shutdown, right
        before libDestroy, when no worker thread may be awaited."""
        self._move("stop")
        seg = self._detach_current()
        try:
            result = _publish(seg)
        except Exception as exc:
            result = exc
        self._keep(seg, result)
        self._caller = None
        return self._record()

    @property
    def seconds(self) -> float:
        """Of everything recorded so far (the current segment to the last tick)."""
        done = sum(s.seconds for s in self._done)
        return done + (self._current.recorder.seconds if self._current else 0.0)
