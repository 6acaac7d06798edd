"""A customer we called back, as the queue runtime sees a live caller.

Caller-first callbacks (``callback.py``) put the customer's answered leg in
the queue through the same ``QueueRuntime.enqueue`` a flow's call takes, so
hold music, announcements, abandon and the bridge to the agent are the ones
every caller gets.  ``enqueue`` needs only these attributes and verbs of a
call; an exit target ``flow:...`` is not one of them (a flow needs a real
call object), so a caller-first queue should leave ``on_timeout`` and
friends unset or ``hangup``.
"""
from __future__ import annotations

import asyncio

from ivrflows.call import CallerHangup
from sipagent.media.playback import play_prompt
from sipagent.sip.leg import CallLeg


class CalledBack:
    """The customer's answered leg as the queue runtime sees a live caller."""

    def __init__(self, leg: CallLeg, call_id: str, number: str, prompts):
        self.leg, self.call_id, self._prompts = leg, call_id, prompts
        self.caller, self.called, self.headers = number, "", {}
        self.vars: dict[str, str] = {}      # as a flow's call has (recording, transfers)

    async def play(self, *names: str, barge_in: bool = False) -> str | None:
        for name in names:
            if self.leg.is_ended:
                raise CallerHangup(self.call_id)
            path = await asyncio.to_thread(self._prompts.path, name)
            await play_prompt(self.leg, path)
        return None

    async def say(self, text: str, **_) -> str | None:
        path = await asyncio.to_thread(self._prompts.speech, text)
        return await self.play(str(path))

    async def hangup(self, cause: int = 200) -> None:
        self.leg.end()
