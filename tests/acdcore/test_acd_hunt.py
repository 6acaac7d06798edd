"""Hunting: after an agent fails a call (busy/reject or ring timeout), the call
goes to every other free agent that may take it before that agent again,
under every strategy (reference.py, "Hunting"); both engines."""
from __future__ import annotations

import pytest

from acdcore import (AgentConfig, AgentLoggedIn, CallArrived, CallEnded, Offer, OfferAnswered,
                     OfferRejected, QueueConfig, Strategy, Tick)
from acdcore.actions import AgentAutoPaused, OfferTimedOut

ONE_AT_A_TIME = [s for s in Strategy if s is not Strategy.RING_ALL]


def offered(actions):
    return [a.agent_id for a in actions if type(a) is Offer]


@pytest.mark.parametrize("autopause_after", [0, 2])
@pytest.mark.parametrize("strategy", ONE_AT_A_TIME, ids=lambda s: s.value)
def test_busy_then_no_answer_then_the_third_agent(centre, strategy, autopause_after):
    """The hardening issue's case: one phone answers 486, one rings forever;
    the third free agent must ring next, not the first one again."""
    c = centre(strategy, n_agents=3, seed=11, ring_timeout=5, autopause_after=autopause_after)
    (first,) = offered(c(CallArrived(0, "c1", "q")))
    (second,) = offered(c(OfferRejected(1, "c1", first, busy=True)))
    assert second != first
    out = c(Tick(6))
    assert out[0] == OfferTimedOut("c1", second)
    (third,) = offered(out)
    assert third not in (first, second)
    assert c(OfferAnswered(7, "c1", third))


def test_linear_hunts_down_the_list_then_starts_a_new_round(centre):
    c = centre("linear", n_agents=3, ring_timeout=5)
    assert c(CallArrived(0, "c1", "q")) == [Offer("c1", "a0")]
    assert c(OfferRejected(1, "c1", "a0", busy=True)) == [Offer("c1", "a1")]
    assert c(Tick(6)) == [OfferTimedOut("c1", "a1"), Offer("c1", "a2")]
    # Everyone failed: a new round from the top, which forgets the old one.
    assert c(Tick(11)) == [OfferTimedOut("c1", "a2"), Offer("c1", "a0")]
    assert c(OfferRejected(12, "c1", "a0")) == [Offer("c1", "a1")]


def test_a_new_round_forgets_who_failed_in_the_last_one(centre):
    c = centre("linear", n_agents=2)
    c(CallArrived(0, "c1", "q"))
    assert c(OfferRejected(1, "c1", "a0")) == [Offer("c1", "a1")]
    assert c(OfferRejected(2, "c1", "a1")) == [Offer("c1", "a0")]     # round 2
    assert c(OfferRejected(3, "c1", "a0")) == [Offer("c1", "a1")]


def test_a_lone_agent_gets_the_call_again(centre):
    c = centre("linear", n_agents=1, ring_timeout=5)
    assert c(CallArrived(0, "c1", "q")) == [Offer("c1", "a0")]
    assert c(OfferRejected(1, "c1", "a0", busy=True)) == [Offer("c1", "a0")]
    assert c(Tick(6)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a0")]
    assert c(Tick(11)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a0")]


def test_an_agent_freed_later_is_tried_before_a_failed_one(centre):
    c = centre("linear", n_agents=2, ring_timeout=5)
    c(CallArrived(0, "c0", "q"))
    c(OfferAnswered(0, "c0", "a0"))                       # a0 busy
    assert c(CallArrived(1, "c1", "q")) == [Offer("c1", "a1")]
    assert c(OfferRejected(2, "c1", "a1")) == [Offer("c1", "a1")]   # alone: new round
    assert c(CallEnded(3, "c0")) == []                    # a1 still rings c1
    assert c(Tick(7)) == [OfferTimedOut("c1", "a1"), Offer("c1", "a0")]


def test_autopause_does_not_decide_who_rings_next(centre):
    c = centre("linear", n_agents=3, ring_timeout=5, autopause_after=1)
    c(CallArrived(0, "c1", "q"))
    assert c(Tick(5)) == [OfferTimedOut("c1", "a0"), AgentAutoPaused("a0", "no_answer"),
                          Offer("c1", "a1")]
    assert c(Tick(10)) == [OfferTimedOut("c1", "a1"), AgentAutoPaused("a1", "no_answer"),
                           Offer("c1", "a2")]


def test_ring_all_rings_the_untried_tier_before_ringing_again(engine):
    q = QueueConfig("q", "ring_all", ring_timeout=5)
    agents = [AgentConfig("a0", {"q": 0}), AgentConfig("a1", {"q": 0}),
              AgentConfig("b", {"q": 1})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert offered(s.handle(CallArrived(1, "c1", "q"))) == ["a0", "a1"]
    assert offered(s.handle(Tick(6))) == ["b"]            # the backup tier, nobody else
    assert offered(s.handle(Tick(11))) == ["a0", "a1"]    # all failed: a new round
    s.check_invariants()


def test_ring_all_keeps_a_tiers_failed_members_quiet(engine):
    q = QueueConfig("q", "ring_all", ring_timeout=5)
    agents = [AgentConfig(f"a{i}", {"q": 0}) for i in range(3)]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    s.handle(CallArrived(0, "c0", "q"))
    s.handle(OfferAnswered(0, "c0", "a2"))                # a2 busy
    assert offered(s.handle(CallArrived(1, "c1", "q"))) == ["a0", "a1"]
    assert s.handle(OfferRejected(2, "c1", "a0", busy=True)) == []   # a1 still rings
    s.handle(CallEnded(3, "c0"))                          # a2 free, c1 is ringing
    assert offered(s.handle(Tick(6))) == ["a2"]           # a0 and a1 failed it
    s.check_invariants()


def test_skills_lane_hunts_only_among_eligible_agents(engine):
    q = QueueConfig("q", "linear", ring_timeout=5)
    agents = [AgentConfig("fr1", {"q": 0}, skills={"fr": 1}), AgentConfig("none", {"q": 0}),
              AgentConfig("fr2", {"q": 0}, skills={"fr": 3})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert offered(s.handle(CallArrived(1, "c1", "q", skills=("fr",)))) == ["fr1"]
    assert offered(s.handle(OfferRejected(2, "c1", "fr1"))) == ["fr2"]
    # Both French speakers failed: a new round among them, never "none".
    assert offered(s.handle(OfferRejected(3, "c1", "fr2"))) == ["fr1"]
    s.check_invariants()


def test_the_tried_set_survives_skill_relaxation(engine):
    q = QueueConfig("q", "linear", ring_timeout=5, skill_any_after=4)
    agents = [AgentConfig("fr", {"q": 0}, skills={"fr": 1}), AgentConfig("none", {"q": 1})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert offered(s.handle(CallArrived(0, "c1", "q", skills=("fr",)))) == ["fr"]
    # At 4 s the call relaxes to "any agent"; "fr" (better penalty) failed it.
    assert offered(s.handle(Tick(5))) == ["none"]
    s.check_invariants()
