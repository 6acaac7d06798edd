"""Generated event sequences: the Cython engine must match the reference
action for action, and both must keep their invariants after every event.

Hypothesis draws a configuration (strategies, agents, queue options) and a
list of small-integer ops; ``acd_driver`` turns them into mostly meaningful
events (answering real offers, ending real calls) plus some stale or invalid
ones (late answers, unknown ids) to exercise the race and error paths.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from acd_driver import N_OPS, run  # noqa: E402
from hunt_check import run_hunt  # noqa: E402

from acdcore import ReferenceScheduler, Strategy  # noqa: E402
from acdcore.scheduler import COMPILED, Scheduler  # noqa: E402

# Arrivals, answers and call ends dominate, as in a real centre.
OP_KINDS = st.sampled_from([0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                            15, 16, 16, 17, 17])
OPS = st.lists(st.tuples(OP_KINDS, st.integers(0, 19), st.integers(0, 19), st.integers(0, 11)),
               min_size=5, max_size=200)
CONFIG = st.tuples(st.lists(st.sampled_from(list(Strategy)), min_size=1, max_size=3),
                   st.integers(1, 6), st.integers(0, 5), st.integers(0, 2**32))
# Hunting needs agents logged in, offers failing and time passing, more than
# answers and call ends.
HUNT_OPS = st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 2, 2, 3, 6, 6, 6, 8, 11, 11, 13]),
                              st.integers(0, 19), st.integers(0, 19), st.integers(0, 11)),
                    min_size=20, max_size=200)
HUNT_CONFIG = st.tuples(st.lists(st.sampled_from(list(Strategy)), min_size=1, max_size=3),
                        st.integers(2, 6), st.integers(0, 5), st.integers(0, 2**32))
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

assert N_OPS == 18  # the driver understands kinds 0..17 (15, 16: outbound; 17: pickup)


def outcomes(transcript):
    return [entry[1] for entry in transcript[:-1]]


def check_world_rules(transcript, n_agents):
    """Rules visible from outside: ids in actions are known; one connect per
    call; an agent rings with at most one call at a time; an agent on an
    outbound call is offered nothing."""
    from acdcore import AgentLoggedOut, AgentOutbound, CallArrived, OutboundEnded
    dialling = set()
    known_calls = set()
    agents = {f"a{k}" for k in range(n_agents)}
    connected = set()
    ringing = {}                      # agent -> call
    for ev, out, _ in transcript[:-1]:
        if isinstance(ev, CallArrived):
            known_calls.add(ev.call_id)
        if isinstance(ev, AgentOutbound) and not (out and out[0] == "error"):
            dialling.add(ev.agent_id)
        elif isinstance(ev, (OutboundEnded, AgentLoggedOut)):
            dialling.discard(ev.agent_id)
        if out and out[0] == "error":
            out = out[2]
        elif type(ev).__name__ == "OfferRejected" and ringing.get(ev.agent_id) == ev.call_id:
            del ringing[ev.agent_id]      # a reject ends the ringing without an action
        for act in out:
            kind, fields = act[0], act[1:]
            if kind in ("Offer", "CancelOffer", "Connect", "OfferTimedOut", "CallExited"):
                assert fields[0] in known_calls, act
            if kind in ("Offer", "CancelOffer", "Connect", "OfferTimedOut"):
                assert fields[1] in agents, act
            if kind == "Offer":
                assert fields[1] not in dialling, (act, "agent is on an outbound call")
                # never two calls at one agent (a re-offer of the same call after
                # a reject is fine: the reject itself has no action to observe)
                assert ringing.get(fields[1], fields[0]) == fields[0], (act, ringing)
                ringing[fields[1]] = fields[0]
            elif kind in ("CancelOffer", "OfferTimedOut", "Connect"):
                if ringing.get(fields[1]) == fields[0]:
                    del ringing[fields[1]]
            if kind == "Connect":
                assert fields[0] not in connected, act
                connected.add(fields[0])


def engines_agree(config, ops):
    strategies, n_agents, variant, seed = config
    ref = run(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed)
    fast = run(Scheduler, strategies, n_agents, variant, ops, seed=seed)
    for i, (a, b) in enumerate(zip(ref, fast)):
        assert a == b, f"diverged at step {i}: {a[0]!r}\nreference {a[1:]}\ncython    {b[1:]}"
    assert len(ref) == len(fast)
    check_world_rules(fast, n_agents)


@SETTINGS
@given(CONFIG, OPS)
def test_reference_keeps_invariants(config, ops):
    strategies, n_agents, variant, seed = config
    transcript = run(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed)
    check_world_rules(transcript, n_agents)


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
@SETTINGS
@given(CONFIG, OPS)
def test_cython_matches_reference(config, ops):
    engines_agree(config, ops)


@SETTINGS
@given(HUNT_CONFIG, HUNT_OPS)
def test_reference_hunts_every_free_agent_before_a_failed_one(config, ops):
    """No re-offer to an agent that failed the call while an untried free
    agent that may take it idles (hunt_check.py)."""
    strategies, n_agents, variant, seed = config
    run_hunt(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed)


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
@SETTINGS
@given(HUNT_CONFIG, HUNT_OPS)
def test_cython_hunts_like_the_reference(config, ops):
    """The same property on the compiled engine, fed timers one deadline at a
    time, action for action against the reference."""
    strategies, n_agents, variant, seed = config
    fast, _ = run_hunt(Scheduler, strategies, n_agents, variant, ops, seed=seed)
    ref, _ = run_hunt(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed)
    assert fast == ref


def test_hunting_property_sees_new_rounds():
    """The property is not vacuous: seeded runs reach new rounds often."""
    import random
    kinds = [0, 0, 0, 1, 2, 2, 2, 6, 6, 6, 3, 8, 11, 11]
    seen = 0
    for it in range(40):
        r = random.Random(it)
        ops = [(r.choice(kinds), r.randrange(20), r.randrange(20), r.randrange(12))
               for _ in range(120)]
        _, reoffers = run_hunt(ReferenceScheduler, [r.choice(list(Strategy))], 4, it % 6, ops,
                               seed=it)
        seen += reoffers
    assert seen >= 20, seen


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
@pytest.mark.parametrize("ids", ["int", "mixed"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, OPS)
def test_cython_matches_reference_with_int_ids(ids, config, ops):
    """Int ids take the engine's C id table, other ids its dict; numbers equal
    to an int (True, 5.0) must land on that int's call, as in a dict."""
    strategies, n_agents, variant, seed = config
    ref = run(ReferenceScheduler, strategies, n_agents, variant, ops, seed=seed, ids=ids)
    fast = run(Scheduler, strategies, n_agents, variant, ops, seed=seed, ids=ids)
    for i, (a, b) in enumerate(zip(ref, fast)):
        assert a == b, f"diverged at step {i}: {a[0]!r}\nreference {a[1:]}\ncython    {b[1:]}"
    assert len(ref) == len(fast)


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
def test_int_id_table_grows_and_deletes():
    """Thousands of int call ids (C table growth, backward-shift deletes,
    huge and negative ids that overflow to the dict) against the reference."""
    import random
    from acdcore import AgentConfig, CallAbandoned, CallArrived, QueueConfig
    r = random.Random(3)
    engines = [cls([QueueConfig("q")], [AgentConfig(7, {"q": 0})])
               for cls in (ReferenceScheduler, Scheduler)]
    alive = []
    for i in range(5000):
        if alive and r.random() < 0.45:
            gone = alive.pop(r.randrange(len(alive)))
            outs = [s.handle(CallAbandoned(i, gone)) for s in engines]
        else:
            cid = r.choice([i, -i, i * 2**40, 2**70 + i, i * 1024])
            if cid in alive:
                continue
            alive.append(cid)
            outs = [s.handle(CallArrived(i, cid, "q")) for s in engines]
        assert outs[0] == outs[1]
    ref, fast = engines
    assert [ref.queue_position(c) for c in alive] == [fast.queue_position(c) for c in alive]
    exact = [float(c) for c in alive if float(c) == c][:50]   # 5.0 finds call 5
    assert [ref.call_state(c) for c in exact] == [fast.call_state(c) for c in exact]
    fast.check_invariants()


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
def seeded_runs(count: int, length: tuple[int, int]):
    """(seed, strategies, agents, variant, ops) of plain seeded random runs."""
    import random
    kinds = [0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 17, 17]
    for it in range(count):
        r = random.Random(it)
        strategies = [r.choice(list(Strategy)) for _ in range(r.randint(1, 3))]
        ops = [(r.choice(kinds), r.randrange(20), r.randrange(20), r.randrange(12))
               for _ in range(r.randint(*length))]
        yield it, strategies, r.randint(1, 6), r.randrange(6), ops


