"""When a call is recorded: the queue's share and consent prompt, on-demand
control, and following the call from one agent to the next.

A mixin of :class:`sipagent.queue.operations.CallOperations`; the
recordings themselves (files, records, retention) are
sipagent/queue/recordings.py's.
"""
from __future__ import annotations

import structlog

from sipagent.queue.entry import QueueEntry
from sipagent.queue.recordings import RecordingRefused

log = structlog.get_logger("sipagent.queue.recording_control")


class RecordingControl:
    async def recording_consent(self, call, settings) -> None:
        """Decide, as the caller joins, whether this call is recorded; the
        consent prompt (once per call) is heard before anyone answers."""
        if self.recordings is None or call.vars.get("_recorded") is not None:
            return
        recorded = self.recordings.wanted(settings.recording)
        call.vars["_recorded"] = "1" if recorded else ""
        if recorded and settings.recording_consent:
            await call.play(settings.recording_consent)

    def conversation_started(self, entry: QueueEntry) -> None:
        if self.recordings is None or entry.call is None:
            return
        conversation = entry.conversation
        if entry.call_id in self.recordings.live:      # transferred here: the next segment
            self.line.spawn(self.recordings.agent_changed(
                entry.call_id, conversation.agent, entry.agent_id, entry.queue))
        elif entry.call.vars.get("_recorded"):
            try:
                self._start_recording(entry, "policy")
            except RecordingRefused as exc:     # the call goes on unrecorded
                log.error("recording by policy failed", call_id=entry.call_id, error=str(exc))

    def conversation_ended(self, entry: QueueEntry, side: str) -> None:
        # A transfer keeps recording: the next agent gets the next segment.
        if self.recordings is not None and side != "transfer":
            self.recordings.stop_soon(entry.call_id, entry.queue, entry.agent_id)

    def _start_recording(self, entry: QueueEntry, trigger: str) -> str:
        conversation = entry.conversation
        try:
            return self.recordings.start(entry.call_id, entry.queue, conversation.caller,
                                         conversation.agent, entry.agent_id, trigger=trigger)
        except RecordingRefused:
            raise
        except Exception as exc:
            log.error("recording could not start", call_id=entry.call_id, error=str(exc))
            raise RecordingRefused(f"recording could not start: {exc}") from None

    def recording(self, call_id: str, action: str) -> dict:
        """On demand (API): start, pause, resume or stop the call's recording."""
        entry, _ = self.talking(call_id)
        if self.recordings is None:
            raise RecordingRefused("recording is not set up on this engine")
        recordings = self.recordings
        if action == "start":
            rec_id = self._start_recording(entry, "demand")
            return {"recording_id": rec_id, "state": "recording"}
        if action == "stop":
            if call_id not in recordings.live:
                raise RecordingRefused(f"call {call_id!r} is not being recorded")
            rec_id = recordings.live[call_id][1]["recording_id"]
            recordings.stop_soon(call_id, entry.queue, entry.agent_id)
            return {"recording_id": rec_id, "state": "stopped"}
        state = recordings.pause(call_id, entry.queue, entry.agent_id, resume=action == "resume")
        return {"recording_id": recordings.live[call_id][1]["recording_id"], "state": state}
