"""Agent and caller state machines: the one place transitions are defined.

Theory of operation
-------------------
Both schedulers (reference.py and the Cython engine) move an agent or a
caller from one state to another *only* by looking the pair
``(state, input)`` up in the tables below.  An input with no entry is a bug
in the scheduler or an impossible event from the runtime, and raises
``InvalidTransition`` at once -- a stuck agent ("offered" forever, "busy"
without a call) cannot silently happen.

Agent states
    LOGGED_OUT  not working.
    AVAILABLE   logged in and idle.  It is *free* (in the offer pools) unless
                a reject delay is running.
    OFFERED     ringing with exactly one call (ring-all rings several agents,
                each with the same call).
    BUSY        talking: a queue call, or an outbound call the agent placed
                (click-to-call, ``outbound`` input).  A pause requested now is
                remembered ("pending") and applied when the call and its
                wrap-up are over.
    WRAP_UP     after-call work; ends by timer, WrapUpDone, or AgentReady.
    PAUSED      logged in, not taking calls (reason kept beside the state).

Caller states
    WAITING     in its queue, not ringing anyone.
    OFFERED     ringing one agent (or several with ring-all); still counts in
                the queue (position, max_len).
    TALKING     connected; left the queue, kept until CallEnded.
    GONE        removed (connected call ended, abandoned, withdrawn, exited).

Outbound calls (click-to-call)
    The runtime tells the core when an agent starts placing a call
    (``AgentOutbound``: from the moment its phone is rung) and when that call
    is over (``OutboundEnded``).  The agent is BUSY in between, so it gets no
    offers; afterwards it goes to WRAP_UP as after a queue call.  Who may dial:
    AVAILABLE, WRAP_UP (calling the customer back during after-call work) and
    PAUSED agents -- dialling out while paused is normal in call centres; the
    pause reason becomes the pending pause, so the agent returns to PAUSED
    (after its wrap-up), not to AVAILABLE.  OFFERED, BUSY and LOGGED_OUT
    agents cannot (InvalidTransition; the API answers 409).  The wrap-up time
    is the agent's own ``wrap_up`` if set, else its first queue's (config
    order), else none.  While on the call the agent counts as serving its
    queues (BUSY is a serving state).  An outbound call adds no handle-time
    sample and no talk time (those describe the queues' own calls).
    ``OutboundEnded(wrap_up=False)``: the agent never got on the call (its
    phone did not answer); it goes through WRAP_UP at once, so it is back
    where it was (a paused agent to PAUSED), except that an agent that
    dialled during wrap-up comes back AVAILABLE.
Pickup (``CallPickedUp``)
    An agent takes a call that is ringing someone else.  Only an OFFERED
    caller can be picked up (it goes to TALKING with the picking agent, and
    every offer of it is cancelled with ``picked_up``); anything else -- the
    call was answered, is gone, or is only waiting -- is refused with
    ``PickupRefused`` before any state changes, which is what makes the
    second of two simultaneous pickups lose cleanly.  The picking agent must
    be a member of the call's queue (skills are not checked: a person chose
    the call) and goes to BUSY from AVAILABLE, WRAP_UP (the wrap-up is cut
    short) or PAUSED.  A paused agent picking up on purpose is the common
    PBX case; the pause is kept as pending and returns after the call and
    its wrap-up, as a pause requested during a call does.  LOGGED_OUT,
    OFFERED (answer your own ringing call instead) and BUSY have no entry:
    the table raises ``InvalidTransition``.

Races are resolved *before* the tables are consulted (see reference.py), so
the tables stay strict.  Both engines import the integer codes from here;
the Cython engine flattens the tables into C arrays at import time.
"""
from __future__ import annotations

from .errors import InvalidTransition

# --- agent ------------------------------------------------------------------
LOGGED_OUT, AVAILABLE, OFFERED, BUSY, WRAP_UP, PAUSED = range(6)
AGENT_STATE_NAMES = ("logged_out", "available", "offered", "busy", "wrap_up", "paused")

# agent inputs
A_LOGIN, A_LOGOUT, A_READY, A_PAUSE, A_OFFER, A_ANSWER, A_DECLINE, A_CANCEL, \
    A_CALL_END, A_WRAP_DONE, A_AUTOPAUSE, A_OUTBOUND, A_PICKUP = range(13)
AGENT_INPUT_NAMES = ("login", "logout", "ready", "pause", "offer", "answer",
                     "decline", "cancel", "call_end", "wrap_done", "autopause",
                     "outbound", "pickup")

