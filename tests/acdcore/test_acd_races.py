"""Network races resolve to actions; impossible events raise AcdError."""
from __future__ import annotations

import pytest

from acdcore import (AcdError, AgentConfig, AgentLoggedIn, AgentLoggedOut, AgentReady,
                     CallAbandoned, CallArrived, CallEnded, CancelOffer, Connect,
                     InvalidTransition, Offer, OfferAnswered, OfferRejected, OfferTimedOut,
                     QueueConfig, Tick, UnknownAgent, UnknownCall, UnknownQueue, WrapUpDone)


def test_answer_after_the_caller_abandoned_is_cancelled(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))
    assert c(CallAbandoned(2, "c1")) == [CancelOffer("c1", "a0", "caller_gone")]
    assert c(OfferAnswered(2.1, "c1", "a0")) == [CancelOffer("c1", "a0", "caller_gone")]
    assert c.s.agent_state("a0") == "available"


def test_answer_after_the_ring_timeout_is_cancelled(centre):
    c = centre(n_agents=2, strategy="linear", ring_timeout=5)
    c(CallArrived(0, "c1", "q"))
    assert c(Tick(5)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a1")]
    assert c(OfferAnswered(5.1, "c1", "a0")) == [CancelOffer("c1", "a0", "timeout")]
    assert c(OfferAnswered(5.2, "c1", "a1")) == [Connect("c1", "a1")]


def test_answer_after_a_timeout_that_reoffered_to_the_same_agent_connects(centre):
    c = centre(n_agents=1, ring_timeout=5)
    c(CallArrived(0, "c1", "q"))
    assert c(Tick(5)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a0")]
    assert c(OfferAnswered(5.1, "c1", "a0")) == [Connect("c1", "a0")]


def test_late_reject_of_a_cancelled_offer_is_ignored(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))
    c(CallAbandoned(2, "c1"))
    assert c(OfferRejected(3, "c1", "a0")) == []


def test_answer_after_agent_logout_is_cancelled(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))
    c(AgentLoggedOut(2, "a0"))
    assert c(OfferAnswered(2.5, "c1", "a0")) == [CancelOffer("c1", "a0", "agent_logged_out")]
    assert c.s.agent_state("a0") == "logged_out"


def test_unknown_ids_raise(centre):
    c = centre(n_agents=1)
    with pytest.raises(UnknownAgent):
        c(AgentReady(1, "nobody"))
    with pytest.raises(UnknownCall):
        c(CallEnded(1, "nothing"))
    with pytest.raises(UnknownQueue):
        c(CallArrived(1, "c1", "no-such-queue"))
    assert c(CallArrived(2, "c1", "q")) == [Offer("c1", "a0")]   # the id was not burnt


def test_answering_an_offer_that_never_existed_raises(centre):
    c = centre(n_agents=2, strategy="linear")
    c(CallArrived(1, "c1", "q"))                 # offered to a0 only
    with pytest.raises(AcdError):
        c(OfferAnswered(2, "c1", "a1"))
    with pytest.raises(AcdError):
        c(OfferRejected(2, "c1", "a1"))
    c.s.check_invariants()


def test_duplicate_call_raises(centre):
    c = centre(n_agents=0)
    c(CallArrived(1, "c1", "q"))
    with pytest.raises(AcdError):
        c(CallArrived(2, "c1", "q"))
    assert c.s.waiting_count("q") == 1


@pytest.mark.parametrize("event", [
    AgentReady(1, "a0"), AgentLoggedOut(1, "a0"), WrapUpDone(1, "a0")])
def test_impossible_agent_transitions_raise(centre, event):
    c = centre(n_agents=1, login=False)
    with pytest.raises(InvalidTransition):
        c(event)
    assert c.s.agent_state("a0") == "logged_out"


def test_impossible_call_transitions_raise(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))
    with pytest.raises(InvalidTransition):
        c(CallEnded(2, "c1"))                     # ringing, not talking
    c(OfferAnswered(2, "c1", "a0"))
    with pytest.raises(InvalidTransition):
        c(CallAbandoned(3, "c1"))                 # talking: that is CallEnded
    assert c(CallEnded(4, "c1")) == []
    with pytest.raises(InvalidTransition):
        c(AgentLoggedIn(5, "a0"))                 # already logged in


def test_error_keeps_actions_of_timers_that_fired_first(centre):
    c = centre(n_agents=0, max_wait=10)
    c(CallArrived(0, "c1", "q"))
    with pytest.raises(UnknownAgent) as info:
        c(AgentReady(20, "ghost"))
    assert info.value.actions == [__import__("acdcore").CallExited("c1", "q", "timeout")]


def test_time_going_backwards_is_treated_as_now(centre):
    c = centre(n_agents=0, max_wait=10)
    c(CallArrived(5, "c1", "q"))
    c(CallArrived(3, "c2", "q"))                  # clock jitter
    assert c.s.oldest_wait_start("q") == 5
    assert c(Tick(15)) == [__import__("acdcore").CallExited("c1", "q", "timeout"),
                           __import__("acdcore").CallExited("c2", "q", "timeout")]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError):
        QueueConfig("q", ring_timeout=0)
    with pytest.raises(ValueError):
        QueueConfig("q", strategy="fastest")
    with pytest.raises(ValueError):
        AgentConfig("a", {"q": 0}, weight=0)


def test_unknown_queue_in_agent_config(engine):
    with pytest.raises(UnknownQueue):
        engine([QueueConfig("q")], [AgentConfig("a", {"elsewhere": 0})])
