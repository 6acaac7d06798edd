"""Lanes: where calls meet agents (used by the reference scheduler).

A *lane* is one (queue, skill class) pair.  It holds two heaps with lazy
deletion:

* ``waiting``: the calls of that class waiting in that queue, keyed
  ``(-priority, enqueue time, seq, stamp)``;
* ``pool``: the free agents of the queue that meet the class, keyed by the
  queue's strategy, ``(penalty, k1, k2, agent serial, stamp)``.

An entry is live only while its stamp equals the owner's current stamp
(calls get a new stamp when they re-enter waiting, agents each time they
become free), so leaving a heap is O(1) and stale entries are dropped when
they surface.  A queue without skills has exactly one lane (class 0), so the
common case costs one heap push per free agent per queue.

Strategy keys are computed when the agent becomes free; what a key means is
documented in model.py.  Two strategies keep memory in the lane:

* round_robin: ``(rr_cycle, rr_last)``.  An agent becoming free behind the
  last offered member index gets the next cycle, so pops walk member indexes
  circularly from the last one offered.
* random / weighted_random: an exponential race.  Each free agent's key is
  ``clock + Exp(1) / weight`` where ``clock`` (per lane and penalty) moves to
  the winning key.  By memorylessness the winner is agent i with probability
  ``w_i / sum(w)`` among those free, whenever they became free.
"""
from __future__ import annotations

import heapq

from .model import Strategy
from .skills import Requirement


COMPACT_MIN = 64


class Lane:
    __slots__ = ("idx", "queue", "cls", "req", "waiting", "pool",
                 "rr_cycle", "rr_last", "clock", "pool_limit", "waiting_limit")

    def __init__(self, idx: int, queue, cls: int, req: Requirement):
        self.idx = idx
        self.queue = queue
        self.cls = cls
        self.req = req
        self.waiting: list = []
        self.pool: list = []
        self.rr_cycle = 0
        self.rr_last = -1
        self.clock: dict[int, float] = {}
        # Lazy deletion leaves stale entries; a lane that rarely pops (a backup
        # queue, a rare skill class) would grow forever.  Once a heap doubles
        # past its last compacted size, its stale entries are dropped
        # (amortised O(1) per push; live entries keep their order).
        self.pool_limit = COMPACT_MIN
        self.waiting_limit = COMPACT_MIN


def agent_key(lane: Lane, agent, penalty: int, member_idx: int, rng) -> tuple:
    """The pool key of ``agent`` in ``lane`` (without the stamp)."""
    s = lane.queue.strategy
    serial = agent.serial
    if s is Strategy.LINEAR or s is Strategy.RING_ALL:
        return (penalty, member_idx, 0.0, serial)
    if s is Strategy.ROUND_ROBIN:
        cyc = lane.rr_cycle if member_idx > lane.rr_last else lane.rr_cycle + 1
        return (penalty, cyc, member_idx, serial)
    if s is Strategy.LONGEST_IDLE:
        return (penalty, agent.idle_since, 0.0, serial)
    if s is Strategy.FEWEST_CALLS:
        return (penalty, agent.calls, agent.idle_since, serial)
    if s is Strategy.LEAST_TALK_TIME:
        return (penalty, agent.talk, agent.idle_since, serial)
    if s is Strategy.RANDOM:
        return (penalty, lane.clock.get(penalty, 0.0) + rng.exp1(), 0.0, serial)
    if s is Strategy.WEIGHTED_RANDOM:
        return (penalty, lane.clock.get(penalty, 0.0) + rng.exp1() / agent.cfg.weight,
                0.0, serial)
    if s is Strategy.SKILLS:
        return (penalty, -agent.score(lane.req), agent.idle_since, serial)
    raise AssertionError(s)


def note_offered(lane: Lane, key: tuple) -> None:
    """Update the lane's strategy memory after the agent with ``key`` got an offer."""
    s = lane.queue.strategy
    if s is Strategy.ROUND_ROBIN:
        if key[1] >= lane.rr_cycle:
            lane.rr_cycle = key[1]
            lane.rr_last = key[2]
    elif s is Strategy.RANDOM or s is Strategy.WEIGHTED_RANDOM:
        if key[1] > lane.clock.get(key[0], 0.0):
            lane.clock[key[0]] = key[1]


def compact(heap: list, live) -> int:
    """Drops the entries ``live`` rejects, restores heap order, returns the
    next size limit."""
    heap[:] = [e for e in heap if live(e)]
    heapq.heapify(heap)
    return max(COMPACT_MIN, 2 * len(heap))
