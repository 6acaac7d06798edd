"""Queue and agent rules, one behaviour per test, on both engines."""
from __future__ import annotations

import pytest

from acdcore import (AgentAutoPaused, AgentConfig, AgentLoggedIn, AgentLoggedOut, AgentPaused,
                     AgentReady, CallAbandoned, CallArrived, CallbackRequested, CallEnded,
                     CallExited, CallWithdrawn, CancelOffer, Connect, Offer, OfferAnswered,
                     OfferRejected, OfferTimedOut, QueueConfig, Tick, WrapUpDone, WrapUpEnded)


def busy(c, t, call_id, agent):
    """Gives ``agent`` a call so that it is busy."""
    assert c(CallArrived(t, call_id, "q")) == [Offer(call_id, agent)]
    c(OfferAnswered(t, call_id, agent))


# -- callers ----------------------------------------------------------------------
def test_priority_first_then_fifo(centre):
    c = centre(n_agents=1)
    busy(c, 0, "talk", "a0")
    c(CallArrived(1, "low1", "q", priority=0))
    c(CallArrived(2, "high", "q", priority=5))
    c(CallArrived(3, "low2", "q", priority=0))
    c(CallArrived(4, "mid", "q", priority=2))
    assert [c.s.queue_position(x) for x in ("high", "mid", "low1", "low2")] == [1, 2, 3, 4]
    order = []
    for i, expected in enumerate(["high", "mid", "low1", "low2"]):
        prev = "talk" if i == 0 else order[-1]
        acts = c(CallEnded(10 + i, prev))
        assert acts == [Offer(expected, "a0")]
        c(OfferAnswered(10 + i, expected, "a0"))
        order.append(expected)
    assert c.s.waiting_count("q") == 0


def test_position_counts_ringing_callers_and_is_none_once_connected(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))                 # rings a0
    c(CallArrived(2, "c2", "q"))
    assert c.s.queue_position("c1") == 1 and c.s.queue_position("c2") == 2
    assert c.s.waiting_count("q") == 2 and c.s.oldest_wait_start("q") == 1
    c(OfferAnswered(3, "c1", "a0"))
    assert c.s.queue_position("c1") is None and c.s.queue_position("c2") == 1
    assert c.s.oldest_wait_start("q") == 2
    c(CallAbandoned(4, "c2"))
    assert c.s.waiting_count("q") == 0 and c.s.oldest_wait_start("q") is None


def test_queue_full_exits_with_full(centre):
    c = centre(n_agents=0, max_len=2)
    assert c(CallArrived(1, "c1", "q")) == []
    assert c(CallArrived(2, "c2", "q")) == []
    assert c(CallArrived(3, "c3", "q")) == [CallExited("c3", "q", "full")]
    assert c.s.waiting_count("q") == 2
    c(CallAbandoned(4, "c1"))
    assert c(CallArrived(5, "c4", "q")) == []   # room again


def test_max_wait_times_out_and_deadline_is_announced(centre):
    c = centre(n_agents=0, max_wait=30)
    c(CallArrived(5, "c1", "q"))
    c(CallArrived(7, "c2", "q"))
    assert c.s.next_deadline() == 35
    assert c(Tick(34.9)) == []
    assert c(Tick(35)) == [CallExited("c1", "q", "timeout")]
    assert c.s.next_deadline() == 37
    # A later event fires due timers first.
    assert c(CallArrived(50, "c3", "q")) == [CallExited("c2", "q", "timeout")]


def test_max_wait_lets_a_ringing_call_finish_ringing(centre):
    c = centre(n_agents=1, max_wait=20, ring_timeout=15)
    busy(c, 0, "talk", "a0")
    c(CallArrived(1, "c1", "q"))
    assert c(CallEnded(10, "talk")) == [Offer("c1", "a0")]
    assert c(Tick(21)) == []                          # waited 20 s, but it rings
    assert c(OfferAnswered(22, "c1", "a0")) == [Connect("c1", "a0")]


