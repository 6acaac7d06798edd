"""Call pickup: an agent takes a queue call that is ringing someone else.

Theory of operation
-------------------
What may be picked up is found here; who wins is decided by the ACD core.
``group_call`` is the oldest call ringing in a queue the agent serves,
``call_ringing_at`` the call ringing a given agent.  ``take`` hands the
picking agent's leg (its own phone's call to the engine, or a leg the
engine dialled for the API) to :meth:`QueueRuntime.pick_up`, which feeds
``CallPickedUp`` to the core.  The core accepts only while the call is
still ringing, so of two agents picking up the same call, the one whose
event comes first wins and the other is refused; everything runs on the
loop thread, so there is no moment in between.  On success the core's
``Connect`` takes the picking agent's leg exactly as an answered offer's
(the entry, the conversation, the CONNECT row, the answered counters are
the same), and its ``CancelOffer(..., "picked_up")`` stops the other
phones ringing (RINGNOANSWER ``picked_up`` rows).  A refusal changes
nothing: the caller rings on, the agent is told "nothing to pick up".

``sipacd_pickups_total{result}``: ``picked_up``; ``nothing`` (no call
ringing, or it was answered or picked up first); ``refused`` (the agent may
not: not its phone, logged out, on a call, not in the call's queue);
``no_answer`` (the API rang the agent's phone and nobody answered).
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Mapping, Protocol

import structlog

from acdcore.errors import PickupRefused
from sipagent.queue.entry import EntryState, QueueEntry, agent_headers
from sipagent.sip.leg import CallLeg, LegEnded

log = structlog.get_logger("sipagent.queue.pickup")


class PickupLine(Protocol):
    """What pickup needs from the queue runtime, and nothing more (it never
    imports runtime.py: runtime -> pickup, one way)."""
    entries: Mapping[str, QueueEntry]
    offers: Mapping[tuple[str, str], CallLeg]
    settings: Mapping[str, Any]
    lines: Mapping[str, Any]
    scheduler: Any                    # the ACD core: call_state(call_id)
    metrics: Any                      # EngineMetrics: pickups
    track_leg: Callable[[CallLeg], None]

    def agent_queues(self, agent_id: str) -> list[str]: ...
    def pick_up(self, call_id: str, agent_id: str, leg: CallLeg) -> Exception | None: ...
    def agent_hung_up(self, entry: QueueEntry, leg: CallLeg) -> None: ...
    def dial_out(self, uri: str, *, label: str, headers: dict[str, str]) -> CallLeg: ...
    def spawn(self, coro: Coroutine) -> asyncio.Task: ...


class CallPickup:
    def __init__(self, line: PickupLine):
        self._rt = line

    # -- what may be picked up -------------------------------------------------------
    def _ringing(self, entry: QueueEntry) -> bool:
        """A live caller (not a callback) whose call rings an agent now."""
        if entry.call is None or entry.callback is not None or entry.state is not EntryState.WAITING:
            return False
        try:
            return self._rt.scheduler.call_state(entry.call_id) == "offered"
        except KeyError:
            return False

    def ringing_call(self, call_id: str) -> QueueEntry | None:
        """The entry of ``call_id`` if it is ringing now."""
        entry = self._rt.entries.get(call_id)
        return entry if entry is not None and self._ringing(entry) else None

    def group_call(self, agent_id: str) -> str | None:
        """The oldest call ringing in a queue ``agent_id`` serves."""
        queues = set(self._rt.agent_queues(agent_id))
        ringing = [e for e in self._rt.entries.values() if e.queue in queues and self._ringing(e)]
        return min(ringing, key=lambda e: e.entered).call_id if ringing else None

    def call_ringing_at(self, agent_id: str) -> str | None:
        """The call ``agent_id``'s phone rings with, if any."""
        for call_id, ringing_agent in self._rt.offers:
            entry = self._rt.entries.get(call_id)
            if ringing_agent == agent_id and entry is not None and self._ringing(entry):
                return call_id
        return None

    # -- taking it ---------------------------------------------------------------------
    def take(self, call_id: str, agent_id: str, leg: CallLeg) -> str:
        """Connect the ringing ``call_id`` to ``agent_id`` on ``leg`` (answered).
        Returns the result (metrics.PICKUP_RESULTS); on any but ``picked_up`` the caller of
        this ends ``leg`` itself."""
        entry = self.ringing_call(call_id)
        if entry is None:
            return self.count("nothing", call_id, agent_id)
        refusal = self._rt.pick_up(call_id, agent_id, leg)
        if refusal is not None:
            # Not ringing any more is "nothing"; a ringing call this agent may not take is not.
            nothing = isinstance(refusal, PickupRefused) and not self._ringing(entry)
            return self.count("nothing" if nothing else "refused", call_id, agent_id,
                              why=str(refusal))
        self._rt.spawn(self._watch(entry, leg))
        return self.count("picked_up", call_id, agent_id)

    def count(self, result: str, call_id: str | None, agent_id: str, **why) -> str:
        self._rt.metrics.pickups.labels(result).inc()
        log.info("pickup", result=result, call_id=call_id, agent=agent_id, **why)
        return result

    async def _watch(self, entry: QueueEntry, leg: CallLeg) -> None:
        """The picking agent hanging up ends the talk, as for an answered offer."""
        await leg.ended
        self._rt.agent_hung_up(entry, leg)

    # -- pickup for the HTTP API: ring the agent's phone first ---------------------------
    def ring_agent(self, call_id: str, agent_id: str) -> CallLeg:
        """Dial ``agent_id``'s phone (the caller's data in the headers, as for an
        offer); when it answers, take the call if it still rings, else hang up.
        Raises KeyError for an agent with no line."""
        line = self._rt.lines[agent_id]
        entry = self._rt.entries.get(call_id)
        section = self._rt.settings[entry.queue] if entry is not None else None
        headers = agent_headers(entry, section.caller_headers) if entry is not None else {}
        leg = self._rt.dial_out(line.uri, label=f"pickup:{call_id}->{agent_id}", headers=headers)
        self._rt.track_leg(leg)
        self._rt.spawn(self._answered(call_id, agent_id, leg))
        return leg

    async def _answered(self, call_id: str, agent_id: str, leg: CallLeg) -> None:
        try:
            await leg.until_answered()
        except LegEnded:
            self.count("no_answer", call_id, agent_id)
            return
        if self.take(call_id, agent_id, leg) != "picked_up":
            leg.end()
