"""acdcore: the sans-I/O ACD scheduler (events in, actions out).

Where things are (scheduler part):

* model.py -- QueueConfig, AgentConfig, Strategy (what each strategy means);
* events.py / actions.py -- what goes in and what comes out;
* states.py -- the agent and caller transition tables (theory of operation);
* scheduler.py -- ``Scheduler`` (compiled if built) and the full API;
* reference.py + ref_*.py -- the executable specification;
* _scheduler.pyx + _scheduler_*.pxi + _*.pxd -- the Cython engine;
* lanes.py, skills.py, ewt.py, rng.py -- matching lanes, skill classes, the
  EWT formula, the seeded PRNG shared by both engines.
"""
from .actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                      OfferTimedOut, WrapUpEnded)
from .errors import (AcdError, InvalidTransition, PickupRefused, UnknownAgent, UnknownCall,
                     UnknownQueue)
from .events import (AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentReady,
                     CallAbandoned, CallArrived, CallbackRequested, CallEnded,
                     CallPickedUp, CallWithdrawn, OfferAnswered, OfferRejected, Tick, WrapUpDone)
from .events import AgentOutbound, OutboundEnded
from .model import AgentConfig, QueueConfig, Strategy
from .reference import ReferenceScheduler
from .scheduler import COMPILED, Scheduler

__all__ = [
    "AcdError", "AgentAutoPaused", "AgentConfig", "AgentLoggedIn", "AgentLoggedOut",
    "AgentPaused", "AgentReady", "COMPILED", "CallAbandoned", "CallArrived",
    "CallEnded", "CallExited", "CallPickedUp", "CallWithdrawn", "CallbackRequested", "CancelOffer",
    "Connect", "InvalidTransition", "Offer", "OfferAnswered", "OfferRejected",
    "OfferTimedOut", "PickupRefused", "QueueConfig", "ReferenceScheduler", "Scheduler", "Strategy",
    "Tick", "UnknownAgent", "UnknownCall", "UnknownQueue", "WrapUpDone", "WrapUpEnded",
    "AgentOutbound", "OutboundEnded",
]
