"""Timers, agent state and matching of the reference scheduler (a mixin of
ReferenceScheduler; see reference.py for the rules in prose).

How calls meet agents: every (queue, skill class) is a Lane (lanes.py) with a
heap of waiting calls and a pool of free agents.  A call that enters waiting
is dispatched to its lane's best free agent(s); an agent that becomes free
joins all its lanes' pools, then takes the best waiting call among them.
"""
from __future__ import annotations

import heapq

from .actions import Offer, WrapUpEnded
from .lanes import Lane, agent_key, compact, note_offered
from .model import Strategy
from .ref_parts import Agent, Call, Queue
from .skills import eligible
from .states import (AVAILABLE, C_LOST, C_OFFER, C_OFFERED, C_WAITING,
                     SERVING_STATES, WRAP_UP, A_OFFER, agent_next, call_next)

T_RING, T_MAXWAIT, T_WRAP, T_READY, T_RELAX = range(5)


class Matching:
    def _next_stamp(self) -> int:
        self._stamp += 1
        return self._stamp

    def _lane(self, q: Queue, req) -> Lane:
        cls = self._classes.setdefault(req, len(self._classes))
        lane = q.lanes.get(cls)
        if lane is None:
            # A new skill class: one pass over the queue's members, once.
            lane = Lane(len(self._lanes), q, cls, req)
            self._lanes.append(lane)
            q.lanes[cls] = lane
            q.lane_list.append(lane)
            for a, penalty, midx in q.members:
                if eligible(a.cfg.skills, req):
                    a.lanes.append((lane, penalty, midx))
                    if a.free:
                        self._push_agent(lane, a, penalty, midx)
        return lane

    def _push_timer(self, deadline: float, kind: int, obj, stamp: int) -> None:
        self._tseq += 1
        heapq.heappush(self._timers, (deadline, self._tseq, kind, obj, stamp))

    def _timer_live(self, entry) -> bool:
        _, _, kind, obj, stamp = entry
        if kind == T_RING:
            return obj.state == C_OFFERED and obj.offer_stamp == stamp
        if kind == T_MAXWAIT:
            return (obj.life == stamp and obj.state in (C_WAITING, C_OFFERED)
                    and not obj.callback and not obj.expired)
        if kind == T_RELAX:
            return obj.life == stamp and obj.state in (C_WAITING, C_OFFERED)
        if kind == T_WRAP:
            return obj.state == WRAP_UP and obj.wrap_stamp == stamp
        return obj.state == AVAILABLE and obj.ready_stamp == stamp  # T_READY

    def _fire_due(self, t: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= t:
            entry = heapq.heappop(timers)
            if not self._timer_live(entry):
                continue
            deadline, _, kind, obj, _ = entry
            if deadline > self._now:
                self._now = deadline
            if kind == T_RING:
                self._ring_timeout(obj)
            elif kind == T_MAXWAIT:
                if obj.state == C_WAITING:
                    self._exit(obj, "timeout")
                else:
                    obj.expired = True
            elif kind == T_RELAX:
                self._relax(obj)
            elif kind == T_WRAP:
                self._out.append(WrapUpEnded(obj.cfg.agent_id))
                self._end_wrap(obj)
            else:
                obj.ready_stamp = 0
                self._make_free(obj)
                self._match_agent(obj)
            self._drain_empty()

    def _set_agent(self, a: Agent, inp: int) -> None:
        old = a.state
        new = agent_next(old, inp)
        if new == old:
            return
        was_serving = old in SERVING_STATES
        serving = new in SERVING_STATES
        for q, _, _ in a.memberships:
            q.counts[old] -= 1
            q.counts[new] += 1
            if was_serving and not serving:
                q.serving -= 1
                if q.serving == 0 and q.cfg.leave_when_empty:
                    self._empty.append(q)
            elif serving and not was_serving:
                q.serving += 1
        a.state = new
        if new != AVAILABLE:
            a.free = False
            a.ready_stamp = 0

    def _push_agent(self, lane: Lane, a: Agent, penalty: int, midx: int) -> None:
        key = agent_key(lane, a, penalty, midx, self._rng)
        heapq.heappush(lane.pool, key + (a.free_stamp, a))
        if len(lane.pool) > lane.pool_limit:
            lane.pool_limit = compact(lane.pool, lambda e: e[5].free and e[5].free_stamp == e[4])

    def _make_free(self, a: Agent) -> None:
        a.free = True
        a.free_stamp = self._next_stamp()
        for lane, penalty, midx in a.lanes:
            self._push_agent(lane, a, penalty, midx)

    def _release(self, agents) -> None:
        """Agents that just became available: all join the pools, then each
        takes its best waiting call (so ring-all sees all of them)."""
        for a in agents:
            if a.state == AVAILABLE and not a.free and a.ready_stamp == 0:
                self._make_free(a)
        for a in agents:
            self._match_agent(a)

    def _tombstone(self, a: Agent, c: Call, reason: str) -> None:
        a.call = None
        a.last_cancel = c.id
        a.last_cancel_reason = reason

    @staticmethod
    def _pool_top(lane: Lane):
        pool = lane.pool
        while pool:
            e = pool[0]
            a = e[5]
            if a.free and a.free_stamp == e[4]:
                return e
            heapq.heappop(pool)
        return None

    @staticmethod
    def _waiting_top(lane: Lane):
        w = lane.waiting
        while w:
            e = w[0]
            c = e[4]
            if c.state == C_WAITING and c.wait_stamp == e[3]:
                return e
            heapq.heappop(w)
        return None

    def _dispatch(self, c: Call) -> bool:
        """Offer waiting call ``c`` to the best free agent(s) of its lane that
        have not failed it in this round (see "Hunting" in reference.py)."""
        lane = c.lane
        tried = c.tried
        skipped = []
        top = self._pool_top(lane)
        if tried and top is not None:
            # Set the agents that failed this call aside: O(k log n) for k
            # failures, never a scan of the pool.
            while top is not None and top[5] in tried:
                skipped.append(heapq.heappop(lane.pool))
                top = self._pool_top(lane)
            if top is None:
                # Every free agent of the lane failed it: a new round.
                c.tried = tried = None
                for e in skipped:
                    heapq.heappush(lane.pool, e)
                skipped = []
                top = self._pool_top(lane)
        if top is None:
            return False
        if lane.queue.strategy is Strategy.RING_ALL:
            tier = top[0]  # ring the best penalty tier only
            agents = []
            while top is not None and top[0] == tier:
                heapq.heappop(lane.pool)
                if tried and top[5] in tried:
                    skipped.append(top)
                else:
                    agents.append(top[5])
                top = self._pool_top(lane)
            for e in skipped:
                heapq.heappush(lane.pool, e)
            self._offer(c, agents)
            return True
        heapq.heappop(lane.pool)
        for e in skipped:
            heapq.heappush(lane.pool, e)
        note_offered(lane, top)
        self._offer(c, [top[5]])
        return True

    def _offer(self, c: Call, agents: list) -> None:
        c.state = call_next(c.state, C_OFFER)
        c.offer_stamp = self._next_stamp()
        c.offers = agents
        for a in agents:
            self._set_agent(a, A_OFFER)
            a.call = c
            self._out.append(Offer(c.id, a.cfg.agent_id, c.callback))
        self._push_timer(self._now + c.queue.cfg.ring_timeout, T_RING, c, c.offer_stamp)

    def _best_call(self, a: Agent):
        best = None
        best_key = None
        for lane, _, _ in a.lanes:
            e = self._waiting_top(lane)
            if e is None:
                continue
            key = (e[0], e[1], e[2])
            if self._by_weight:
                key = (-lane.queue.cfg.weight,) + key
            if best is None or key < best_key:
                best, best_key = e[4], key
        return best

    def _match_agent(self, a: Agent) -> None:
        while a.free:
            c = self._best_call(a)
            if c is None or not self._dispatch(c):
                return

    def _enqueue(self, c: Call) -> None:
        c.wait_stamp = self._next_stamp()
        lane = c.lane
        heapq.heappush(lane.waiting, (-c.priority, c.t_enq, c.seq, c.wait_stamp, c))
        if len(lane.waiting) > lane.waiting_limit:
            lane.waiting_limit = compact(
                lane.waiting, lambda e: e[4].state == C_WAITING and e[4].wait_stamp == e[3])

    def _offer_lost(self, c: Call, freed) -> None:
        c.state = call_next(c.state, C_LOST)
        if c.expired:
            self._exit(c, "timeout")
        else:
            self._enqueue(c)
        self._release(freed)
        if c.state == C_WAITING:
            self._dispatch(c)
