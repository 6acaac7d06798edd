"""A connected queue call: who is on it, and who hears whom.

Theory of operation
-------------------
Once the ACD connects a caller to an agent, the two legs (and whoever
joins later: a party the agent consults, a supervisor listening in) form
one conversation.  Its *phase* says what the caller and the agent are
doing; the supervisor's *monitor mode* is a second, independent setting.
Every audio path follows from the pair (phase, mode) through
``Conversation.paths``: nothing else connects the legs of a conversation,
so a whisper can only reach the agent, and a resumed call always gets its
audio back, because every change re-derives the whole picture.

    TALKING     caller and agent hear each other.
    HELD        the caller hears the queue's music; the agent hears nothing
                of the caller (held from the agent's phone or the API).
    CONSULTING  the caller is held; the agent talks to a consulted party
                (the first half of an attended transfer).
    CONFERENCE  caller, agent and the consulted party all hear each other.
    OVER        the conversation ended (hang-up or transfer).  Final.

Phases move only through ``TRANSITIONS``; a move with no entry raises
``InvalidConversationMove`` (the API turns it into a 409).

Monitor modes (a supervisor's leg is present): LISTEN hears caller and
agent, nobody hears the supervisor; WHISPER adds supervisor -> agent;
BARGE adds supervisor -> caller (and the consulted party).
"""
from __future__ import annotations

import asyncio
from enum import Enum
from typing import Callable

import structlog

from sipagent.media.mix import Mix, Path
from sipagent.sip.leg import CallLeg

log = structlog.get_logger("sipagent.queue.conversation")


class Phase(Enum):
    TALKING = "talking"
    HELD = "held"
    CONSULTING = "consulting"
    CONFERENCE = "conference"
    OVER = "over"


class Move(Enum):
    HOLD = "hold"
    RESUME = "resume"
    CONSULT = "consult"          # a consulted party answered
    CONSULT_ENDED = "consult_ended"  # it hung up, or the agent went back to the caller
    MERGE = "merge"              # three-way conference
    AGENT_LEFT = "agent_left"    # the agent leaves a conference; the other two talk on
    END = "end"


