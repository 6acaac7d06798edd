"""Audio played into calls: prompts and music on hold.

Prompt timing comes from the WAV header, not from the player's end-of-file
callback: that callback fires on pjmedia's clock thread, and the engine keeps
Python off that thread.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pjsua2 as pj
import structlog

from sipagent.sip.endpoint import pj_error_text
from sipagent.sip.leg import CallLeg
from sipagent.store.files import wav_seconds

log = structlog.get_logger("sipagent.media.playback")


async def play_prompt(leg: CallLeg, path: Path, *, barge_in: bool = False) -> str | None:
    """Play one WAV to the leg; returns the barge-in digit if one cut it short.

    A digit that interrupts stays in the leg's buffer for the next gather.
    """
    seconds = wav_seconds(path)
    player = pj.AudioMediaPlayer()
    player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
    try:
        player.startTransmit(leg.audio())
        if barge_in and leg.digit_buffer:
            return leg.digit_buffer[0]
        waiters = [asyncio.ensure_future(asyncio.sleep(seconds)), asyncio.ensure_future(leg.ended)]
        if barge_in:
            leg.digit_arrived.clear()
            waiters.append(asyncio.ensure_future(leg.digit_arrived.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if w is not leg.ended:
                    w.cancel()
        if barge_in and leg.digit_buffer:
            return leg.digit_buffer[0]
        return None
    finally:
        _stop(player, leg)
        del player


def _stop(player, leg: CallLeg) -> None:
    if leg.is_ended:
        return
    try:
        player.stopTransmit(leg.audio())
    except Exception as exc:
        log.debug("stopTransmit failed", error=pj_error_text(exc))


class MusicOnHold:
    """One looping player per music file, shared by every caller holding.

    Sharing keeps the conference bridge at one port per file instead of one
    per waiting caller; callers hear the same stream, as on a PBX.
    """

    def __init__(self, path: Path):
        self.path = path
        self._player = None
        self._listeners = 0

    def start(self, leg: CallLeg) -> None:
        try:
            self.audio().startTransmit(leg.audio())
            self._listeners += 1
        except Exception as exc:
            log.warning("music on hold failed to start", error=pj_error_text(exc), leg=leg.label)

    def audio(self):
        """The looping player, as a source a conversation's mix can connect."""
        if self._player is None:
            self._player = pj.AudioMediaPlayer()
            self._player.createPlayer(str(self.path), 0)
        return self._player

    def stop(self, leg: CallLeg) -> None:
        if self._player is None:
            return
        self._listeners = max(0, self._listeners - 1)
        if not leg.is_ended:
            try:
                self._player.stopTransmit(leg.audio())
            except Exception as exc:
                log.debug("music on hold stop failed", error=pj_error_text(exc))

    def release(self) -> None:
        self._player = None


def bridge(a: CallLeg, b: CallLeg) -> None:
    """Connect two legs' audio both ways through the conference bridge."""
    am, bm = a.audio(), b.audio()
    am.startTransmit(bm)
    bm.startTransmit(am)