def test_many_seeded_runs_match():
    """Plain seeded random runs beside hypothesis: broad, cheap, reproducible."""
    for it, strategies, n_agents, variant, ops in seeded_runs(150, (5, 200)):
        ref = run(ReferenceScheduler, strategies, n_agents, variant, ops, seed=it)
        fast = run(Scheduler, strategies, n_agents, variant, ops, seed=it)
        for i, (a, b) in enumerate(zip(ref, fast)):
            assert a == b, f"run {it} diverged at step {i}: {a[0]!r}\n{a[1:]}\n{b[1:]}"


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
def test_long_random_run_matches():
    """One long sequence (thousands of events) so slot reuse, heap growth and
    Fenwick window rebuilds are exercised too."""
    import random
    r = random.Random(1234)
    kinds = [0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17]
    ops = [(r.choice(kinds), r.randrange(20), r.randrange(20), r.randrange(6))
           for _ in range(4000)]
    strategies = [Strategy.RING_ALL, Strategy.SKILLS, Strategy.WEIGHTED_RANDOM]
    ref = run(ReferenceScheduler, strategies, 6, 4, ops, seed=9, check=False)
    fast = run(Scheduler, strategies, 6, 4, ops, seed=9, check=False)
    assert outcomes(ref) == outcomes(fast)
    assert ref[-1] == fast[-1]


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
def test_positions_and_oldest_at_scale_match():
    """Thousands of waiting calls with abandons from the middle: the Fenwick
    position index (Cython) against the plain count (reference)."""
    import random
    from acdcore import AgentConfig, CallAbandoned, CallArrived, QueueConfig
    r = random.Random(5)
    engines = [cls([QueueConfig("q")], [AgentConfig("a", {"q": 0})])
               for cls in (ReferenceScheduler, Scheduler)]
    alive, prio = [], {}
    for i in range(6000):
        if alive and r.random() < 0.35:
            gone = alive.pop(r.randrange(len(alive)))
            for s in engines:
                s.handle(CallAbandoned(i, gone))
        else:
            cid = f"c{i}"
            alive.append(cid)
            prio[cid] = r.choice([0, 0, 0, 1, 5])
            for s in engines:
                s.handle(CallArrived(i, cid, "q", priority=prio[cid]))
        if i % 500 == 0 and alive:
            sample = r.sample(alive, min(20, len(alive)))
            ref, fast = engines
            assert [ref.queue_position(c) for c in sample] == \
                [fast.queue_position(c) for c in sample]
            assert ref.oldest_wait_start("q") == fast.oldest_wait_start("q")
    ref, fast = engines
    truth = sorted(alive, key=lambda c: (-prio[c], int(c[1:])))
    assert [fast.queue_position(c) for c in truth] == list(range(1, len(alive) + 1))
    assert [ref.queue_position(c) for c in truth] == list(range(1, len(alive) + 1))
    ref.check_invariants()
    fast.check_invariants()