def test_max_wait_exit_after_the_ring_fails(centre):
    c = centre(n_agents=1, max_wait=20, ring_timeout=15)
    busy(c, 0, "talk", "a0")
    c(CallArrived(1, "c1", "q"))
    c(CallEnded(10, "talk"))
    assert c(Tick(25)) == [OfferTimedOut("c1", "a0"), CallExited("c1", "q", "timeout")]


def test_join_empty_false_rejects_when_nobody_serves(centre):
    c = centre(n_agents=1, login=False, join_empty=False)
    assert c(CallArrived(1, "c1", "q")) == [CallExited("c1", "q", "empty")]
    c(AgentLoggedIn(2, "a0"))
    c(AgentPaused(3, "a0", "lunch"))                 # paused agents do not serve
    assert c(CallArrived(4, "c2", "q")) == [CallExited("c2", "q", "empty")]
    c(AgentReady(5, "a0"))
    assert c(CallArrived(6, "c3", "q")) == [Offer("c3", "a0")]


def test_join_empty_true_waits_for_an_agent(centre):
    c = centre(n_agents=1, login=False)
    assert c(CallArrived(1, "c1", "q")) == []
    assert c(AgentLoggedIn(2, "a0")) == [Offer("c1", "a0")]


def test_leave_when_empty_drains_the_queue_in_order(centre):
    c = centre(n_agents=1, leave_when_empty=True)
    busy(c, 0, "talk", "a0")
    c(CallArrived(1, "c1", "q"))
    c(CallArrived(2, "c2", "q", priority=1))
    assert c(AgentLoggedOut(3, "a0")) == [CallExited("c2", "q", "empty"),
                                          CallExited("c1", "q", "empty")]
    assert c(CallArrived(4, "c3", "q")) == [CallExited("c3", "q", "empty")]
    c(CallEnded(5, "talk"))                            # the call went on without the agent


def test_withdraw_and_abandon_cancel_a_ringing_offer(centre):
    c = centre(n_agents=2, strategy="ring_all")
    c(CallArrived(1, "c1", "q"))
    assert c(CallWithdrawn(2, "c1", "voicemail")) == [CancelOffer("c1", "a0", "withdrawn"),
                                                     CancelOffer("c1", "a1", "withdrawn")]
    c(CallArrived(3, "c2", "q"))
    assert c(CallAbandoned(4, "c2")) == [CancelOffer("c2", "a0", "caller_gone"),
                                         CancelOffer("c2", "a1", "caller_gone")]
    assert c.s.agents_by_state("q")["available"] == 2


def test_callback_entry_offer_says_callback(centre):
    c = centre(n_agents=1)
    assert c(CallArrived(1, "cb", "q", callback=True)) == [Offer("cb", "a0", callback=True)]


def test_callback_request_keeps_the_place_and_never_times_out(centre):
    c = centre(n_agents=1, max_wait=30)
    busy(c, 0, "talk", "a0")
    c(CallArrived(1, "c1", "q"))
    c(CallArrived(2, "c2", "q"))
    assert c(CallbackRequested(3, "c1")) == []
    assert c.s.queue_position("c1") == 1
    assert c(Tick(32)) == [CallExited("c2", "q", "timeout")]   # c1 is exempt
    assert c(CallEnded(40, "talk")) == [Offer("c1", "a0", callback=True)]


def test_callback_request_while_ringing_cancels_and_reoffers(centre):
    c = centre(n_agents=1)
    c(CallArrived(1, "c1", "q"))
    assert c(CallbackRequested(2, "c1")) == [CancelOffer("c1", "a0", "caller_gone"),
                                             Offer("c1", "a0", callback=True)]


# -- agents -------------------------------------------------------------------------
def test_wrap_up_timer_then_next_call(centre):
    c = centre(n_agents=1, wrap_up=10)
    busy(c, 0, "c1", "a0")
    c(CallArrived(1, "c2", "q"))
    assert c(CallEnded(5, "c1")) == []
    assert c.s.agent_state("a0") == "wrap_up"
    assert c.s.next_deadline() == 15
    assert c(Tick(15)) == [WrapUpEnded("a0"), Offer("c2", "a0")]


