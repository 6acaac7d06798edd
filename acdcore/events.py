"""Events: what the runtime tells the scheduler.  Each carries its time ``t``.

Timers due at or before an event's ``t`` fire first (as if ``Tick(t)`` had
been handled), so a late ``Tick`` never changes the outcome.  A ``t`` older
than the scheduler's clock is treated as "now": runtimes must not crash on
clock jitter.

``EV_*`` codes are the event kinds for ``Scheduler.handle_raw`` (the fast
path that skips building event objects).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallArrived:
    t: float
    call_id: str
    queue: str
    priority: int = 0
    skills: tuple = ()       # ((skill, min_proficiency), ...); a bare name means min 1
    callback: bool = False   # a callback entry: no caller on hold, the agent is called first


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    t: float
    call_id: str


@dataclass(frozen=True, slots=True)
class CallWithdrawn:
    """The runtime took the caller out of the queue (exit key, voicemail...)."""
    t: float
    call_id: str
    reason: str = "withdrawn"


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller hung up but keeps its place: the entry becomes a callback."""
    t: float
    call_id: str


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    t: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    t: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentReady:
    t: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentPaused:
    t: float
    agent_id: str
    reason: str = "paused"


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    t: float
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferRejected:
    t: float
    call_id: str
    agent_id: str
    busy: bool = False


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Talk is over; the agent goes to wrap-up."""
    t: float
    call_id: str


@dataclass(frozen=True, slots=True)
class WrapUpDone:
    """The agent ended wrap-up early (a timer-driven end is WrapUpEnded)."""
    t: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentOutbound:
    """The agent starts an outbound call (click-to-call): from the moment its
    phone is rung it takes no offers (states.py, "Outbound calls")."""
    t: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class OutboundEnded:
    """The agent's outbound call is over: wrap-up, as after a queue call.
    ``wrap_up=False``: the agent never got on the call (its own phone did
    not answer), so it is back at once -- a pending pause applies."""
    t: float
    agent_id: str
    wrap_up: bool = True


@dataclass(frozen=True, slots=True)
class CallPickedUp:
    """``agent_id`` takes the ringing call (states.py, "Pickup"); refused
    with ``PickupRefused`` unless the call is ringing in one of its queues."""
    t: float
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    t: float


EV_CALL_ARRIVED = 0
EV_CALL_ABANDONED = 1
EV_CALL_WITHDRAWN = 2
EV_AGENT_LOGGED_IN = 3
EV_AGENT_LOGGED_OUT = 4
EV_AGENT_READY = 5
EV_AGENT_PAUSED = 6
EV_OFFER_ANSWERED = 7
EV_OFFER_REJECTED = 8
EV_CALL_ENDED = 9
EV_WRAP_UP_DONE = 10
EV_TICK = 11
EV_CALLBACK_REQUESTED = 12
# Outbound calls take 20 and up: codes are dispatched by value, never index a
# table, so gaps cost nothing and leave 13-19 to other new events.
EV_AGENT_OUTBOUND = 20
EV_OUTBOUND_ENDED = 21
EV_CALL_PICKED_UP = 13

EVENT_CODES = {
    CallArrived: EV_CALL_ARRIVED,
    CallAbandoned: EV_CALL_ABANDONED,
    CallWithdrawn: EV_CALL_WITHDRAWN,
    AgentLoggedIn: EV_AGENT_LOGGED_IN,
    AgentLoggedOut: EV_AGENT_LOGGED_OUT,
    AgentReady: EV_AGENT_READY,
    AgentPaused: EV_AGENT_PAUSED,
    OfferAnswered: EV_OFFER_ANSWERED,
    OfferRejected: EV_OFFER_REJECTED,
    CallEnded: EV_CALL_ENDED,
    WrapUpDone: EV_WRAP_UP_DONE,
    Tick: EV_TICK,
    CallbackRequested: EV_CALLBACK_REQUESTED,
    AgentOutbound: EV_AGENT_OUTBOUND,
    OutboundEnded: EV_OUTBOUND_ENDED,
    CallPickedUp: EV_CALL_PICKED_UP,
}

# Code -> event name, for logs of handle_raw calls.
EVENT_NAMES = {code: kind.__name__ for kind, code in EVENT_CODES.items()}
