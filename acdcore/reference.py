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
  never changes).  Agents freed together (ring-all losers, ring-all
  timeout) first all become free, then each picks its best call.
* Hunting (every strategy): a call remembers the agents that failed it --
  rejected (busy) or let it ring out -- in the current *round*.  An offer
  goes to the best free agent of the call's lane outside that set; only when
  every free agent of the lane is in it does a new round start (the set is
  cleared) and the best free agent rings again, so a lone agent still gets
  the call.  Ring-all rings the best tier among the untried free agents (a
  tier's tried members stay quiet), else starts a new round.  The set
  belongs to the call, not the lane: it survives skill relaxation and a
  callback request; agents that leave while ringing (pause, logout) have
  not failed it.  Cost: the tried agents at the top of the pool are popped
  and pushed back, O(k log n) for k failures of this call.
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
* Pickup: an agent serving the call's queue takes a *ringing* call (any
  other is refused with ``PickupRefused``, nothing changed); ``Connect`` to
  it, then ``CancelOffer(..., "picked_up")`` to every ringing agent, who are
  released as ring-all losers are.  See states.py, "Pickup".
* Time: timers due at or before an event fire first; an event older than the
  clock is handled "now".

Identifiers: call and agent ids are any hashable (str at the API; ints work
too).  ``handle_raw`` is the same as ``handle`` without an event object.

The rules are spread over three mixins, one concept each: ref_matching.py
(timers, agent state, how calls meet agents), ref_calls.py (caller events)
and ref_agents.py (agent events).  This file holds configuration, the event
entry points and the read-only queries.
"""
from __future__ import annotations

import heapq

from . import events as E
from .errors import AcdError, UnknownAgent, UnknownCall, UnknownQueue
from .ewt import expected_wait, mean_handle
from .model import AgentConfig, QueueConfig
from .ref_agents import AgentRules
from .ref_calls import CallRules
from .ref_matching import Matching
from .lanes import Lane
from .ref_parts import Agent, Call, Queue, check_invariants
from .rng import SplitMix64
from .skills import ANY, eligible
from .states import (AGENT_STATE_NAMES, C_TALKING, CALL_STATE_NAMES, LOGGED_OUT, PAUSED,
                     C_ABANDON, C_WITHDRAW)


class ReferenceScheduler(CallRules, AgentRules, Matching):
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
        elif code == E.EV_AGENT_OUTBOUND:
            self._outbound(agent_id)
        elif code == E.EV_OUTBOUND_ENDED:
            self._outbound_ended(agent_id, ev.wrap_up if ev is not None else True)
        elif code == E.EV_CALL_PICKED_UP:
            self._picked_up(call_id, agent_id)
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

    # -- read-only queries ------------------------------------------------------
    def agent_state(self, agent_id) -> str:
        return AGENT_STATE_NAMES[self._agent(agent_id).state]

    def agent_pause_reason(self, agent_id) -> str | None:
        a = self._agent(agent_id)
        return a.pause_reason if a.state == PAUSED else None

    def call_state(self, call_id) -> str:
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

    def queue_ewt(self, queue) -> float | None:
        """EWT of a caller who would join ``queue`` now, behind every call in it
        (position = waiting + ringing + 1); None while nobody serves it."""
        q = self._queue(queue)
        return expected_wait(q.n_in_queue + 1, q.serving,
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

