"""Errors raised by the ACD core.

The core raises only for events that cannot happen in a correct runtime
(an unknown agent, answering an offer that never existed, a transition the
state table forbids).  Races the real world produces -- an agent answering
an offer the engine already cancelled, a reject arriving after a ring
timeout -- are *not* errors: they produce actions (see reference.py).
"""


class AcdError(Exception):
    """Base class: the event makes no sense for the current state.

    The scheduler is unchanged by the bad event itself, but timers due before
    it have fired: their actions are in ``exc.actions`` (a list, possibly
    empty) and must still be executed.
    """

    actions: list = []


class UnknownCall(AcdError, KeyError):
    """The call id is not (or no longer) known to the scheduler."""


class UnknownAgent(AcdError, KeyError):
    """The agent id is not configured."""


class UnknownQueue(AcdError, KeyError):
    """The queue name is not configured."""


class InvalidTransition(AcdError):
    """The agent or caller state table has no entry for this input."""


class PickupRefused(AcdError):
    """Nothing to pick up: the call is not ringing (answered, gone, only
    waiting, unknown) or the picking agent does not serve its queue.  The
    scheduler is unchanged; a runtime tells the agent "nothing to pick up"."""