def test_agent_wrap_up_overrides_the_queue_and_can_end_early(engine):
    q = QueueConfig("q", wrap_up=10)
    s = engine([q], [AgentConfig("a0", {"q": 0}, wrap_up=3)])
    s.handle(AgentLoggedIn(0, "a0"))
    s.handle(CallArrived(0, "c1", "q"))
    s.handle(OfferAnswered(0, "c1", "a0"))
    s.handle(CallEnded(5, "c1"))
    assert s.next_deadline() == 8
    assert s.handle(WrapUpDone(6, "a0")) == []
    assert s.agent_state("a0") == "available" and s.next_deadline() is None
    assert s.handle(WrapUpDone(6.5, "a0")) == []       # a late button press is harmless


def test_ring_timeout_and_autopause(centre):
    c = centre(n_agents=1, ring_timeout=10, autopause_after=2)
    c(CallArrived(0, "c1", "q"))
    assert c(Tick(10)) == [OfferTimedOut("c1", "a0"), Offer("c1", "a0")]
    assert c(Tick(20)) == [OfferTimedOut("c1", "a0"), AgentAutoPaused("a0", "no_answer")]
    assert c.s.agent_state("a0") == "paused"
    assert c.s.agent_pause_reason("a0") == "no_answer"
    assert c(AgentReady(30, "a0")) == [Offer("c1", "a0")]


def test_answer_resets_the_no_answer_count(centre):
    c = centre(n_agents=1, ring_timeout=10, autopause_after=2)
    c(CallArrived(0, "c1", "q"))
    c(Tick(10))                                        # one no-answer
    c(OfferAnswered(11, "c1", "a0"))
    c(CallEnded(12, "c1"))
    c(CallArrived(13, "c2", "q"))
    assert c(Tick(23)) == [OfferTimedOut("c2", "a0"), Offer("c2", "a0")]   # not paused


def test_reject_delay_keeps_the_agent_out_for_a_while(centre):
    c = centre(n_agents=2, strategy="linear", reject_delay=5)
    c(CallArrived(0, "c1", "q"))
    assert c(OfferRejected(1, "c1", "a0", busy=True)) == [Offer("c1", "a1")]
    c(CallArrived(2, "c2", "q"))                       # a0 still in its reject delay
    assert c.s.agent_state("a0") == "available"
    assert c.s.next_deadline() == 6
    assert c(Tick(6)) == [Offer("c2", "a0")]


def test_reject_prefers_another_agent_but_reoffers_when_alone(centre):
    c = centre(n_agents=1)
    c(CallArrived(0, "c1", "q"))
    assert c(OfferRejected(1, "c1", "a0")) == [Offer("c1", "a0")]


def test_pause_while_busy_applies_after_the_call(centre):
    c = centre(n_agents=1)
    busy(c, 0, "c1", "a0")
    c(CallArrived(1, "c2", "q"))
    assert c(AgentPaused(2, "a0", "break")) == []
    assert c.s.agent_state("a0") == "busy"
    assert c(CallEnded(3, "c1")) == []
    assert c.s.agent_state("a0") == "paused" and c.s.agent_pause_reason("a0") == "break"
    assert c(AgentReady(4, "a0")) == [Offer("c2", "a0")]


def test_pause_or_logout_while_ringing_reoffers_the_call(centre):
    c = centre(n_agents=2, strategy="linear")
    c(CallArrived(0, "c1", "q"))
    assert c(AgentPaused(1, "a0", "break")) == [CancelOffer("c1", "a0", "agent_paused"),
                                                Offer("c1", "a1")]
    assert c(AgentLoggedOut(2, "a1")) == [CancelOffer("c1", "a1", "agent_logged_out")]
    assert c.s.waiting_count("q") == 1