AGENT_TRANSITIONS: dict[int, dict[int, int]] = {
    LOGGED_OUT: {
        A_LOGIN: AVAILABLE,
    },
    AVAILABLE: {
        A_LOGOUT: LOGGED_OUT,
        A_READY: AVAILABLE,        # also ends a reject delay early
        A_PAUSE: PAUSED,
        A_OFFER: OFFERED,
        A_WRAP_DONE: AVAILABLE,    # race: agent pressed "done" as the timer ran out
        A_AUTOPAUSE: PAUSED,
        A_OUTBOUND: BUSY,          # click-to-call
        A_PICKUP: BUSY,
    },
    OFFERED: {
        A_LOGOUT: LOGGED_OUT,      # the offer is cancelled
        A_READY: OFFERED,
        A_PAUSE: PAUSED,           # the offer is cancelled
        A_ANSWER: BUSY,
        A_DECLINE: AVAILABLE,      # reject or ring timeout
        A_CANCEL: AVAILABLE,       # engine withdrew the offer
        A_WRAP_DONE: OFFERED,      # race: "done" pressed as the wrap-up timer offered a call
    },
    BUSY: {
        A_LOGOUT: LOGGED_OUT,      # the call goes on without an agent record
        A_READY: BUSY,             # clears a pending pause
        A_PAUSE: BUSY,             # pending pause
        A_CALL_END: WRAP_UP,       # a queue call or an outbound call ended
        A_WRAP_DONE: BUSY,         # race, as for OFFERED
    },
    WRAP_UP: {
        A_LOGOUT: LOGGED_OUT,
        A_READY: AVAILABLE,
        A_PAUSE: PAUSED,
        A_WRAP_DONE: AVAILABLE,
        A_OUTBOUND: BUSY,          # calling back during after-call work
        A_PICKUP: BUSY,            # wrap-up is cut short by the agent's own choice
    },
    PAUSED: {
        A_LOGOUT: LOGGED_OUT,
        A_READY: AVAILABLE,
        A_PAUSE: PAUSED,           # new reason
        A_WRAP_DONE: PAUSED,       # race, as for AVAILABLE
        A_OUTBOUND: BUSY,          # the pause reason becomes the pending pause
        A_PICKUP: BUSY,            # the pause comes back after the call (pending)
    },
}

# --- caller -----------------------------------------------------------------
C_WAITING, C_OFFERED, C_TALKING, C_GONE = range(4)
CALL_STATE_NAMES = ("waiting", "offered", "talking", "gone")

# caller inputs
C_OFFER, C_LOST, C_ANSWER, C_ABANDON, C_WITHDRAW, C_EXIT, C_END, C_RELAX, \
    C_CALLBACK, C_PICKUP = range(10)
CALL_INPUT_NAMES = ("offer", "lost", "answer", "abandon", "withdraw", "exit",
                    "end", "relax", "callback", "pickup")

CALL_TRANSITIONS: dict[int, dict[int, int]] = {
    C_WAITING: {
        C_OFFER: C_OFFERED,
        C_RELAX: C_WAITING,
        C_CALLBACK: C_WAITING,
        C_ABANDON: C_GONE,
        C_WITHDRAW: C_GONE,
        C_EXIT: C_GONE,
    },
    C_OFFERED: {
        C_ANSWER: C_TALKING,
        C_PICKUP: C_TALKING,       # another agent picked the ringing call up
        C_LOST: C_WAITING,         # every offer was rejected, timed out or cancelled
        C_RELAX: C_OFFERED,        # applies when the call is back to waiting
        C_CALLBACK: C_OFFERED,     # the offers are then cancelled (LOST)
        C_ABANDON: C_GONE,
        C_WITHDRAW: C_GONE,
    },
    C_TALKING: {
        C_END: C_GONE,
    },
    C_GONE: {},
}

SERVING_STATES = frozenset({AVAILABLE, OFFERED, BUSY, WRAP_UP})
"""An agent in these states serves its queues (a queue with none is "empty")."""


def agent_next(state: int, inp: int) -> int:
    try:
        return AGENT_TRANSITIONS[state][inp]
    except KeyError:
        raise InvalidTransition(
            f"agent cannot {AGENT_INPUT_NAMES[inp]} while {AGENT_STATE_NAMES[state]}"
        ) from None


def call_next(state: int, inp: int) -> int:
    try:
        return CALL_TRANSITIONS[state][inp]
    except KeyError:
        raise InvalidTransition(
            f"call cannot {CALL_INPUT_NAMES[inp]} while {CALL_STATE_NAMES[state]}"
        ) from None


def flat_table(table: dict[int, dict[int, int]], n_states: int, n_inputs: int) -> list[int]:
    """Row-major ``state * n_inputs + input -> new state`` with -1 for "impossible"."""
    flat = [-1] * (n_states * n_inputs)
    for s, row in table.items():
        for i, ns in row.items():
            flat[s * n_inputs + i] = ns
    return flat
