"""Agent-side events of the reference scheduler (a mixin of
ReferenceScheduler): login/logout, pause/ready, wrap-up end, outbound calls
(states.py, "Outbound calls"), and draining queues that became empty."""
from __future__ import annotations

from .actions import CancelOffer
from .errors import AcdError
from .ref_matching import T_WRAP
from .ref_parts import OUT_DROPPED, OUT_NONE, OUT_ON_CALL, Agent
from .states import (AVAILABLE, BUSY, C_WAITING, OFFERED, PAUSED, WRAP_UP, A_CALL_END,
                     A_LOGIN, A_LOGOUT, A_OUTBOUND, A_PAUSE, A_READY, A_WRAP_DONE)


class AgentRules:
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
        if a.state == BUSY and a.call is not None:
            a.call.agent = None
            a.call = None
        if a.outbound == OUT_ON_CALL:
            a.outbound = OUT_DROPPED
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

    def _outbound(self, agent_id) -> None:
        a = self._agent(agent_id)
        old = a.state
        self._set_agent(a, A_OUTBOUND)  # offered, busy, logged out: InvalidTransition
        if old == PAUSED:
            a.pause_pending = a.pause_reason
        a.outbound = OUT_ON_CALL

    def _outbound_ended(self, agent_id, talked: bool) -> None:
        a = self._agent(agent_id)
        if a.outbound != OUT_ON_CALL:
            if a.outbound == OUT_DROPPED:
                a.outbound = OUT_NONE
                return
            raise AcdError(f"agent {agent_id!r} is not on an outbound call")
        a.outbound = OUT_NONE
        wrap = 0.0
        if talked:
            a.idle_since = self._now
            wrap = a.cfg.wrap_up
            if wrap is None:
                wrap = a.memberships[0][0].cfg.wrap_up if a.memberships else 0.0
        self._start_wrap(a, wrap)

    def _start_wrap(self, a: Agent, wrap: float) -> None:
        """The agent's call (queue or outbound) ended: ``wrap`` seconds of wrap-up."""
        self._set_agent(a, A_CALL_END)
        if wrap > 0:
            a.wrap_stamp = self._next_stamp()
            self._push_timer(self._now + wrap, T_WRAP, a, a.wrap_stamp)
        else:
            self._end_wrap(a)

    def _drain_empty(self) -> None:
        while self._empty:
            q = self._empty.pop(0)
            if q.serving:
                continue
            waiting = sorted((c for c in q.in_queue if c.state == C_WAITING),
                             key=lambda c: (-c.priority, c.t_enq, c.seq))
            for c in waiting:
                self._exit(c, "empty")