def test_multi_queue_agent_takes_the_oldest_caller_across_queues(engine):
    qs = [QueueConfig("q1"), QueueConfig("q2", weight=5)]
    agent = AgentConfig("a0", {"q1": 0, "q2": 0})
    s = engine(qs, [agent])
    s.handle(AgentLoggedIn(0, "a0"))
    s.handle(CallArrived(0, "talk", "q1"))
    s.handle(OfferAnswered(0, "talk", "a0"))
    s.handle(CallArrived(1, "old", "q1"))
    s.handle(CallArrived(2, "mid", "q2"))
    s.handle(CallArrived(3, "new", "q1"))
    served = []
    prev = "talk"
    for t in (10, 11, 12):
        (offer,) = s.handle(CallEnded(t, prev))
        s.handle(OfferAnswered(t, offer.call_id, "a0"))
        served.append(prev := offer.call_id)
    assert served == ["old", "mid", "new"]


def test_multi_queue_by_weight(engine):
    qs = [QueueConfig("q1", weight=1), QueueConfig("q2", weight=5)]
    s = engine(qs, [AgentConfig("a0", {"q1": 0, "q2": 0})], fairness="weight")
    s.handle(CallArrived(1, "old", "q1"))
    s.handle(CallArrived(2, "vip", "q2"))
    assert s.handle(AgentLoggedIn(3, "a0")) == [Offer("vip", "a0")]


def test_agents_by_state_counts_members(centre):
    c = centre(n_agents=3, wrap_up=5)
    busy(c, 0, "c1", "a0")
    c(CallArrived(0, "c2", "q"))                     # a1 rings
    c(AgentPaused(1, "a2", "lunch"))
    assert c.s.agents_by_state("q") == {"logged_out": 0, "available": 0, "offered": 1,
                                        "busy": 1, "wrap_up": 0, "paused": 1}
    c(CallEnded(2, "c1"))
    c(AgentLoggedOut(3, "a2"))
    assert c.s.agents_by_state("q") == {"logged_out": 1, "available": 0, "offered": 1,
                                        "busy": 0, "wrap_up": 1, "paused": 0}


def test_add_and_remove_agents(centre):
    c = centre(n_agents=0)
    c(CallArrived(1, "c1", "q"))
    c.s.add_agent(AgentConfig("new", {"q": 0}))
    assert c(AgentLoggedIn(2, "new")) == [Offer("c1", "new")]
    from acdcore import AcdError
    with pytest.raises(AcdError):
        c.s.remove_agent("new")                       # still logged in
    c(AgentLoggedOut(3, "new"))
    c.s.remove_agent("new")
    assert c.s.agents_by_state("q")["logged_out"] == 0


