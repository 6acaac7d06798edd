"""Call pickup (CallPickedUp): an agent takes a call ringing someone else.

Every case runs against both engines (the ``centre`` fixture).  The rules
are in acdcore/states.py, "Pickup".
"""
from __future__ import annotations

import pytest

from acdcore import (AgentConfig, AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentReady, CallAbandoned,
                     CallArrived, CallEnded, CallPickedUp, CancelOffer, Connect,
                     InvalidTransition, Offer, OfferAnswered, PickupRefused, QueueConfig,
                     Tick, UnknownAgent, WrapUpDone)


def ringing_a0(centre, **kw):
    """a0 rings with c1 (linear: a0 first); a1 and a2 are available."""
    c = centre(strategy="linear", n_agents=3, ring_timeout=30, **kw)
    assert c(CallArrived(1, "c1", "q")) == [Offer("c1", "a0")]
    return c


def test_pickup_connects_the_picker_and_cancels_the_ringing_offer(centre):
    c = ringing_a0(centre)
    assert c(CallPickedUp(2, "c1", "a1")) == [Connect("c1", "a1"),
                                              CancelOffer("c1", "a0", "picked_up")]
    assert c.s.call_state("c1") == "talking"
    assert c.s.agent_state("a1") == "busy"
    assert c.s.agent_state("a0") == "available"
    assert c.s.waiting_count("q") == 0
    assert c.s.queue_position("c1") is None
    # The ring timeout of the picked-up offer is dead.
    assert c(Tick(100)) == []
    assert c(CallEnded(110, "c1")) == []
    assert c.s.agent_state("a1") == "available"


def test_the_loser_of_a_pickup_takes_the_next_call(centre):
    c = ringing_a0(centre)
    c(CallArrived(1.5, "c2", "q"))   # rings a1 (linear: the next free)
    out = c(CallPickedUp(2, "c1", "a2"))
    assert out == [Connect("c1", "a2"), CancelOffer("c1", "a0", "picked_up")]
    assert c.s.agent_state("a0") == "available"
    c(CallPickedUp(3, "c2", "a0"))
    assert [c.s.agent_state(a) for a in ("a0", "a1", "a2")] == ["busy", "available", "busy"]


def test_the_second_pickup_of_the_same_call_is_refused(centre):
    c = ringing_a0(centre)
    c(CallPickedUp(2, "c1", "a1"))
    with pytest.raises(PickupRefused):
        c(CallPickedUp(2, "c1", "a2"))
    assert c.s.agent_state("a2") == "available"
    assert c.s.agent_state("a1") == "busy"
    c.s.check_invariants()


def test_a_late_answer_of_the_picked_up_offer_is_cancelled(centre):
    c = ringing_a0(centre)
    c(CallPickedUp(2, "c1", "a1"))
    assert c(OfferAnswered(2.1, "c1", "a0")) == [CancelOffer("c1", "a0", "picked_up")]
    assert c.s.agent_state("a0") == "available"


@pytest.mark.parametrize("why", ["answered", "gone", "unknown", "waiting"])
def test_nothing_to_pick_up(centre, why):
    c = centre(strategy="linear", n_agents=2, ring_timeout=30)
    c(AgentPaused(0.5, "a1"))
    c(CallArrived(1, "c1", "q"))
    if why == "answered":
        c(OfferAnswered(1.5, "c1", "a0"))
    elif why == "gone":
        c(CallAbandoned(1.5, "c1"))
    elif why == "waiting":
        c(CallArrived(1.2, "c2", "q"))   # a0 rings with c1: c2 waits
    call = {"unknown": "nope", "waiting": "c2"}.get(why, "c1")
    before = [c.s.agent_state(a) for a in ("a0", "a1")]
    with pytest.raises(PickupRefused):
        c(CallPickedUp(2, call, "a1"))
    assert [c.s.agent_state(a) for a in ("a0", "a1")] == before
    c.s.check_invariants()


