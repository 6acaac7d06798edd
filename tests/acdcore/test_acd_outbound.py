"""Outbound calls (click-to-call) in the core, on both engines: who may dial,
no offers while dialling, wrap-up afterwards, back to paused when paused
(states.py, "Outbound calls")."""
from __future__ import annotations

import pytest
from conftest import Centre

from acdcore import (AcdError, AgentConfig, AgentLoggedIn, AgentLoggedOut, AgentOutbound,
                     AgentPaused, AgentReady, CallArrived, CallEnded, InvalidTransition,
                     Offer, OfferAnswered, OutboundEnded, QueueConfig, Tick, WrapUpDone,
                     WrapUpEnded)


def test_dialling_agent_gets_no_offer_then_wraps_up(centre):
    c = centre(n_agents=1, wrap_up=4.0)
    assert c(AgentOutbound(1, "a0")) == []
    assert c.s.agent_state("a0") == "busy"
    assert c(CallArrived(2, "c1", "q")) == []          # waits: the agent is on the phone
    assert c.s.call_state("c1") == "waiting"
    assert c(OutboundEnded(10, "a0")) == []
    assert c.s.agent_state("a0") == "wrap_up"
    assert c(Tick(13.9)) == []
    assert c(Tick(14)) == [WrapUpEnded("a0"), Offer("c1", "a0")]


def test_no_wrap_up_configured_frees_the_agent_at_once(centre):
    c = centre(n_agents=1)
    c(CallArrived(0.5, "x", "q"))
    c(OfferAnswered(0.6, "x", "a0"))
    c(CallEnded(0.7, "x"))                             # wrap_up 0: available again
    c(AgentOutbound(1, "a0"))
    c(CallArrived(2, "c1", "q"))
    assert c(OutboundEnded(3, "a0")) == [Offer("c1", "a0")]


def test_paused_agent_returns_to_paused_with_its_reason(centre):
    c = centre(n_agents=1, wrap_up=2.0)
    c(AgentPaused(1, "a0", "lunch"))
    c(AgentOutbound(2, "a0"))
    assert c.s.agent_state("a0") == "busy"
    c(CallArrived(3, "c1", "q"))
    c(OutboundEnded(5, "a0"))
    assert c.s.agent_state("a0") == "wrap_up"
    assert c(Tick(7)) == [WrapUpEnded("a0")]
    assert c.s.agent_state("a0") == "paused"
    assert c.s.agent_pause_reason("a0") == "lunch"
    assert c.s.call_state("c1") == "waiting"


def test_ready_during_the_call_cancels_the_return_to_paused(centre):
    c = centre(n_agents=1)
    c(AgentPaused(1, "a0", "lunch"))
    c(AgentOutbound(2, "a0"))
    c(AgentReady(3, "a0"))
    c(CallArrived(4, "c1", "q"))
    assert c(OutboundEnded(5, "a0")) == [Offer("c1", "a0")]


def test_dialling_from_wrap_up_is_allowed_and_restarts_wrap_up(centre):
    c = centre(n_agents=1, wrap_up=5.0)
    c(CallArrived(1, "c1", "q"))
    c(OfferAnswered(1, "c1", "a0"))
    c(CallEnded(2, "c1"))
    c(AgentOutbound(3, "a0"))
    assert c(Tick(8)) == []                            # the old wrap-up timer is dead
    assert c.s.agent_state("a0") == "busy"
    c(OutboundEnded(9, "a0"))
    assert c(Tick(14)) == [WrapUpEnded("a0")]
    assert c.s.agent_state("a0") == "available"


@pytest.mark.parametrize("setup,state", [
    ("offered", "offered"), ("busy", "busy"), ("logged_out", "logged_out"),
    ("dialling", "busy")])
def test_who_may_not_dial(centre, setup, state):
    c = centre(n_agents=1, login=setup != "logged_out")
    if setup in ("offered", "busy"):
        c(CallArrived(1, "c1", "q"))
        if setup == "busy":
            c(OfferAnswered(1, "c1", "a0"))
    if setup == "dialling":
        c(AgentOutbound(1, "a0"))
    with pytest.raises(InvalidTransition, match="cannot outbound while " + state):
        c(AgentOutbound(2, "a0"))
    assert c.s.agent_state("a0") == state


def test_end_without_a_call_raises_and_changes_nothing(centre):
    c = centre(n_agents=1)
    with pytest.raises(AcdError, match="not on an outbound call"):
        c(OutboundEnded(1, "a0"))
    c(CallArrived(2, "c1", "q"))
    c(OfferAnswered(2, "c1", "a0"))
    with pytest.raises(AcdError, match="not on an outbound call"):
        c(OutboundEnded(3, "a0"))                       # a queue call is not ended this way
    assert c.s.agent_state("a0") == "busy"


def test_logout_during_the_call_then_its_end_is_ignored(centre):
    c = centre(n_agents=1)
    c(AgentOutbound(1, "a0"))
    c(AgentLoggedOut(2, "a0"))
    c(AgentLoggedIn(3, "a0"))
    assert c(OutboundEnded(4, "a0")) == []
    assert c.s.agent_state("a0") == "available"
    with pytest.raises(AcdError):
        c(OutboundEnded(5, "a0"))                       # only once


def test_wrap_up_is_the_agents_own_else_its_first_queues(engine):
    queues = [QueueConfig("sales", wrap_up=3.0), QueueConfig("help", wrap_up=9.0)]
    agents = [AgentConfig("own", {"help": 0, "sales": 0}, wrap_up=1.0),
              AgentConfig("first", {"sales": 0, "help": 0}),
              AgentConfig("none")]
    c = Centre(engine, queues, agents)
    for a in ("own", "first", "none"):
        c(AgentOutbound(1, a))
        c(OutboundEnded(2, a))
    assert c.s.agent_state("none") == "available"
    assert c(Tick(3)) == [WrapUpEnded("own")]
    assert c(Tick(5)) == [WrapUpEnded("first")]


def test_wrap_up_done_ends_it_early(centre):
    c = centre(n_agents=1, wrap_up=30.0)
    c(AgentOutbound(1, "a0"))
    c(OutboundEnded(2, "a0"))
    c(CallArrived(3, "c1", "q"))
    assert c(WrapUpDone(4, "a0")) == [Offer("c1", "a0")]


def test_agent_never_on_the_call_is_back_at_once(centre):
    c = centre(n_agents=2, wrap_up=30.0)
    c(AgentPaused(1, "a1", "training"))
    c(AgentOutbound(2, "a0"))
    c(AgentOutbound(2, "a1"))
    c(CallArrived(3, "c1", "q"))
    assert c(OutboundEnded(4, "a0", wrap_up=False)) == [Offer("c1", "a0")]
    assert c(OutboundEnded(4, "a1", wrap_up=False)) == []
    assert c.s.agent_state("a1") == "paused"
    assert c.s.agent_pause_reason("a1") == "training"
