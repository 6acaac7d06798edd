"""What a caller hears and may press while waiting in a queue.

Music on hold runs between announcements: a first announcement on entry,
position and expected wait at a configured interval (only when they changed,
and optionally never upwards: a caller told "third" must not later hear
"fifth" because a higher-priority call arrived), and periodic prompts.  The
exit key and the callback key end the wait; what they lead to is the queue
runtime's business, reported through ``on_key``.

A queue that offers callback time slots (``callback_slots``) asks first,
after the callback key: a spoken menu (1: as soon as possible, 2..: the
slots, see ``callback_slots.py``), one key, ``CALLBACK_MENU_TIMEOUT``
seconds after the menu to press it.  No key or a key that names no slot
means as soon as possible.  The caller is still in line meanwhile: an agent
who answers then simply gets the call.  The choice is ``callback_at``.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Callable

import structlog

from sipagent.sip.leg import CallLeg
from sipagent.media.playback import MusicOnHold, play_prompt
from sipagent.media.prompts import PromptLibrary
from ivrflows.callback_slots import chosen_slot, menu_text

log = structlog.get_logger("sipagent.queue.hold")

CALLBACK_MENU_TIMEOUT = 6.0


def position_text(position: int, ewt: float | None) -> str:
    """English announcement; EWT rounded up to whole minutes, because callers
    forgive an early answer, not a late one."""
    text = f"You are caller number {position}."
    if ewt is not None:
        minutes = int(-(-ewt // 60))
        if minutes <= 1:
            text += " Your expected wait time is less than a minute."
        else:
            text += f" Your expected wait time is about {minutes} minutes."
    return text


class CallerHold:
    def __init__(self, leg: CallLeg, settings, *, moh: MusicOnHold, prompts: PromptLibrary,
                 position: Callable[[], tuple[int | None, float | None]],
                 on_key: Callable[[str], None], call_id: str,
                 callback_slots: Callable[[datetime], list[datetime]] | None = None):
        self.leg = leg
        self.settings = settings          # the queue's config section
        self.moh = moh
        self.prompts = prompts
        self.position = position
        self.on_key = on_key
        self.log = log.bind(call_id=call_id)
        self._task: asyncio.Task | None = None
        self._moh_on = False
        self._last_position: int | None = None
        self.announced: list[str] = []    # what was said, for logs and tests
        self.callback_slots = callback_slots
        self.callback_at: datetime | None = None   # the slot chosen; None: as soon as possible

    def start(self) -> None:
        self._music(True)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """Stop everything the caller hears from the queue (connect, exit)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._music(False)

    def _music(self, on: bool) -> None:
        if on and not self._moh_on:
            self.moh.start(self.leg)
        elif not on and self._moh_on:
            self.moh.stop(self.leg)
        self._moh_on = on

    async def _run(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        keys = {k: name for k, name in ((s.exit_key, "exit_key"), (s.callback_key, "callback"))
                if k}
        try:
            if s.announce_first:
                await self._announce(self.prompts.path(s.announce_first), s.announce_first)
            next_position = loop.time() + s.announce_position_every if s.announce_position_every else None
            next_periodic = loop.time() + s.periodic_every if s.periodic_every and s.periodic_prompts else None
            periodic_index = 0
            while not self.leg.is_ended:
                key = self._pressed(keys)
                if key:
                    if key == "callback" and self.callback_slots is not None:
                        await self._choose_callback_time()
                    self.on_key(key)
                    return
                due = [t for t in (next_position, next_periodic) if t is not None]
                timeout = max(0.0, min(due) - loop.time()) if due else None
                try:
                    await asyncio.wait_for(self.leg.digit_arrived.wait(), timeout)
                    continue
                except TimeoutError:
                    pass
                now = loop.time()
                if next_position is not None and now >= next_position:
                    next_position = now + s.announce_position_every
                    await self._announce_position()
                if next_periodic is not None and now >= next_periodic:
                    next_periodic = now + s.periodic_every
                    name = s.periodic_prompts[periodic_index % len(s.periodic_prompts)]
                    periodic_index += 1
                    await self._announce(self.prompts.path(name), name)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("hold announcements failed; music continues")
            self._music(True)

    def _pressed(self, keys: dict[str, str]) -> str | None:
        while True:
            digit = self.leg.take_digit()
            if digit is None:
                return None
            if digit in keys:
                return keys[digit]
            # Other keys while waiting mean nothing; drop them.

    async def _choose_callback_time(self) -> None:
        now = datetime.now(timezone.utc)
        slots = self.callback_slots(now)
        if not slots:
            return
        self._music(False)
        text = menu_text(slots, now)
        self.announced.append(text)
        self.log.info("callback time menu", slots=[s.isoformat() for s in slots])
        path = await asyncio.to_thread(self.prompts.speech, text)
        self.leg.digit_buffer.clear()
        digit = await play_prompt(self.leg, path, barge_in=True)
        if digit is None and not self.leg.is_ended:
            try:
                await asyncio.wait_for(self.leg.digit_arrived.wait(), CALLBACK_MENU_TIMEOUT)
            except TimeoutError:
                pass
        digit = self.leg.take_digit()
        self.callback_at = chosen_slot(digit, slots)
        self.log.info("callback time chosen", key=digit,
                      at=self.callback_at and self.callback_at.isoformat())

    async def _announce_position(self) -> None:
        position, ewt = self.position()
        if position is None:
            return
        last = self._last_position
        if last is not None and (position == last or
                                 (self.settings.announce_position_only_down and position > last)):
            return
        self._last_position = position
        text = position_text(position, ewt if self.settings.announce_ewt else None)
        path = await asyncio.to_thread(self.prompts.speech, text)
        await self._announce(path, text)

    async def _announce(self, path, what: str) -> None:
        self._music(False)
        try:
            self.announced.append(what)
            self.log.info("queue announcement", what=what)
            await play_prompt(self.leg, path, barge_in=True)
        finally:
            if not self.leg.is_ended and self._task is not None:
                self._music(True)