# Pickups need calls ringing: many arrivals and logins, few answers.
PICKUP_KINDS = [0, 0, 0, 0, 1, 2, 3, 3, 6, 6, 7, 8, 9, 10, 11, 13, 17, 17, 17, 17]


@pytest.mark.skipif(not COMPILED, reason="Cython engine not built")
@SETTINGS
@given(CONFIG, st.lists(st.tuples(st.sampled_from(PICKUP_KINDS), st.integers(0, 19),
                                  st.integers(0, 19), st.integers(0, 4)),
                        min_size=5, max_size=200))
def test_cython_matches_reference_on_pickup_heavy_runs(config, ops):
    engines_agree(config, ops)


def test_generated_runs_reach_pickups_both_ways():
    """The pickup op is not vacuous: seeded runs pick ringing calls up (a
    Connect that was no answer) and get refusals (the call was not ringing)."""
    import random
    from acdcore import CallPickedUp
    won = refused = 0
    for it in range(40):
        r = random.Random(it)
        ops = [(r.choice(PICKUP_KINDS), r.randrange(20), r.randrange(20), r.randrange(3))
               for _ in range(150)]
        for ev, outcome, _ in run(ReferenceScheduler, [Strategy.RING_ALL, Strategy.LINEAR], 4,
                                  it % 6, ops, seed=it)[:-1]:
            if isinstance(ev, CallPickedUp):
                if outcome and outcome[0] == ("Connect", ev.call_id, ev.agent_id):
                    won += 1
                elif outcome[:2] == ("error", "PickupRefused"):
                    refused += 1
    assert won >= 30 and refused >= 30, (won, refused)   # 51 and 738 when written
