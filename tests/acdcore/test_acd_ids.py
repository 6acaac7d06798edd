"""InternedScheduler: the runtime's str ids mapped to ints in C (IdTable).

It must behave exactly as the engine with str ids -- same actions, same
errors, same answers to queries -- while the core only ever sees ints, and
its id table must neither leak (a call's name is released once the core
forgets the call) nor reuse an int the core may still mean (a cancelled
offer's call, which a late answer refers to).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).parent))
from acd_driver import run  # noqa: E402
from test_acd_differential import CONFIG, OPS, check_world_rules, seeded_runs  # noqa: E402

from acdcore import (AcdError, AgentConfig, AgentLoggedIn, AgentReady, CallAbandoned,  # noqa: E402
                     CallArrived, CallEnded, CallExited, CallPickedUp, CancelOffer, Connect,
                     Offer, OfferAnswered, PickupRefused, QueueConfig,
                     ReferenceScheduler, UnknownAgent, UnknownCall)
from acdcore import events as E  # noqa: E402
from acdcore.scheduler import COMPILED, InternedScheduler, Scheduler  # noqa: E402

pytestmark = pytest.mark.skipif(not COMPILED, reason="Cython engine not built")


def _agree(ref, fast, label=""):
    for i, (a, b) in enumerate(zip(ref, fast)):
        assert a == b, f"{label} diverged at step {i}: {a[0]!r}\nstr ids  {a[1:]}\ninterned {b[1:]}"
    assert len(ref) == len(fast)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, OPS)
def test_interned_matches_the_reference(config, ops):
    """Action for action, error for error, query for query; the driver
    checks the invariants (the id table's included) after every event."""
    strategies, n_agents, variant, seed = config
    ref = run(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed)
    fast = run(InternedScheduler, strategies, n_agents, variant, ops, seed=seed)
    _agree(ref, fast)
    check_world_rules(fast, n_agents)


def test_seeded_runs_match_the_str_id_engine():
    """Cheap and reproducible beside hypothesis, with long runs so ints are
    released and reused many times."""
    for it, strategies, n_agents, variant, ops in seeded_runs(60, (50, 600)):
        ref = run(Scheduler, strategies, n_agents, variant, ops, seed=it)
        fast = run(InternedScheduler, strategies, n_agents, variant, ops, seed=it)
        _agree(ref, fast, f"run {it}")


def _centre(n_agents=2, **queue):
    s = InternedScheduler([QueueConfig("q", **queue)],
                          [AgentConfig(f"agent-{k}", {"q": 0}) for k in range(n_agents)])
    for k in range(n_agents):
        s.handle(AgentLoggedIn(0.0, f"agent-{k}"))
    return s


def test_names_are_interned_and_the_core_sees_only_ints():
    s = _centre(1)
    out = s.handle(CallArrived(1.0, "sip-call-A@host", "q"))
    assert out == [Offer("sip-call-A@host", "agent-0", False)]
    assert all(type(x) is str for x in out[0][:2])
    k = s.calls.key_of("sip-call-A@host")
    assert type(k) is int and s.calls.name_of(k) == "sip-call-A@host"
    assert s.core.call_state(k) == "offered"             # the core knows the int...
    with pytest.raises(UnknownCall):
        s.core.call_state("sip-call-A@host")             # ...and not the name
    s.handle(CallArrived(1.5, "sip-call-B@host", "q"))
    assert s.calls.key_of("sip-call-B@host") not in (None, k)
    assert s.call_state("sip-call-A@host") == "offered"
    s.check_invariants()


def test_a_duplicate_arrival_is_refused_by_name():
    s = _centre(1)
    s.handle(CallArrived(1.0, "dup", "q"))
    with pytest.raises(AcdError, match="call 'dup' already queued"):
        s.handle(CallArrived(2.0, "dup", "q"))
    assert len(s.calls) == 1
    s.check_invariants()


def test_names_are_released_when_the_core_forgets_the_call():
    s = _centre(1, max_len=1)
    s.handle(CallArrived(1.0, "talk", "q"))
    s.handle(OfferAnswered(2.0, "talk", "agent-0"))
    s.handle(CallArrived(3.0, "wait", "q"))
    assert s.handle(CallArrived(3.5, "full", "q")) == [CallExited("full", "q", "full")]
    assert s.calls.key_of("full") is None              # never held: gone after the event
    assert len(s.calls) == 2
    s.handle(CallAbandoned(4.0, "wait"))                  # waiting, no offer: no tombstone
    assert s.calls.key_of("wait") is None
    s.handle(CallEnded(5.0, "talk"))
    assert s.calls.key_of("talk") is None and len(s.calls) == 0
    s.check_invariants()
    # Released ints are reused, so the table stays as big as the live set.
    for i in range(1000):
        s.handle(CallArrived(10.0 + i, f"c{i}", "q"))
        s.handle(CallAbandoned(10.0 + i, f"c{i}"))
    # Each was offered to agent-0, so the last one stays as its tombstone.
    assert s.calls.capacity() <= 4 and len(s.calls) == 1
    assert s.calls.refs_of(s.calls.key_of("c999")) == 1
    s.check_invariants()


def test_a_cancelled_offers_int_is_not_reused_while_a_late_answer_can_come():
    """The core remembers each agent's last cancelled offer (a late answer
    to it gets a CancelOffer, not an error).  Its int stays taken however
    many calls come and go; the late answer finds it by name."""
    s = _centre(1, ring_timeout=5.0)
    ref = Scheduler([QueueConfig("q", ring_timeout=5.0)], [AgentConfig("agent-0", {"q": 0})])
    ref.handle(AgentLoggedIn(0.0, "agent-0"))
    both = (ref, s)

    def feed(ev):
        outs = [x.handle(ev) for x in both]
        assert outs[0] == outs[1], (ev, outs)
        return outs[1]

    assert feed(CallArrived(1.0, "old", "q")) == [Offer("old", "agent-0", False)]
    k_old = s.calls.key_of("old")
    assert feed(CallAbandoned(2.0, "old")) == [CancelOffer("old", "agent-0", "caller_gone")]
    assert s.calls.key_of("old") == k_old and s.calls.refs_of(k_old) == 1   # the tombstone
    feed(E.AgentPaused(3.0, "agent-0"))   # calls now wait: no cancel replaces the tombstone
    taken = set()
    for i in range(200):
        feed(CallArrived(4.0 + i, f"n{i}", "q"))
        taken.add(s.calls.key_of(f"n{i}"))
        if i % 2:
            feed(CallAbandoned(4.0 + i, f"n{i}"))
    assert k_old not in taken
    assert feed(OfferAnswered(300.0, "old", "agent-0")) == \
        [CancelOffer("old", "agent-0", "caller_gone")]
    s.check_invariants()


def test_the_tombstone_is_released_when_the_agent_gets_the_next_cancel():
    s = _centre(1, ring_timeout=5.0)
    s.handle(CallArrived(1.0, "first", "q"))
    s.handle(CallAbandoned(2.0, "first"))
    assert s.calls.key_of("first") is not None
    s.handle(AgentReady(2.0, "agent-0"))
    s.handle(CallArrived(3.0, "second", "q"))
    s.handle(CallAbandoned(4.0, "second"))       # agent-0's last cancel is now "second"
    assert s.calls.key_of("first") is None and s.calls.key_of("second") is not None
    s.check_invariants()


def test_errors_name_the_runtimes_ids():
    s = _centre(2)
    s.handle(CallArrived(1.0, "ring", "q"))
    s.handle(CallArrived(1.0, "talk", "q"))
    s.handle(OfferAnswered(2.0, "talk", "agent-1"))
    with pytest.raises(AcdError, match="agent 'agent-1' has no offer of call 'ring'"):
        s.handle(OfferAnswered(3.0, "ring", "agent-1"))
    with pytest.raises(PickupRefused, match="call 'talk' is not ringing"):
        s.handle(CallPickedUp(3.0, "talk", "agent-0"))
    with pytest.raises(UnknownCall) as exc:
        s.handle(CallEnded(3.0, "nobody"))
    assert exc.value.args == ("nobody",)
    with pytest.raises(UnknownAgent) as exc:
        s.agent_state("agent-9")
    assert exc.value.args == ("agent-9",)
    with pytest.raises(TypeError, match="str"):
        s.handle(CallArrived(3.0, 5, "q"))
    with pytest.raises(TypeError, match="str"):
        s.call_state(5)
    s.check_invariants()


def test_actions_of_timers_before_a_bad_event_come_back_by_name():
    s = _centre(1, ring_timeout=5.0)
    ref = Scheduler([QueueConfig("q", ring_timeout=5.0)], [AgentConfig("agent-0", {"q": 0})])
    ref.handle(AgentLoggedIn(0.0, "agent-0"))
    errors = []
    for x in (ref, s):
        x.handle(CallArrived(1.0, "c", "q"))
        with pytest.raises(UnknownCall) as exc:
            x.handle(CallEnded(10.0, "nobody"))     # the ring timer (t=6) fires first
        errors.append(exc.value)
    assert [type(a).__name__ for a in errors[1].actions][:1] == ["OfferTimedOut"]
    assert errors[1].actions == errors[0].actions and errors[1].args == errors[0].args
    s.check_invariants()


def test_agents_added_and_removed_at_run_time():
    s = _centre(1)
    s.add_agent(AgentConfig("late", {"q": 0}))
    with pytest.raises(AcdError, match="agent 'late' exists"):
        s.add_agent(AgentConfig("late", {"q": 0}))
    with pytest.raises(AcdError):
        s.add_agent(AgentConfig("stray", {"nowhere": 0}))
    assert s.agents_table.key_of("stray") is None          # the failed add left nothing
    k = s.agents_table.key_of("late")
    s.remove_agent("late")
    assert s.agents_table.key_of("late") is None
    s.add_agent(AgentConfig("late", {"q": 1}))
    assert s.agents_table.key_of("late") != k             # agent ints are never reused
    s.handle(AgentLoggedIn(1.0, "late"))
    s.handle(E.AgentPaused(1.0, "agent-0"))
    assert s.handle(CallArrived(2.0, "x", "q")) == [Offer("x", "late", False)]
    assert s.handle(OfferAnswered(3.0, "x", "late")) == [Connect("x", "late")]
    assert s.agent_state("late") == "busy"
    s.check_invariants()


def test_handle_raw_takes_the_same_str_ids():
    s = _centre(1)
    out = s.handle_raw(E.EV_CALL_ARRIVED, 1.0, "raw", None, None, "q", 0)
    assert out == [Offer("raw", "agent-0", False)]
    assert s.handle_raw(E.EV_OFFER_ANSWERED, 2.0, "raw", "agent-0") == [Connect("raw", "agent-0")]
    assert s.handle_raw(E.EV_CALL_ENDED, 3.0, None, None, CallEnded(3.0, "raw")) == []
    assert len(s.calls) == 0
    s.check_invariants()
