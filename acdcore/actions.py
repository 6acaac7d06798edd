"""Actions: what the scheduler asks the runtime to do.

Actions are small immutable tuples (cheap to build from Cython).  Two actions
are equal only if they have the same type *and* the same fields, so
``Connect("c", "a") != OfferTimedOut("c", "a")``.

CancelOffer reasons: ``answered_elsewhere`` (ring-all loser), ``caller_gone``
(abandon or callback request while ringing), ``withdrawn``,
``agent_logged_out``, ``agent_paused``, ``picked_up`` (another agent took
the ringing call: CallPickedUp); a late answer to an offer that
already timed out is cancelled with ``timeout``.
CallExited reasons: ``timeout``, ``full``, ``empty``.
"""
from __future__ import annotations

from typing import NamedTuple


class Offer(NamedTuple):
    call_id: str
    agent_id: str
    callback: bool = False   # the runtime calls the agent first, then the customer


class CancelOffer(NamedTuple):
    call_id: str
    agent_id: str
    reason: str


class Connect(NamedTuple):
    call_id: str
    agent_id: str


class CallExited(NamedTuple):
    call_id: str
    queue: str
    reason: str


class AgentAutoPaused(NamedTuple):
    agent_id: str
    reason: str


class WrapUpEnded(NamedTuple):
    agent_id: str


class OfferTimedOut(NamedTuple):
    """Ring timeout: the agent's leg should stop ringing; the engine reoffers."""
    call_id: str
    agent_id: str


ACTION_TYPES = (Offer, CancelOffer, Connect, CallExited, AgentAutoPaused,
                WrapUpEnded, OfferTimedOut)


def _eq(self, other):
    return type(self) is type(other) and tuple.__eq__(self, other)


def _ne(self, other):
    return not _eq(self, other)


def _hash(self):
    return hash((type(self).__name__, tuple(self)))


for _cls in ACTION_TYPES:
    _cls.__eq__ = _eq
    _cls.__ne__ = _ne
    _cls.__hash__ = _hash
del _cls
