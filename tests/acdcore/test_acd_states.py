"""The transition tables: complete, strict, and what both engines obey."""
from __future__ import annotations

import itertools

import pytest

from acdcore import InvalidTransition, states as S
from acdcore.rng import SplitMix64


def test_every_state_has_a_row_and_targets_are_states():
    assert set(S.AGENT_TRANSITIONS) == set(range(len(S.AGENT_STATE_NAMES)))
    assert set(S.CALL_TRANSITIONS) == set(range(len(S.CALL_STATE_NAMES)))
    for row in S.AGENT_TRANSITIONS.values():
        assert set(row.values()) <= set(range(len(S.AGENT_STATE_NAMES)))
    for row in S.CALL_TRANSITIONS.values():
        assert set(row.values()) <= set(range(len(S.CALL_STATE_NAMES)))


def test_missing_entries_raise():
    for state, inp in itertools.product(range(6), range(len(S.AGENT_INPUT_NAMES))):
        if inp in S.AGENT_TRANSITIONS[state]:
            assert S.agent_next(state, inp) == S.AGENT_TRANSITIONS[state][inp]
        else:
            with pytest.raises(InvalidTransition):
                S.agent_next(state, inp)
    with pytest.raises(InvalidTransition, match="call cannot end while waiting"):
        S.call_next(S.C_WAITING, S.C_END)


def test_key_rules_of_the_agent_machine():
    # Only an available agent can be offered a call; only an offered one can answer.
    offerable = [s for s in range(6) if S.A_OFFER in S.AGENT_TRANSITIONS[s]]
    assert offerable == [S.AVAILABLE]
    answerable = [s for s in range(6) if S.A_ANSWER in S.AGENT_TRANSITIONS[s]]
    assert answerable == [S.OFFERED]
    assert S.AGENT_TRANSITIONS[S.BUSY][S.A_CALL_END] == S.WRAP_UP
    assert S.AGENT_TRANSITIONS[S.BUSY][S.A_PAUSE] == S.BUSY       # pending pause
    assert S.C_GONE not in (S.CALL_TRANSITIONS[S.C_TALKING].get(S.C_ABANDON),)


def test_flat_table_matches():
    flat = S.flat_table(S.AGENT_TRANSITIONS, 6, len(S.AGENT_INPUT_NAMES))
    n = len(S.AGENT_INPUT_NAMES)
    for s in range(6):
        for i in range(n):
            assert flat[s * n + i] == S.AGENT_TRANSITIONS[s].get(i, -1)


def test_splitmix64_reference_vector():
    # First outputs of splitmix64 seeded with 0 (Vigna's reference code).
    r = SplitMix64(0)
    assert [r.next_u64() for _ in range(3)] == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    u = SplitMix64(42).uniform()
    assert 0.0 <= u < 1.0


def test_who_may_pick_up_a_call():
    # Idle, in wrap-up or paused (the pause returns after the call); never
    # while logged out, ringing or talking.  Only a ringing caller is taken.
    pickers = [s for s in range(6) if S.A_PICKUP in S.AGENT_TRANSITIONS[s]]
    assert pickers == [S.AVAILABLE, S.WRAP_UP, S.PAUSED]
    assert {S.AGENT_TRANSITIONS[s][S.A_PICKUP] for s in pickers} == {S.BUSY}
    taken = [s for s in range(4) if S.C_PICKUP in S.CALL_TRANSITIONS[s]]
    assert taken == [S.C_OFFERED]
    assert S.CALL_TRANSITIONS[S.C_OFFERED][S.C_PICKUP] == S.C_TALKING
