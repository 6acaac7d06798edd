"""One test (or a few) per distribution strategy, on both engines."""
from __future__ import annotations

from collections import Counter

import pytest

from acdcore import (AgentConfig, AgentLoggedIn, CallArrived, CallEnded, CancelOffer,
                     Connect, Offer, OfferAnswered, QueueConfig, Strategy, Tick)
from acdcore.actions import OfferTimedOut


def serve(c, t, call_id, talk=1.0):
    """Arrive, answer at once, end after ``talk``: returns the agent that took it."""
    offers = [a for a in c(CallArrived(t, call_id, "q")) if type(a) is Offer]
    assert len(offers) == 1, offers
    agent = offers[0].agent_id
    assert c(OfferAnswered(t, call_id, agent)) == [Connect(call_id, agent)]
    c(CallEnded(t + talk, call_id))
    return agent


def test_linear_always_starts_from_the_top(centre):
    c = centre("linear")
    assert serve(c, 1, "c1") == "a0"
    assert serve(c, 5, "c2") == "a0"          # a0 free again: top of the list wins
    c(CallArrived(10, "c3", "q"))               # a0 rings...
    assert c(CallArrived(10, "c4", "q")) == [Offer("c4", "a1")]   # ...next free from the top


def test_linear_moves_down_the_list_after_a_ring_timeout(centre):
    c = centre("linear", ring_timeout=10)
    assert c(CallArrived(1, "c1", "q")) == [Offer("c1", "a0")]
    assert c(Tick(11)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a1")]


def test_round_robin_continues_after_the_last_agent_offered(centre):
    c = centre("round_robin")
    taken = [serve(c, 10 * i, f"c{i}") for i in range(7)]
    assert taken == ["a0", "a1", "a2", "a0", "a1", "a2", "a0"]


def test_round_robin_skips_busy_agents_and_wraps(centre):
    c = centre("round_robin", n_agents=4)
    c(CallArrived(1, "c1", "q"))                # a0 rings
    c(OfferAnswered(1, "c1", "a0"))
    assert serve(c, 2, "c2") == "a1"
    c(CallArrived(3, "c3", "q"))                # a2
    c(OfferAnswered(3, "c3", "a2"))
    assert serve(c, 4, "c4") == "a3"
    assert serve(c, 6, "c5") == "a1"            # wraps; a0 and a2 are busy


def test_ring_all_offers_everyone_and_one_winner_takes_the_call(centre):
    c = centre("ring_all")
    assert c(CallArrived(1, "c1", "q")) == [Offer("c1", "a0"), Offer("c1", "a1"),
                                             Offer("c1", "a2")]
    assert c(OfferAnswered(2, "c1", "a1")) == [
        Connect("c1", "a1"),
        CancelOffer("c1", "a0", "answered_elsewhere"),
        CancelOffer("c1", "a2", "answered_elsewhere"),
    ]
    # a0 answered at the same moment (a network race): told to hang up, never connected.
    assert c(OfferAnswered(2.01, "c1", "a0")) == [CancelOffer("c1", "a0", "answered_elsewhere")]
    connects = [a for a in c.log if type(a) is Connect]
    assert connects == [Connect("c1", "a1")]
    assert c.s.agent_state("a0") == "available" and c.s.agent_state("a1") == "busy"


def test_ring_all_rings_only_the_best_penalty_tier(engine):
    q = QueueConfig("q", "ring_all")
    agents = [AgentConfig("a0", {"q": 0}), AgentConfig("a1", {"q": 1}), AgentConfig("a2", {"q": 0})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert s.handle(CallArrived(1, "c1", "q")) == [Offer("c1", "a0"), Offer("c1", "a2")]
    assert s.handle(CallArrived(1, "c2", "q")) == [Offer("c2", "a1")]


def test_ring_all_timeout_rerings_everyone(centre):
    c = centre("ring_all", n_agents=2, ring_timeout=5)
    c(CallArrived(1, "c1", "q"))
    assert c(Tick(6)) == [OfferTimedOut("c1", "a0"), OfferTimedOut("c1", "a1"),
                          Offer("c1", "a0"), Offer("c1", "a1")]


def test_longest_idle_prefers_the_agent_whose_last_call_ended_first(engine):
    q = QueueConfig("q", "longest_idle")
    agents = [AgentConfig(f"a{i}", {"q": 0}) for i in range(3)]
    s = engine([q], agents)
    s.handle(AgentLoggedIn(0, "a2"))
    s.handle(AgentLoggedIn(1, "a0"))
    s.handle(AgentLoggedIn(2, "a1"))
    assert s.handle(CallArrived(3, "c1", "q")) == [Offer("c1", "a2")]
    s.handle(OfferAnswered(3, "c1", "a2"))
    s.handle(CallEnded(4, "c1"))               # a2 idle since 4, a0 since 1
    assert s.handle(CallArrived(5, "c2", "q")) == [Offer("c2", "a0")]


def test_fewest_calls(centre):
    c = centre("fewest_calls")
    assert [serve(c, 10 * i, f"c{i}") for i in range(3)] == ["a0", "a1", "a2"]
    # Everyone has one call now; a0 has been idle the longest.
    assert serve(c, 40, "c3") == "a0"
    assert serve(c, 50, "c4") == "a1"


def test_fewest_calls_counts_answered_calls(centre):
    c = centre("fewest_calls", n_agents=2)
    for i in range(3):
        assert serve(c, 10 * i, f"x{i}") in ("a0", "a1")
    counts = Counter(a.agent_id for a in c.log if type(a) is Connect)
    assert sorted(counts.values()) == [1, 2]
    fewer = min(counts, key=counts.get)
    assert serve(c, 100, "c") == fewer


def test_least_talk_time(centre):
    c = centre("least_talk_time")
    assert serve(c, 0, "c1", talk=100) == "a0"
    assert serve(c, 101, "c2", talk=10) == "a1"
    assert serve(c, 112, "c3", talk=50) == "a2"
    assert serve(c, 200, "c4", talk=1) == "a1"   # 10 s < 50 s < 100 s
    assert serve(c, 300, "c5", talk=1) == "a1"   # 11 s is still the least


def test_random_is_seeded_and_reproducible(engine):
    def picks(seed):
        q = QueueConfig("q", "random")
        agents = [AgentConfig(f"a{i}", {"q": 0}) for i in range(5)]
        s = engine([q], agents, seed=seed)
        for a in agents:
            s.handle(AgentLoggedIn(0, a.agent_id))
        out = []
        for i in range(30):
            (offer,) = s.handle(CallArrived(i, f"c{i}", "q"))
            out.append(offer.agent_id)
            s.handle(OfferAnswered(i, f"c{i}", offer.agent_id))
            s.handle(CallEnded(i + 0.5, f"c{i}"))
        return out
    assert picks(1) == picks(1)
    assert len({tuple(picks(seed)) for seed in range(4)}) > 1


def test_random_is_roughly_uniform(centre):
    c = centre("random", seed=7)
    counts = Counter(serve(c, i, f"c{i}", talk=0.1) for i in range(600))
    assert set(counts) == {"a0", "a1", "a2"}
    assert all(140 <= n <= 260 for n in counts.values()), counts


def test_weighted_random_follows_agent_weights(engine):
    q = QueueConfig("q", "weighted_random")
    agents = [AgentConfig("light", {"q": 0}, weight=1), AgentConfig("heavy", {"q": 0}, weight=3)]
    s = engine([q], agents, seed=3)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    counts = Counter()
    for i in range(2000):
        (offer,) = s.handle(CallArrived(i, f"c{i}", "q"))
        counts[offer.agent_id] += 1
        s.handle(OfferAnswered(i, f"c{i}", offer.agent_id))
        s.handle(CallEnded(i + 0.1, f"c{i}"))
    share = counts["heavy"] / 2000
    assert 0.70 <= share <= 0.80, counts


@pytest.mark.parametrize("strategy", list(Strategy))
def test_every_strategy_prefers_the_lower_penalty(engine, strategy):
    q = QueueConfig("q", strategy)
    agents = [AgentConfig("backup", {"q": 2}), AgentConfig("primary", {"q": 0})]
    s = engine([q], agents, seed=5)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert s.handle(CallArrived(1, "c1", "q")) == [Offer("c1", "primary")]
    assert s.handle(CallArrived(1, "c2", "q")) == [Offer("c2", "backup")]


def test_skills_strategy_ranks_by_proficiency(engine):
    q = QueueConfig("q", "skills")
    agents = [AgentConfig("junior", {"q": 0}, skills={"fr": 1}),
              AgentConfig("senior", {"q": 0}, skills={"fr": 5}),
              AgentConfig("none", {"q": 0})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert s.handle(CallArrived(1, "c1", "q", skills=(("fr", 1),))) == [Offer("c1", "senior")]
    assert s.handle(CallArrived(1, "c2", "q", skills=(("fr", 1),))) == [Offer("c2", "junior")]
    # Nobody left who speaks French: the call waits although "none" is free.
    assert s.handle(CallArrived(1, "c3", "q", skills=("fr",))) == []
    assert s.handle(CallArrived(1, "c4", "q")) == [Offer("c4", "none")]
