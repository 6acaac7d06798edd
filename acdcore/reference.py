"""ReferenceScheduler: the executable specification of the ACD rules.

Plain Python, written to be read.  The Cython engine (``_scheduler.pyx``)
must produce exactly the same actions for the same events; the differential
tests in tests/acdcore enforce it.  Rules in one place:

* Matching is work-conserving: after every event no waiting call has a free
  agent that may take it.  A new call takes the best free agent of its lane
  (lanes.py); an agent becoming free takes the best waiting call over all its
  lanes -- ``(-priority, enqueue time)`` first, or with
  ``fairness="weight"`` the highest queue weight first -- so an agent in
  several queues serves them oldest-first.
* Ring timeouts and rejects put the call back in its place (its enqueue key
  never changes).  The next offer avoids the agent that just declined when
  another free agent exists.  Agents freed together (ring-all losers, ring-
  all timeout) first all become free, then each picks its best call.
* Max wait: a waiting call exits with "timeout"; a ringing call is allowed to
  finish ringing and exits if the offer fails.  Callback entries never time
  out (nobody is on hold).
* Empty queue = no agent logged in and unpaused.  ``join_empty=False`` (or
  ``leave_when_empty``) rejects arrivals into an empty queue with "empty";
  ``leave_when_empty`` also drains it when it becomes empty.
* Races: an answer to an offer the engine cancelled (caller gone, answered
  elsewhere, timeout, agent logged out) yields ``CancelOffer`` again with the
  original reason (each agent remembers its last cancelled offer); a late
  reject is ignored.  Anything else unknown raises ``AcdError``.
* Time: timers due at or before an event fire first; an event older than the
  clock is handled "now".

Identifiers: call and agent ids are any hashable (str at the API; ints work
too).  ``handle_raw`` is the same as ``handle`` without an event object.
"""
from __future__ import annotations

import heapq

from . import events as E
from .actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                      OfferTimedOut, WrapUpEnded)
from .errors import AcdError, UnknownAgent, UnknownCall, UnknownQueue
from .ewt import HANDLE_WINDOW, expected_wait, mean_handle
from .lanes import Lane, agent_key, compact, note_offered
from .model import AgentConfig, QueueConfig, Strategy
from .rng import SplitMix64
from .skills import ANY, eligible, normalize, relax_moments, relaxed, score
from .states import (AGENT_STATE_NAMES, AVAILABLE, BUSY, C_ABANDON, C_ANSWER,
                     C_CALLBACK, C_END, C_EXIT, C_GONE, C_LOST, C_OFFER, C_OFFERED,
                     C_RELAX, C_TALKING, C_WAITING, C_WITHDRAW, LOGGED_OUT, OFFERED,
                     PAUSED, SERVING_STATES, WRAP_UP, A_ANSWER, A_AUTOPAUSE,
                     A_CALL_END, A_CANCEL, A_DECLINE, A_LOGIN, A_LOGOUT, A_OFFER,
                     A_PAUSE, A_READY, A_WRAP_DONE, agent_next, call_next)
from .ref_parts import Agent, Call, Queue, check_invariants

T_RING, T_MAXWAIT, T_WRAP, T_READY, T_RELAX = range(5)


