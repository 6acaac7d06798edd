"""A caller's place in a queue, and the one table its state moves by.

Theory of operation
-------------------
The ACD core keeps its own caller state (acdcore/states.py: waiting, offered,
talking, gone) for choosing agents.  This is the runtime's side of the same
caller: what the live call, the callback code and the outcome accounting
need to know.  Its states answer one question each place asks:

    WAITING     in line, no outcome counted yet: a live caller on hold, or a
                web callback waiting for its turn.  Only here can the caller
                press a key, abandon, or be sent away by shutdown.
    CALLBACK    the live caller pressed the callback key: the outcome
                "callback" is counted, the live call leaves, the place in
                line is kept.  (A web callback never passes here: it has no
                live call, and its outcome is counted when it ends.)
    TALKING     an agent answered.  For a callback: the agent is on the line
                and the customer is being dialled, or talking.
    OVER        the talk ended (either side hung up, or the agent transferred
                the caller on: ``transfer`` then says where), or a callback
                customer did not answer.  Final.
    EXITED      left the line without an agent: the ACD's exit reasons
                (timeout, full, empty), the exit key, or shutdown.  Final;
                ``exit_reason`` says which.
    ABANDONED   the live caller hung up while waiting.  Final.

Every change goes through ``QueueEntry.advance(event)``, which looks the pair
``(state, event)`` up in ``TRANSITIONS`` below; a pair with no entry is a bug
in the runtime and raises ``InvalidEntryTransition`` at once, naming the
entry, its state and the event.  ``exit_reason`` is set by the same call, so
the state and the reason never disagree.  Nothing outside this module
assigns ``state`` or ``exit_reason``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from sipagent.queue.conversation import Conversation
    from sipagent.queue.hold import CallerHold
    from sipagent.queue.transfer import TransferOrder
    from sipagent.sip.leg import CallLeg


class EntryState(Enum):
    WAITING = "waiting"
    CALLBACK = "callback"
    TALKING = "talking"
    OVER = "over"
    EXITED = "exited"
    ABANDONED = "abandoned"


class EntryEvent(Enum):
    CONNECTED = "connected"                  # the ACD connected an agent who answered
    CALLBACK_REQUESTED = "callback_requested"  # the caller pressed the callback key
    EXIT = "exit"                            # the ACD sent the call out (reason given)
    EXIT_KEY = "exit_key"                    # the caller pressed the exit key
    SHUTDOWN = "shutdown"                    # the engine stops with the caller in line
    ABANDONED = "abandoned"                  # the caller hung up while waiting
    HUNG_UP = "hung_up"                      # caller, customer or agent ended the talk
    NO_ANSWER = "no_answer"                  # a callback customer did not answer
    TRANSFERRED = "transferred"              # the agent handed the caller on (blind)


S, E = EntryState, EntryEvent

TRANSITIONS: dict[EntryState, dict[EntryEvent, EntryState]] = {
    S.WAITING: {
        E.CONNECTED: S.TALKING,
        E.CALLBACK_REQUESTED: S.CALLBACK,
        E.EXIT: S.EXITED,
        E.EXIT_KEY: S.EXITED,
        E.SHUTDOWN: S.EXITED,
        E.ABANDONED: S.ABANDONED,
    },
    S.CALLBACK: {
        E.CONNECTED: S.TALKING,
        E.EXIT: S.EXITED,          # timed out of its queue: nobody will call back
    },
    S.TALKING: {
        E.HUNG_UP: S.OVER,
        E.NO_ANSWER: S.OVER,
        E.TRANSFERRED: S.OVER,
    },
    S.OVER: {
        # Race: the agent hung up while the customer was still ringing; the
        # cancelled ring then ends the attempt as unanswered (and retried).
        E.NO_ANSWER: S.OVER,
    },
    S.EXITED: {},
    S.ABANDONED: {},
}

# The exit reason an event sets; EXIT carries the ACD's own reason.
EXIT_REASONS = {E.CALLBACK_REQUESTED: "callback", E.EXIT_KEY: "exit_key",
                E.SHUTDOWN: "shutdown"}

del S, E


class InvalidEntryTransition(RuntimeError):
    """The entry table has no move for this event in this state."""


@dataclass
class CallbackJob:
    """One customer's callback request, through all its attempts (one call id)."""
    number: str
    origin: str            # "queue" (key pressed) or "web"
    attempts: int = 0

    @property
    def outcome_counted(self) -> bool:
        """Whether the request's one queue outcome is already counted: a key
        pressed in the queue is the live call's EXIT "callback"; a web
        request is counted when it ends (answered, or no answer at last)."""
        return self.origin == "queue"


@dataclass
class QueueEntry:
    call_id: str
    queue: str
    entered: float
    caller: str
    called: str
    data: Mapping[str, str]
    call: object | None = None          # the live SipCall; None for a callback entry
    callback: CallbackJob | None = None
    hold: CallerHold | None = None
    agent_id: str | None = None
    agent_leg: CallLeg | None = None
    customer_leg: CallLeg | None = None   # callbacks: the customer dialled back
    answered_at: float | None = None
    conversation: Conversation | None = None   # while TALKING: the legs and their audio
    transfer: TransferOrder | None = None      # OVER by a transfer: where the caller goes
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _state: EntryState = field(default=EntryState.WAITING, init=False)
    _exit_reason: str | None = field(default=None, init=False)

    @property
    def state(self) -> EntryState:
        return self._state

    @property
    def exit_reason(self) -> str | None:
        """Why the entry left the line without an agent ("callback" included)."""
        return self._exit_reason

    def advance(self, event: EntryEvent, reason: str | None = None) -> EntryState:
        """Move by the table; ``reason`` only with ``EXIT`` (the ACD's reason)."""
        if (event is EntryEvent.EXIT) != (reason is not None):
            raise ValueError(f"entry {self.call_id}: {event.value} "
                             f"{'needs' if reason is None else 'takes no'} reason")
        try:
            new = TRANSITIONS[self._state][event]
        except KeyError:
            raise InvalidEntryTransition(
                f"queue entry {self.call_id} cannot {event.value} while {self._state.value}"
            ) from None
        self._state = new
        if event is EntryEvent.EXIT:
            self._exit_reason = reason
        elif event in EXIT_REASONS:
            self._exit_reason = EXIT_REASONS[event]
        return new


# Where a queue's exit reason sends the live caller, by config key.
TARGET_KEYS = {"timeout": "on_timeout", "full": "on_full", "empty": "on_empty"}


def exit_target(section, result: str) -> str | None:
    """The queue's configured target ("queue:x", "flow:x", "hangup[:prompt]")
    for a caller who left it with ``result``, or None to just return."""
    if result == "exit_key":
        return section.exit_flow and f"flow:{section.exit_flow}"
    return getattr(section, TARGET_KEYS.get(result, ""), None)


def agent_headers(entry: QueueEntry, caller_headers: Mapping[str, str]) -> dict[str, str]:
    """Caller data for the agent's screen pop; ``caller_headers`` maps the
    caller's SIP headers to the names the agent's phone gets them under."""
    headers = {"X-Sipacd-Call-Id": entry.call_id, "X-Sipacd-Caller": entry.caller or "anonymous",
               "X-Sipacd-Called": entry.called or "", "X-Sipacd-Queue": entry.queue}
    if entry.callback:
        headers["X-Sipacd-Callback"] = entry.caller
    for key, value in entry.data.items():
        headers[f"X-Sipacd-Var-{key}"] = str(value)
    if entry.call is not None:
        for theirs, ours in caller_headers.items():
            value = _header(entry.call.headers, theirs)
            if value is not None:
                headers[ours] = value
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)
