"""Talk-time limits: a beep to the agent alone, then the call ends or moves on.

A mixin of :class:`sipagent.queue.operations.CallOperations`; the limit is
the agent's own ``talk_limit`` if set, else its queue's.
"""
from __future__ import annotations

import asyncio

import structlog

from sipagent.media.playback import play_prompt
from sipagent.queue.conversation import Conversation
from sipagent.queue.entry import QueueEntry

log = structlog.get_logger("sipagent.queue.talk_limit")


class TalkLimit:
    async def talk_limit(self, entry: QueueEntry, conversation: Conversation, limit: float,
                         beep) -> None:
        """Beep to the agent (only) ``talk_limit_warning`` seconds before
        ``limit``; at the limit, end the call or transfer it to the queue's
        ``talk_limit_target``."""
        settings = self.line.settings[entry.queue]
        warning = min(settings.talk_limit_warning, limit)
        over = conversation.over
        for step, wait in enumerate((limit - warning, warning)):
            try:
                await asyncio.wait_for(over.wait(), wait)
                return
            except TimeoutError:
                pass
            if step == 0 and warning > 0 and not conversation.agent.is_ended:
                self.line.spawn(play_prompt(conversation.agent, beep))
        target = settings.talk_limit_target
        log.info("talk-time limit reached", call_id=entry.call_id, limit=limit,
                 target=target)
        if target and not target.startswith("hangup"):
            self.transfer(entry.call_id, self.target(target), origin="limit")
            return
        caller = conversation.caller
        self.line.talk_over(entry, "system")
        caller.end()