class ReferenceScheduler:
    COMPILED = False

    def __init__(self, queues: list[QueueConfig], agents: list[AgentConfig], seed: int = 0,
                 fairness: str = "oldest"):
        if fairness not in ("oldest", "weight"):
            raise ValueError("fairness must be 'oldest' or 'weight'")
        self._by_weight = fairness == "weight"
        self._rng = SplitMix64(seed)
        self._now = float("-inf")
        self._stamp = 0
        self._seq = 0
        self._tseq = 0
        self._timers: list = []
        self._out: list = []
        self._empty: list = []
        self._queues: dict[str, Queue] = {}
        self._agents: dict = {}
        self._calls: dict = {}
        self._classes: dict = {ANY: 0}
        self._lanes: list[Lane] = []
        self._n_agents = 0
        for qc in queues:
            if qc.name in self._queues:
                raise ValueError(f"duplicate queue {qc.name}")
            q = Queue(qc, len(self._queues))
            self._queues[qc.name] = q
            self._lane(q, ANY)
        for ac in agents:
            self.add_agent(ac)

    # -- configuration ------------------------------------------------------
    def add_agent(self, cfg: AgentConfig) -> None:
        if cfg.agent_id in self._agents:
            raise AcdError(f"agent {cfg.agent_id!r} exists")
        for name in cfg.queues:
            if name not in self._queues:
                raise UnknownQueue(name)
        a = Agent(cfg, self._n_agents)
        self._n_agents += 1
        for name, penalty in cfg.queues.items():
            q = self._queues[name]
            midx = q.next_member
            q.next_member += 1
            q.members.append((a, penalty, midx))
            a.memberships.append((q, penalty, midx))
            q.counts[LOGGED_OUT] += 1
            for lane in q.lane_list:
                if eligible(cfg.skills, lane.req):
                    a.lanes.append((lane, penalty, midx))
        self._agents[cfg.agent_id] = a

    def remove_agent(self, agent_id) -> None:
        """Only a logged-out agent can be removed (log it out first)."""
        a = self._agent(agent_id)
        if a.state != LOGGED_OUT:
            raise AcdError(f"agent {agent_id!r} must be logged out to be removed")
        for q, _, _ in a.memberships:
            q.members = [m for m in q.members if m[0] is not a]
            q.counts[LOGGED_OUT] -= 1
        del self._agents[agent_id]

    # -- the event entry points ---------------------------------------------
    def handle(self, ev) -> list:
        code = E.EVENT_CODES.get(type(ev))
        if code is None:
            raise AcdError(f"not an event: {ev!r}")
        return self.handle_raw(code, ev.t, getattr(ev, "call_id", None),
                               getattr(ev, "agent_id", None), ev)

    def handle_raw(self, code: int, t: float, call_id=None, agent_id=None, ev=None,
                   queue=None, priority: int = 0, /) -> list:
        """``handle`` without an event object, for hot loops (simulator,
        benchmark).  Positional only: ``(code, t, call_id, agent_id, ev, queue,
        priority)`` with ``code`` one of ``events.EV_*``; ``ev`` (optional)
        supplies the rarer fields: skills, callback, pause/withdraw reason."""
        self._out = out = []
        self._fire_due(t)
        if t > self._now:
            self._now = t
        try:
            self._event(code, call_id, agent_id, ev, queue, priority)
        except AcdError as exc:
            exc.actions = out  # what timers due before the bad event produced
            raise
        self._drain_empty()
        return out

    def _event(self, code, call_id, agent_id, ev, queue, priority) -> None:
        if code == E.EV_CALL_ARRIVED:
            if ev is not None:
                queue, priority = ev.queue, ev.priority
            self._arrive(call_id, queue, priority,
                         ev.skills if ev is not None else (),
                         ev.callback if ev is not None else False)
        elif code == E.EV_OFFER_ANSWERED:
            self._answered(call_id, agent_id)
        elif code == E.EV_CALL_ENDED:
            self._ended(call_id)
        elif code == E.EV_CALL_ABANDONED:
            self._gone(call_id, C_ABANDON, "caller_gone")
        elif code == E.EV_CALL_WITHDRAWN:
            self._gone(call_id, C_WITHDRAW, "withdrawn")
        elif code == E.EV_OFFER_REJECTED:
            self._rejected(call_id, agent_id)
        elif code == E.EV_AGENT_LOGGED_IN:
            self._login(agent_id)
        elif code == E.EV_AGENT_LOGGED_OUT:
            self._logout(agent_id)
        elif code == E.EV_AGENT_READY:
            self._ready(agent_id)
        elif code == E.EV_AGENT_PAUSED:
            self._pause(agent_id, ev.reason if ev is not None else "paused")
        elif code == E.EV_WRAP_UP_DONE:
            self._wrap_done(agent_id)
        elif code == E.EV_CALLBACK_REQUESTED:
            self._callback(call_id)
        elif code != E.EV_TICK:
            raise AcdError(f"unknown event code {code}")

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    # -- lookups --------------------------------------------------------------
    def _agent(self, agent_id) -> Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise UnknownAgent(agent_id) from None

    def _call(self, call_id) -> Call:
        try:
            return self._calls[call_id]
        except KeyError:
            raise UnknownCall(call_id) from None

    def _queue(self, name) -> Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise UnknownQueue(name) from None

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

    # -- timers ---------------------------------------------------------------
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

    # -- agent state ----------------------------------------------------------
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

    # -- matching ---------------------------------------------------------------
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
        """Offer waiting call ``c`` to the best free agent(s) of its lane."""
        lane = c.lane
        if lane.queue.strategy is Strategy.RING_ALL:
            top = self._pool_top(lane)
            if top is None:
                return False
            tier = top[0]  # ring the best penalty tier only
            agents = []
            while top is not None and top[0] == tier:
                heapq.heappop(lane.pool)
                agents.append(top[5])
                top = self._pool_top(lane)
            self._offer(c, agents)
            return True
        e = self._pool_top(lane)
        if e is None:
            return False
        heapq.heappop(lane.pool)
        if e[5] is c.avoid:
            e2 = self._pool_top(lane)
            if e2 is not None:
                heapq.heappop(lane.pool)
                heapq.heappush(lane.pool, e)
                e = e2
        note_offered(lane, e)
        self._offer(c, [e[5]])
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

    # -- calls ------------------------------------------------------------------
    def _arrive(self, call_id, queue, priority, skills, callback) -> None:
        if call_id in self._calls:
            raise AcdError(f"call {call_id!r} already queued")
        q = self._queue(queue)
        if q.serving == 0 and (not q.cfg.join_empty or q.cfg.leave_when_empty):
            self._out.append(CallExited(call_id, q.cfg.name, "empty"))
            return
        if q.cfg.max_len and q.n_in_queue >= q.cfg.max_len:
            self._out.append(CallExited(call_id, q.cfg.name, "full"))
            return
        self._seq += 1
        c = Call(call_id, self._seq, self._next_stamp(), q, int(priority), self._now,
                 bool(callback), normalize(skills))
        self._calls[call_id] = c
        q.n_in_queue += 1
        q.in_queue[c] = None
        if q.cfg.max_wait > 0:
            self._push_timer(self._now + q.cfg.max_wait, T_MAXWAIT, c, c.life)
        c.lane = self._lane(q, self._effective_req(c))
        self._enqueue(c)
        self._dispatch(c)

    def _effective_req(self, c: Call):
        """Advance the call's relax step to its wait and schedule the next step."""
        if not c.base_req:
            return ANY
        moments = c.queue.relax
        waited = self._now - c.t_enq
        while c.relax_step < len(moments) and moments[c.relax_step][0] <= waited:
            c.relax_step += 1
        if c.relax_step < len(moments):
            self._push_timer(c.t_enq + moments[c.relax_step][0], T_RELAX, c, c.life)
        if c.relax_step == 0:
            return c.base_req
        return relaxed(c.base_req, moments[c.relax_step - 1][1])

    def _relax(self, c: Call) -> None:
        c.state = call_next(c.state, C_RELAX)
        lane = self._lane(c.queue, self._effective_req(c))
        if lane is c.lane:
            return
        c.lane = lane
        if c.state == C_WAITING:
            self._enqueue(c)
            self._dispatch(c)

    def _leave_queue(self, c: Call) -> None:
        c.queue.n_in_queue -= 1
        del c.queue.in_queue[c]

    def _exit(self, c: Call, reason: str) -> None:
        c.state = call_next(c.state, C_EXIT)
        self._out.append(CallExited(c.id, c.queue.cfg.name, reason))
        self._leave_queue(c)
        del self._calls[c.id]

    def _cancel_all(self, c: Call, inp: int, reason: str) -> list:
        agents = c.offers
        c.offers = []
        for a in agents:
            self._set_agent(a, inp)
            self._tombstone(a, c, reason)
            self._out.append(CancelOffer(c.id, a.cfg.agent_id, reason))
        return agents

    def _gone(self, call_id, inp: int, reason: str) -> None:
        c = self._call(call_id)
        c.state = call_next(c.state, inp)
        agents = self._cancel_all(c, A_CANCEL, reason)
        self._leave_queue(c)
        del self._calls[c.id]
        self._release(agents)

    def _callback(self, call_id) -> None:
        c = self._call(call_id)
        c.state = call_next(c.state, C_CALLBACK)
        c.callback = True
        c.expired = False
        if c.state == C_OFFERED:
            agents = self._cancel_all(c, A_CANCEL, "caller_gone")
            self._offer_lost(c, agents)

    def _answered(self, call_id, agent_id) -> None:
        a = self._agent(agent_id)
        c = self._calls.get(call_id)
        if a.state != OFFERED or c is None or a.call is not c:
            if a.last_cancel is not None and a.last_cancel == call_id:
                self._out.append(CancelOffer(call_id, a.cfg.agent_id, a.last_cancel_reason))
                return
            raise AcdError(f"agent {agent_id!r} has no offer of call {call_id!r}")
        c.state = call_next(c.state, C_ANSWER)
        self._set_agent(a, A_ANSWER)
        a.no_answers = 0
        a.calls += 1
        c.agent = a
        c.answered_at = self._now
        others = [x for x in c.offers if x is not a]
        c.offers = []
        self._leave_queue(c)
        self._out.append(Connect(c.id, a.cfg.agent_id))
        for x in others:
            self._set_agent(x, A_CANCEL)
            self._tombstone(x, c, "answered_elsewhere")
            self._out.append(CancelOffer(c.id, x.cfg.agent_id, "answered_elsewhere"))
        self._release(others)

    def _rejected(self, call_id, agent_id) -> None:
        a = self._agent(agent_id)
        c = self._calls.get(call_id)
        if a.state != OFFERED or c is None or a.call is not c:
            if a.last_cancel is not None and a.last_cancel == call_id:
                return  # the offer was already withdrawn: nothing to undo
            raise AcdError(f"agent {agent_id!r} has no offer of call {call_id!r}")
        c.offers.remove(a)
        a.call = None
        self._set_agent(a, A_DECLINE)
        delay = c.queue.cfg.reject_delay
        if delay > 0:
            a.ready_stamp = self._next_stamp()
            self._push_timer(self._now + delay, T_READY, a, a.ready_stamp)
        c.avoid = a
        if c.offers:
            self._release([a])
        else:
            self._offer_lost(c, [a])

    def _ring_timeout(self, c: Call) -> None:
        agents = c.offers
        c.offers = []
        limit = c.queue.cfg.autopause_after
        for a in agents:
            self._out.append(OfferTimedOut(c.id, a.cfg.agent_id))
            self._set_agent(a, A_DECLINE)
            self._tombstone(a, c, "timeout")
            a.no_answers += 1
            if limit and a.no_answers >= limit:
                self._set_agent(a, A_AUTOPAUSE)
                a.pause_reason = "no_answer"
                a.no_answers = 0
                self._out.append(AgentAutoPaused(a.cfg.agent_id, "no_answer"))
        if len(agents) == 1:
            c.avoid = agents[0]
        self._offer_lost(c, agents)

    def _ended(self, call_id) -> None:
        c = self._call(call_id)
        c.state = call_next(c.state, C_END)
        del self._calls[c.id]
        a = c.agent
        if a is None:
            return  # the agent logged out during the call
        q = c.queue
        talk = self._now - c.answered_at
        a.talk += talk
        a.idle_since = self._now
        a.call = None
        wrap = a.cfg.wrap_up if a.cfg.wrap_up is not None else q.cfg.wrap_up
        q.add_handle_sample(talk + wrap)
        self._set_agent(a, A_CALL_END)
        if wrap > 0:
            a.wrap_stamp = self._next_stamp()
            self._push_timer(self._now + wrap, T_WRAP, a, a.wrap_stamp)
        else:
            self._end_wrap(a)

    # -- agents -----------------------------------------------------------------
    def _end_wrap(self, a: Agent) -> None:
        if a.pause_pending is not None:
            self._set_agent(a, A_PAUSE)
            a.pause_reason, a.pause_pending = a.pause_pending, None
            return
        self._set_agent(a, A_WRAP_DONE)
        self._make_free(a)
        self._match_agent(a)

    def _login(self, agent_id) -> None:
        a = self._agent(agent_id)
        self._set_agent(a, A_LOGIN)
        a.idle_since = self._now
        a.no_answers = 0
        self._make_free(a)
        self._match_agent(a)

    def _drop_offer(self, a: Agent, inp: int, reason: str) -> None:
        """The agent leaves while ringing: cancel its offer, the call goes on."""
        c = a.call
        c.offers.remove(a)
        self._set_agent(a, inp)
        self._tombstone(a, c, reason)
        self._out.append(CancelOffer(c.id, a.cfg.agent_id, reason))
        if not c.offers:
            self._offer_lost(c, [])

    def _logout(self, agent_id) -> None:
        a = self._agent(agent_id)
        a.pause_pending = None
        if a.state == OFFERED:
            self._drop_offer(a, A_LOGOUT, "agent_logged_out")
            return
        if a.state == BUSY:
            a.call.agent = None
            a.call = None
        self._set_agent(a, A_LOGOUT)

    def _pause(self, agent_id, reason: str) -> None:
        a = self._agent(agent_id)
        if a.state == BUSY:
            self._set_agent(a, A_PAUSE)
            a.pause_pending = reason
            return
        if a.state == OFFERED:
            self._drop_offer(a, A_PAUSE, "agent_paused")
        else:
            self._set_agent(a, A_PAUSE)
        a.pause_reason = reason

    def _ready(self, agent_id) -> None:
        a = self._agent(agent_id)
        old = a.state
        self._set_agent(a, A_READY)
        a.pause_pending = None
        if old == PAUSED:
            a.no_answers = 0
        if old in (PAUSED, WRAP_UP) or (old == AVAILABLE and not a.free):
            a.ready_stamp = 0
            self._make_free(a)
            self._match_agent(a)

    def _wrap_done(self, agent_id) -> None:
        a = self._agent(agent_id)
        if a.state == WRAP_UP:
            self._end_wrap(a)
        else:
            self._set_agent(a, A_WRAP_DONE)

    def _drain_empty(self) -> None:
        while self._empty:
            q = self._empty.pop(0)
            if q.serving:
                continue
            waiting = sorted((c for c in q.in_queue if c.state == C_WAITING),
                             key=lambda c: (-c.priority, c.t_enq, c.seq))
            for c in waiting:
                self._exit(c, "empty")

    # -- read-only queries ------------------------------------------------------
    def agent_state(self, agent_id) -> str:
        return AGENT_STATE_NAMES[self._agent(agent_id).state]

    def agent_pause_reason(self, agent_id) -> str | None:
        a = self._agent(agent_id)
        return a.pause_reason if a.state == PAUSED else None

    def call_state(self, call_id) -> str:
        from .states import CALL_STATE_NAMES
        return CALL_STATE_NAMES[self._call(call_id).state]

    def queue_position(self, call_id) -> int | None:
        """1-based among the queue's waiting and ringing calls; None once connected."""
        c = self._call(call_id)
        if c.state == C_TALKING:
            return None
        me = (-c.priority, c.seq)
        return 1 + sum(1 for o in c.queue.in_queue if (-o.priority, o.seq) < me)

    def ewt(self, call_id) -> float | None:
        pos = self.queue_position(call_id)
        if pos is None:
            return None
        q = self._calls[call_id].queue
        return expected_wait(pos, q.serving,
                             mean_handle(q.handle, q.handle_count, q.cfg.handle_time_hint))

    def waiting_count(self, queue) -> int:
        """Calls in the queue: waiting or ringing an agent."""
        return self._queue(queue).n_in_queue

    def oldest_wait_start(self, queue) -> float | None:
        q = self._queue(queue)
        return min((c.t_enq for c in q.in_queue), default=None)

    def agents_by_state(self, queue) -> dict[str, int]:
        q = self._queue(queue)
        return dict(zip(AGENT_STATE_NAMES, q.counts))

    def heap_sizes(self) -> dict[str, int]:
        """Entries held in the engine's heaps, stale ones included (memory checks)."""
        return {"timers": len(self._timers),
                "pools": sum(len(lane.pool) for lane in self._lanes),
                "waiting": sum(len(lane.waiting) for lane in self._lanes)}

    def check_invariants(self) -> None:
        check_invariants(self)

