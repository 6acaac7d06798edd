"""Records of the reference scheduler (agents, calls, queues) and its
invariant check.  Plain attribute bags: the rules live in reference.py."""
from __future__ import annotations

from .ewt import HANDLE_WINDOW
from .skills import eligible, relax_moments, score
from .states import (AVAILABLE, BUSY, C_OFFERED, C_TALKING, C_WAITING, OFFERED,
                     SERVING_STATES)

# Agent.outbound: no outbound call, on one, or logged out during one (its
# OutboundEnded is then expected and ignored, as CallEnded after a logout).
OUT_NONE, OUT_ON_CALL, OUT_DROPPED = range(3)


class Agent:
    __slots__ = ("cfg", "serial", "state", "call", "free", "free_stamp", "ready_stamp",
                 "wrap_stamp", "pause_reason", "pause_pending", "no_answers", "calls",
                 "talk", "idle_since", "memberships", "lanes", "last_cancel",
                 "last_cancel_reason", "outbound")

    def __init__(self, cfg, serial: int):
        self.cfg = cfg
        self.serial = serial
        self.state = 0
        self.call = None
        self.free = False
        self.free_stamp = 0
        self.ready_stamp = 0      # != 0 while a reject delay runs
        self.wrap_stamp = 0
        self.pause_reason = None
        self.pause_pending = None
        self.no_answers = 0
        self.calls = 0
        self.talk = 0.0
        self.idle_since = 0.0
        self.memberships: list = []   # (queue, penalty, member index)
        self.lanes: list = []         # (lane, penalty, member index)
        self.last_cancel = None
        self.last_cancel_reason = None
        self.outbound = OUT_NONE

    def score(self, req) -> int:
        return score(self.cfg.skills, req)


class Call:
    __slots__ = ("id", "seq", "life", "queue", "priority", "t_enq", "callback",
                 "base_req", "relax_step", "lane", "state", "wait_stamp", "offer_stamp",
                 "offers", "agent", "answered_at", "expired", "tried")

    def __init__(self, call_id, seq, life, queue, priority, t_enq, callback, base_req):
        self.id = call_id
        self.seq = seq
        self.life = life
        self.queue = queue
        self.priority = priority
        self.t_enq = t_enq
        self.callback = callback
        self.base_req = base_req
        self.relax_step = 0
        self.lane = None
        self.state = C_WAITING
        self.wait_stamp = 0
        self.offer_stamp = 0
        self.offers: list = []
        self.agent = None
        self.answered_at = 0.0
        self.expired = False
        self.tried = None         # agents that failed it this round (a set), or None


class Queue:
    __slots__ = ("cfg", "idx", "strategy", "relax", "lanes", "lane_list", "members",
                 "next_member", "counts", "serving", "n_in_queue", "in_queue",
                 "handle", "handle_count", "handle_pos")

    def __init__(self, cfg, idx):
        self.cfg = cfg
        self.idx = idx
        self.strategy = cfg.strategy
        self.relax = relax_moments(cfg)
        self.lanes: dict = {}
        self.lane_list: list = []
        self.members: list = []          # (agent, penalty, member index), config order
        self.next_member = 0
        self.counts = [0] * 6
        self.serving = 0
        self.n_in_queue = 0
        self.in_queue: dict = {}         # calls waiting or ringing (insertion ordered)
        self.handle = [0.0] * HANDLE_WINDOW
        self.handle_count = 0
        self.handle_pos = 0

    def add_handle_sample(self, seconds: float) -> None:
        self.handle[self.handle_pos] = seconds
        self.handle_pos = (self.handle_pos + 1) % HANDLE_WINDOW
        if self.handle_count < HANDLE_WINDOW:
            self.handle_count += 1


def check_invariants(s) -> None:
    """O(n) consistency check of a ReferenceScheduler (tests only)."""
    for q in s._queues.values():
        counts = [0] * 6
        for a, _, _ in q.members:
            counts[a.state] += 1
        assert counts == q.counts, (q.cfg.name, counts, q.counts)
        assert q.serving == sum(counts[st] for st in SERVING_STATES)
        assert q.n_in_queue == len(q.in_queue)
        for c in q.in_queue:
            assert c.state in (C_WAITING, C_OFFERED) and c.queue is q
    for a in s._agents.values():
        if a.state == OFFERED:
            c = a.call
            assert c is not None and c.state == C_OFFERED and a in c.offers
            assert s._calls.get(c.id) is c
        elif a.outbound == OUT_ON_CALL:
            assert a.state == BUSY and a.call is None, (a.cfg.agent_id, a.state)
        elif a.state == BUSY:
            assert a.call is not None and a.call.state == C_TALKING and a.call.agent is a
        else:
            assert a.call is None, (a.cfg.agent_id, a.state)
        if a.free:
            assert a.state == AVAILABLE and a.ready_stamp == 0
        elif a.state == AVAILABLE:
            assert a.ready_stamp != 0, f"agent {a.cfg.agent_id} idle but not offerable"
    live_lanes: dict = {}
    for c in s._calls.values():
        assert c.tried is None or c.tried, "an empty tried set is a new round: None"
        if c.state == C_WAITING:
            assert not c.offers
            assert c in c.queue.in_queue
            live = [e for e in c.lane.waiting if e[4] is c and e[3] == c.wait_stamp]
            assert len(live) == 1
            live_lanes[c.lane.idx] = c.lane
        elif c.state == C_OFFERED:
            assert c.offers and len(set(map(id, c.offers))) == len(c.offers)
            for a in c.offers:
                assert a.state == OFFERED and a.call is c
            assert c in c.queue.in_queue
        else:
            assert c.state == C_TALKING and c not in c.queue.in_queue
    # Work conservation: no waiting call has a free agent that could take it.
    for lane in live_lanes.values():
        for e in lane.pool:
            a = e[5]
            assert not (a.free and a.free_stamp == e[4]), \
                f"agent {a.cfg.agent_id} free while a call waits in its lane"
            assert eligible(a.cfg.skills, lane.req)
