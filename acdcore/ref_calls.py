"""Caller-side events of the reference scheduler (a mixin of
ReferenceScheduler): arrival, skill relaxation, answer, reject, ring timeout,
abandon/withdraw, callback requests, call end."""
from __future__ import annotations

from .actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, OfferTimedOut)
from .errors import AcdError, PickupRefused
from .ref_matching import T_MAXWAIT, T_READY, T_RELAX
from .ref_parts import Call
from .skills import ANY, normalize, relaxed
from .states import (C_ANSWER, C_CALLBACK, C_END, C_EXIT, C_OFFERED, C_PICKUP, C_RELAX,
                     C_WAITING, OFFERED, PAUSED, A_ANSWER, A_AUTOPAUSE, A_CANCEL,
                     A_DECLINE, A_PICKUP, agent_next, call_next)


class CallRules:
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
        self._cancel_others(c, others, "answered_elsewhere")

    def _picked_up(self, call_id, agent_id) -> None:
        a = self._agent(agent_id)
        c = self._calls.get(call_id)
        if c is None or c.state != C_OFFERED:
            raise PickupRefused(f"call {call_id!r} is not ringing")
        if not any(q is c.queue for q, _, _ in a.memberships):
            raise PickupRefused(f"agent {agent_id!r} does not serve queue {c.queue.cfg.name!r}")
        agent_next(a.state, A_PICKUP)   # refuse before anything changes
        pending = a.pause_reason if a.state == PAUSED else None
        c.state = call_next(c.state, C_PICKUP)
        others = c.offers
        c.offers = []
        self._set_agent(a, A_PICKUP)
        if pending is not None:
            a.pause_pending = pending
        a.no_answers = 0
        a.calls += 1
        a.call = c
        c.agent = a
        c.answered_at = self._now
        self._leave_queue(c)
        self._out.append(Connect(c.id, a.cfg.agent_id))
        self._cancel_others(c, others, "picked_up")

    def _cancel_others(self, c: Call, others: list, reason: str) -> None:
        """Another agent took ``c``: the rest stop ringing and are free again."""
        for x in others:
            self._set_agent(x, A_CANCEL)
            self._tombstone(x, c, reason)
            self._out.append(CancelOffer(c.id, x.cfg.agent_id, reason))
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
        self._note_failed(c, a)
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
            self._note_failed(c, a)
        self._offer_lost(c, agents)

    @staticmethod
    def _note_failed(c: Call, a) -> None:
        """``a`` rejected ``c`` or let it ring out: skip it until a new round."""
        if c.tried is None:
            c.tried = set()
        c.tried.add(a)

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
        self._start_wrap(a, wrap)