def test_ring_all_pickup_cancels_every_ringing_agent(centre):
    c = centre(strategy="ring_all", n_agents=3, ring_timeout=30)
    c(AgentPaused(0.5, "a2"))
    assert sorted(c(CallArrived(1, "c1", "q"))) == sorted([Offer("c1", "a0"),
                                                          Offer("c1", "a1")])
    out = c(CallPickedUp(2, "c1", "a2"))
    assert out[0] == Connect("c1", "a2")
    assert sorted(out[1:]) == sorted([CancelOffer("c1", "a0", "picked_up"),
                                      CancelOffer("c1", "a1", "picked_up")])


def test_a_paused_picker_is_paused_again_after_the_call(centre):
    c = ringing_a0(centre, wrap_up=5)
    c(AgentPaused(1.5, "a1", "lunch"))
    c(CallPickedUp(2, "c1", "a1"))
    assert c.s.agent_state("a1") == "busy"
    c(CallEnded(10, "c1"))
    assert c.s.agent_state("a1") == "wrap_up"
    c(Tick(15))
    assert c.s.agent_state("a1") == "paused"
    assert c.s.agent_pause_reason("a1") == "lunch"


def test_ready_during_the_wrap_up_drops_the_returning_pause(centre):
    c = ringing_a0(centre, wrap_up=5)
    c(AgentPaused(1.5, "a1", "lunch"))
    c(CallPickedUp(2, "c1", "a1"))
    c(CallEnded(10, "c1"))
    c(AgentReady(11, "a1"))
    assert c.s.agent_state("a1") == "available"


def test_pickup_from_wrap_up_cuts_it_short(centre):
    c = centre(strategy="linear", n_agents=2, ring_timeout=30, wrap_up=60)
    c(CallArrived(1, "c1", "q"))
    c(OfferAnswered(2, "c1", "a0"))
    c(CallEnded(3, "c1"))
    assert c.s.agent_state("a0") == "wrap_up"
    c(CallArrived(4, "c2", "q"))                  # rings a1
    assert c(CallPickedUp(5, "c2", "a0")) == [Connect("c2", "a0"),
                                              CancelOffer("c2", "a1", "picked_up")]
    assert c(Tick(63)) == []                      # the old wrap-up timer is dead
    assert c.s.agent_state("a0") == "busy"
    c(WrapUpDone(64, "a0"))                       # a stray "done": still busy
    assert c.s.agent_state("a0") == "busy"


@pytest.mark.parametrize("state", ["logged_out", "offered", "busy"])
def test_agents_who_cannot_pick_up(centre, state):
    c = centre(strategy="linear", n_agents=3, ring_timeout=30)
    if state == "logged_out":
        c(AgentLoggedOut(0.5, "a2"))
    c(CallArrived(1, "c1", "q"))                  # a0 rings
    picker = "a2"
    if state == "offered":
        c(CallArrived(1.1, "c2", "q"))            # a1 rings with c2
        picker = "a1"
    elif state == "busy":
        c(CallArrived(1.1, "c2", "q"))
        c(OfferAnswered(1.2, "c2", "a1"))
        picker = "a1"
    with pytest.raises(InvalidTransition):
        c(CallPickedUp(2, "c1", picker))
    assert c.s.agent_state(picker) == state
    assert c.s.call_state("c1") == "offered"
    c.s.check_invariants()


def test_only_members_of_the_calls_queue_may_pick_up(engine):
    qs = [QueueConfig("sales", "linear", ring_timeout=30), QueueConfig("support")]
    agents = [AgentConfig("a0", {"sales": 0}), AgentConfig("a1", {"support": 0})]
    s = engine(qs, agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    s.handle(CallArrived(1, "c1", "sales"))
    with pytest.raises(PickupRefused, match="does not serve"):
        s.handle(CallPickedUp(2, "c1", "a1"))
    with pytest.raises(UnknownAgent):
        s.handle(CallPickedUp(2, "c1", "nobody"))
    assert s.call_state("c1") == "offered"
    s.check_invariants()
