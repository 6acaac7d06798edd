# Agent-side event handlers of the Cython Scheduler; each mirrors its
# namesake in ref_agents.py.


cdef int _end_wrap(Scheduler self, int a) except -1:
    pending = self.pause_pending[a]
    if pending is not None:
        _set_agent(self, a, A_PAUSE)
        self.pause_reason[a] = pending
        self.pause_pending[a] = None
        return 0
    _set_agent(self, a, A_WRAP_DONE)
    _free_and_match(self, a)
    return 0


cdef int _login(Scheduler self, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    _set_agent(self, a, A_LOGIN)
    self.agents[a].idle_since = self.now
    self.agents[a].no_answers = 0
    _free_and_match(self, a)
    return 0


cdef int _drop_offer(Scheduler self, int a, int inp, str reason) except -1:
    """The agent leaves while ringing: cancel its offer, the call goes on."""
    cdef int c = self.agents[a].call
    _remove_offer(self, c, a)
    _set_agent(self, a, inp)
    _tombstone(self, a, c, reason)
    self.out.append(_act3(CancelOffer, self.call_ids[c], self.agent_ids[a], reason))
    if self.calls[c].n_offers == 0:
        _offer_lost(self, c, [])
    return 0


cdef int _logout(Scheduler self, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef AgentRec* ag = &self.agents[a]
    self.pause_pending[a] = None
    if ag.state == OFFERED:
        return _drop_offer(self, a, A_LOGOUT, "agent_logged_out")
    if ag.state == BUSY and ag.call >= 0:
        self.calls[ag.call].agent = -1
        ag.call = -1
    if ag.outbound == OUT_ON_CALL:
        ag.outbound = OUT_DROPPED
    _set_agent(self, a, A_LOGOUT)
    return 0


cdef int _pause(Scheduler self, object agent_id, object reason) except -1:
    cdef int a = self._agent(agent_id)
    cdef int st = self.agents[a].state
    if st == BUSY:
        _set_agent(self, a, A_PAUSE)
        self.pause_pending[a] = reason
        return 0
    if st == OFFERED:
        _drop_offer(self, a, A_PAUSE, "agent_paused")
    else:
        _set_agent(self, a, A_PAUSE)
    self.pause_reason[a] = reason
    return 0


cdef int _ready(Scheduler self, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef AgentRec* ag = &self.agents[a]
    cdef int old = ag.state
    _set_agent(self, a, A_READY)
    self.pause_pending[a] = None
    if old == PAUSED:
        ag.no_answers = 0
    if old == PAUSED or old == WRAP_UP or (old == AVAILABLE and not ag.free):
        ag.ready_stamp = 0
        _free_and_match(self, a)
    return 0


cdef int _wrap_done(Scheduler self, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    if self.agents[a].state == WRAP_UP:
        return _end_wrap(self, a)
    _set_agent(self, a, A_WRAP_DONE)
    return 0


cdef int _outbound(Scheduler self, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef int old = self.agents[a].state
    _set_agent(self, a, A_OUTBOUND)
    if old == PAUSED:
        self.pause_pending[a] = self.pause_reason[a]
    self.agents[a].outbound = OUT_ON_CALL
    return 0


cdef int _outbound_ended(Scheduler self, object agent_id, bint talked) except -1:
    cdef int a = self._agent(agent_id)
    cdef AgentRec* ag = &self.agents[a]
    if ag.outbound != OUT_ON_CALL:
        if ag.outbound == OUT_DROPPED:
            ag.outbound = OUT_NONE
            return 0
        raise AcdError(f"agent {_shown_agent(self, agent_id)!r} is not on an outbound call")
    ag.outbound = OUT_NONE
    cdef double wrap = 0.0
    if talked:
        ag.idle_since = self.now
        wrap = ag.wrap_up
        if wrap < 0:
            wrap = self.queues[ag.mems[0].queue].wrap_up if ag.n_mem else 0.0
    _set_agent(self, a, A_CALL_END)
    if wrap > 0:
        ag.wrap_stamp = self._next_stamp()
        _push_after(self, _fifo_for(self, wrap), wrap, T_WRAP, a, ag.wrap_stamp)
    else:
        _end_wrap(self, a)
    return 0


cdef int _drain_empty(Scheduler self) except -1:
    cdef int qi, c
    cdef Py_ssize_t i
    cdef _RankBox box
    cdef CallRec* cr
    while self.empty:
        qi = self.empty.pop(0)
        if self.queues[qi].serving:
            continue
        waiting = []
        for box in (<dict>self.queue_ranks[qi]).values():
            for i in range(box.r.cap):
                c = box.r.calls[i]
                if c >= 0 and self.calls[c].state == C_WAITING:
                    cr = &self.calls[c]
                    waiting.append((-cr.prio, cr.t_enq, cr.seq, c))
        waiting.sort()
        for item in waiting:
            _exit(self, item[3], "empty")
    return 0
