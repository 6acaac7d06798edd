"""Bridging a caller (or a called-back customer) to an agent once both legs
have media: a leg that never gets media within MEDIA_WAIT is ended rather
than bridged into silence."""
from __future__ import annotations

import asyncio

import structlog

from sipagent.media.playback import bridge
from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.queue.bridging")

MEDIA_WAIT = 5.0


async def bridge_when_ready(a: CallLeg, b: CallLeg, call_id: str) -> bool:
    """Whether the two legs were bridged."""
    for leg in (a, b):
        try:
            await asyncio.wait_for(leg.media_ready.wait(), MEDIA_WAIT)
        except TimeoutError:
            log.error("leg has no media; ending it", call_id=call_id, leg=leg.label)
            leg.end()
            return False
    if a.is_ended or b.is_ended:
        return False
    bridge(a, b)
    return True
