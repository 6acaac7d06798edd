"""acdcore: the sans-I/O ACD scheduler (events in, actions out)."""
from .actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                      OfferTimedOut, WrapUpEnded)
from .errors import AcdError, InvalidTransition, UnknownAgent, UnknownCall, UnknownQueue
from .events import (AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentReady,
                     CallAbandoned, CallArrived, CallbackRequested, CallEnded,
                     CallWithdrawn, OfferAnswered, OfferRejected, Tick, WrapUpDone)
from .model import AgentConfig, QueueConfig, Strategy
from .reference import ReferenceScheduler
from .scheduler import COMPILED, Scheduler

__all__ = [
    "AcdError", "AgentAutoPaused", "AgentConfig", "AgentLoggedIn", "AgentLoggedOut",
    "AgentPaused", "AgentReady", "COMPILED", "CallAbandoned", "CallArrived",
    "CallEnded", "CallExited", "CallWithdrawn", "CallbackRequested", "CancelOffer",
    "Connect", "InvalidTransition", "Offer", "OfferAnswered", "OfferRejected",
    "OfferTimedOut", "QueueConfig", "ReferenceScheduler", "Scheduler", "Strategy",
    "Tick", "UnknownAgent", "UnknownCall", "UnknownQueue", "WrapUpDone", "WrapUpEnded",
]