class Monitor(Enum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


P, M = Phase, Move
TRANSITIONS: dict[Phase, dict[Move, Phase]] = {
    P.TALKING: {M.HOLD: P.HELD, M.RESUME: P.TALKING, M.CONSULT: P.CONSULTING, M.END: P.OVER},
    P.HELD: {M.HOLD: P.HELD, M.RESUME: P.TALKING, M.CONSULT: P.CONSULTING, M.END: P.OVER},
    P.CONSULTING: {M.CONSULT_ENDED: P.HELD, M.MERGE: P.CONFERENCE, M.HOLD: P.CONSULTING,
                   M.END: P.OVER},
    P.CONFERENCE: {M.CONSULT_ENDED: P.TALKING, M.AGENT_LEFT: P.TALKING, M.END: P.OVER},
    P.OVER: {M.END: P.OVER},
}
del P, M


class InvalidConversationMove(RuntimeError):
    """The conversation's table has no such move in its phase."""


class NotConnected(LookupError):
    """No connected conversation with that call id (a 404 or 409 to the API)."""


class Conversation:
    def __init__(self, call_id: str, caller: CallLeg, agent: CallLeg, agent_id: str, *,
                 music, clock: Callable[[], float],
                 on_hold: Callable[["Conversation", bool], None] = lambda c, held: None):
        self.call_id = call_id
        self.caller = caller
        self.agent = agent
        self.agent_id = agent_id
        self.music = music                     # the queue's music on hold (a mix source)
        self.consulted: CallLeg | None = None
        self.consulting = False                # a consulted party's phone is ringing
        self.consulting_wanted = True          # False: cancelled while it rang
        self.consult_target = None             # what the agent consults (a TransferTarget)
        self.supervisor: CallLeg | None = None
        self.monitor: Monitor | None = None
        self.monitoring = False                # a supervisor's phone rings or is on
        self.over = asyncio.Event()            # set when the phase becomes OVER
        self.mix = Mix(call_id)
        self._clock = clock
        self._on_hold = on_hold
        self._phase = Phase.TALKING
        self.held_by: str | None = None        # "phone" or "api": who must resume
        self.hold_started: float | None = None
        self.hold_total = 0.0
        self.holds = 0
        self.log = log.bind(call_id=call_id)
        for leg in (caller, agent):
            leg.media_listeners.append(self._media_changed)

    @property
    def phase(self) -> Phase:
        return self._phase

    # -- moves --------------------------------------------------------------------
    def move(self, move: Move, *, by: str = "api") -> Phase:
        try:
            new = TRANSITIONS[self._phase][move]
        except KeyError:
            raise InvalidConversationMove(
                f"call {self.call_id} cannot {move.value} while {self._phase.value}") from None
        was_held = self.caller_held
        self._phase = new
        if move is Move.HOLD and not was_held:
            self.held_by = by
        if not was_held and self.caller_held:
            self.holds += 1
            self.hold_started = self._clock()
            self._on_hold(self, True)
        elif was_held and not self.caller_held:
            self._end_hold()
        if new is Phase.OVER:
            self.over.set()
            for leg in (self.caller, self.agent):
                if self._media_changed in leg.media_listeners:
                    leg.media_listeners.remove(self._media_changed)
            self.mix.clear()
        else:
            self.mix.hear(self.paths())
        self.log.info("conversation", move=move.value, phase=new.value, by=by)
        return new

    def _end_hold(self) -> None:
        self.hold_total += self._clock() - (self.hold_started or self._clock())
        self.hold_started = None
        self.held_by = None
        self._on_hold(self, False)

    @property
    def caller_held(self) -> bool:
        return self._phase in (Phase.HELD, Phase.CONSULTING)

    def hold_seconds(self) -> float:
        """Hold time so far, a hold still running included."""
        running = 0.0 if self.hold_started is None else self._clock() - self.hold_started
        return self.hold_total + running

    def start(self) -> None:
        self.mix.hear(self.paths())

    def join_consulted(self, leg: CallLeg) -> None:
        self.consulted = leg
        leg.media_listeners.append(self._media_changed)
        self.move(Move.CONSULT)

    def drop_consulted(self, *, quietly: bool = False) -> None:
        """The consulted party leaves the conversation; ``quietly``: it is
        handed the caller (the conversation ends next), no move now."""
        leg, self.consulted = self.consulted, None
        if leg is not None and self._media_changed in leg.media_listeners:
            leg.media_listeners.remove(self._media_changed)
        if not quietly and self._phase in (Phase.CONSULTING, Phase.CONFERENCE):
            self.move(Move.CONSULT_ENDED)

    def set_monitor(self, leg: CallLeg | None, mode: Monitor | None) -> None:
        if self.supervisor is not None and self.supervisor is not leg \
                and self._media_changed in self.supervisor.media_listeners:
            self.supervisor.media_listeners.remove(self._media_changed)
        if leg is not None and leg is not self.supervisor:
            leg.media_listeners.append(self._media_changed)
        self.supervisor, self.monitor = leg, mode if leg is not None else None
        if self._phase is not Phase.OVER:
            self.mix.hear(self.paths())

    # -- who hears whom ---------------------------------------------------------------
    def paths(self) -> set[Path]:
        caller, agent, third = self.caller, self.agent, self.consulted
        out: set[Path] = set()

        def both(a, b):
            out.add((a, b))
            out.add((b, a))

        phase = self._phase
        if phase is Phase.TALKING:
            both(caller, agent)
            if third is not None:      # the agent left a conference: caller and third talk
                both(caller, third)
        elif phase is Phase.HELD:
            out.add((self.music, caller))
        elif phase is Phase.CONSULTING:
            out.add((self.music, caller))
            if third is not None:
                both(agent, third)
        elif phase is Phase.CONFERENCE:
            both(caller, agent)
            if third is not None:
                both(caller, third)
                both(agent, third)
        if self.supervisor is not None and self.monitor is not None:
            sup = self.supervisor
            talking = [leg for leg in (caller, agent, third) if leg is not None]
            for leg in talking:
                out.add((leg, sup))
            if self.monitor is Monitor.WHISPER:
                out.add((sup, agent))
            elif self.monitor is Monitor.BARGE:
                for leg in talking:
                    out.add((sup, leg))
        return {p for p in out if not _gone(p)}

    # -- the phones' own signalling -------------------------------------------------
    def _media_changed(self, leg: CallLeg) -> None:
        if self._phase is Phase.OVER or leg.is_ended:
            return
        if leg is self.agent:
            # The agent's phone holds (re-INVITE sendonly/inactive) or resumes.
            if leg.remote_hold and self._phase is Phase.TALKING:
                self.move(Move.HOLD, by="phone")
                return
            if not leg.remote_hold and self._phase is Phase.HELD and self.held_by == "phone":
                self.move(Move.RESUME, by="phone")
                return
        self.mix.refresh(leg)


def _gone(path: Path) -> bool:
    return any(getattr(p, "is_ended", False) for p in path)


async def media_of(legs: list[CallLeg], timeout: float) -> bool:
    """Whether every leg has media within ``timeout``."""
    try:
        await asyncio.wait_for(asyncio.gather(*(leg.media_ready.wait() for leg in legs)),
                               timeout)
    except TimeoutError:
        return False
    return not any(leg.is_ended for leg in legs)