# -- skills -------------------------------------------------------------------------------
def test_skills_relax_after_waiting(engine):
    q = QueueConfig("q", "skills", skill_relax=((10.0, 2),), skill_any_after=30.0)
    agents = [AgentConfig("fr1", {"q": 0}, skills={"fr": 1}),
              AgentConfig("de", {"q": 0}, skills={"de": 5})]
    s = engine([q], agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    assert s.handle(CallArrived(0, "c1", "q", skills=(("fr", 3),))) == []
    assert s.next_deadline() == 10
    assert s.handle(Tick(10)) == [Offer("c1", "fr1")]          # fr >= 1 now suffices
    s.handle(OfferAnswered(10, "c1", "fr1"))
    assert s.handle(CallArrived(11, "c2", "q", skills=(("es", 4),))) == []
    assert s.handle(Tick(21)) == []                            # es >= 2: nobody
    assert s.handle(Tick(41)) == [Offer("c2", "de")]           # any agent after 30 s
    s.check_invariants()


def test_skilled_agent_freeing_up_takes_the_call_it_can_serve(engine):
    q = QueueConfig("q")
    agents = [AgentConfig("fr", {"q": 0}, skills={"fr": 3})]
    s = engine([q], agents)
    s.handle(AgentLoggedIn(0, "fr"))
    s.handle(CallArrived(0, "talk", "q"))
    s.handle(OfferAnswered(0, "talk", "fr"))
    s.handle(CallArrived(1, "de", "q", skills=(("de", 1),)))
    s.handle(CallArrived(2, "fr", "q", skills=(("fr", 2),)))
    assert s.handle(CallEnded(3, "talk")) == [Offer("fr", "fr")]
    assert s.queue_position("de") == 1


# -- EWT ----------------------------------------------------------------------------------
def test_ewt_formula(centre):
    c = centre(n_agents=2, handle_time_hint=120.0, wrap_up=0.0)
    busy(c, 0, "t1", "a0")
    busy(c, 0, "t2", "a1")
    for i in range(3):
        c(CallArrived(1 + i, f"w{i}", "q"))
    # position * mean handle / serving agents, hint until a call has ended
    assert c.s.ewt("w0") == pytest.approx(1 * 120 / 2)
    assert c.s.ewt("w2") == pytest.approx(3 * 120 / 2)
    c(CallEnded(60, "t1"))                 # talk 60 s: w0 rings a0 (still in the queue)
    assert c.s.ewt("w2") == pytest.approx(3 * 60 / 2)
    c(OfferAnswered(60, "w0", "a0"))
    assert c.s.ewt("w2") == pytest.approx(2 * 60 / 2)
    c(AgentPaused(61, "a1", "x"))          # pending: a1 is still busy, still serving
    c(AgentLoggedOut(62, "a1"))
    assert c.s.ewt("w2") == pytest.approx(2 * 60 / 1)


def test_queue_ewt_is_the_wait_of_a_caller_joining_now(centre):
    c = centre(n_agents=2, handle_time_hint=120.0, wrap_up=0.0)
    assert c.s.queue_ewt("q") == pytest.approx(1 * 120 / 2)   # empty queue: position 1
    busy(c, 0, "t1", "a0")
    busy(c, 0, "t2", "a1")
    c(CallArrived(1, "w0", "q"))
    c(CallArrived(2, "w1", "q"))
    assert c.s.queue_ewt("q") == pytest.approx(3 * 120 / 2)   # behind w0 and w1
    c(CallEnded(60, "t1"))                                     # w0 rings: still counted
    assert c.s.queue_ewt("q") == pytest.approx(3 * 60 / 2)
    c(AgentLoggedOut(61, "a1"))
    c(AgentLoggedOut(62, "a0"))                                # w0's offer is cancelled
    assert c.s.queue_ewt("q") is None                          # nobody serves


def test_queue_ewt_unknown_queue_raises(centre):
    from acdcore.errors import UnknownQueue
    c = centre(n_agents=1)
    with pytest.raises(UnknownQueue):
        c.s.queue_ewt("nope")


def test_ewt_is_none_without_serving_agents(centre):
    c = centre(n_agents=1, login=False)
    c(CallArrived(1, "c1", "q"))
    assert c.s.ewt("c1") is None


def test_stale_heap_entries_do_not_pile_up(engine):
    """Lazy deletion must not leak: a backup queue that never gets a call still
    sees its agents come and go thousands of times."""
    qs = [QueueConfig("main"), QueueConfig("backup")]
    agents = [AgentConfig(f"a{i}", {"main": 0, "backup": 1}) for i in range(4)]
    s = engine(qs, agents)
    for a in agents:
        s.handle(AgentLoggedIn(0, a.agent_id))
    for i in range(3000):
        t = float(i)
        (offer,) = s.handle(CallArrived(t, f"c{i}", "main"))
        s.handle(OfferAnswered(t, f"c{i}", offer.agent_id))
        s.handle(CallEnded(t + 0.5, f"c{i}"))
        if i % 7 == 0:
            s.handle(CallArrived(t + 0.6, f"gone{i}", "backup", skills=(("x", 1),)))
            s.handle(CallAbandoned(t + 0.7, f"gone{i}"))
    sizes = s.heap_sizes()
    assert sizes["pools"] < 400 and sizes["waiting"] < 400, sizes
    s.check_invariants()
