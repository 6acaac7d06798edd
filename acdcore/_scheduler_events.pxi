# Event entry and the caller-side handlers of the Cython Scheduler
# (module-level: Cython forbids ``include`` in a class body).  Each mirrors
# its namesake in ref_calls.py; agent-side handlers are in
# _scheduler_agents.pxi.


cdef list _handle(Scheduler self, int code, double t, object ev, object call_id,
                  object agent_id, object queue, int priority, bint ev_ids):
    # ev_ids: take the ids from ``ev`` when it is given (handle, handle_raw);
    # InternedScheduler passes its ints beside the event instead.
    cdef list out = []
    self.out = out
    _fire_due_checked(self, t)
    if t > self.now:
        self.now = t
    try:
        _event(self, code, ev, call_id, agent_id, queue, priority, ev_ids)
    except AcdError as exc:
        exc.actions = out  # what timers due before the bad event produced
        raise
    if self.empty:
        _drain_empty(self)
    return out


cdef int _fire_due_checked(Scheduler self, double t) except -1:
    if self.timers.n > 0 and self.timers.data[0].k0 <= t:
        _fire_due(self, t)
    return 0


cdef int _event(Scheduler self, int code, object ev, object call_id, object agent_id,
                object queue, int priority, bint ev_ids) except -1:
    skills = ()
    callback = False
    if code == EV_CALL_ARRIVED:
        if ev is not None:
            if ev_ids:
                call_id = ev.call_id
            queue = ev.queue
            priority = ev.priority
            skills = ev.skills
            callback = ev.callback
        _arrive(self, call_id, queue, priority, skills, callback)
    elif code == EV_OFFER_ANSWERED:
        if ev is not None and ev_ids:
            call_id = ev.call_id
            agent_id = ev.agent_id
        _answered(self, call_id, agent_id)
    elif code == EV_CALL_ENDED:
        _ended(self, ev.call_id if ev is not None and ev_ids else call_id)
    elif code == EV_CALL_ABANDONED:
        _gone(self, ev.call_id if ev is not None and ev_ids else call_id, C_ABANDON, "caller_gone")
    elif code == EV_CALL_WITHDRAWN:
        _gone(self, ev.call_id if ev is not None and ev_ids else call_id, C_WITHDRAW, "withdrawn")
    elif code == EV_OFFER_REJECTED:
        if ev is not None and ev_ids:
            call_id = ev.call_id
            agent_id = ev.agent_id
        _rejected(self, call_id, agent_id)
    elif code == EV_TICK:
        pass
    elif code == EV_CALL_PICKED_UP:
        if ev is not None and ev_ids:
            call_id = ev.call_id
            agent_id = ev.agent_id
        _picked_up(self, call_id, agent_id)
    else:
        if ev is not None and ev_ids and code != EV_CALLBACK_REQUESTED:
            agent_id = ev.agent_id
        if code == EV_AGENT_LOGGED_IN:
            _login(self, agent_id)
        elif code == EV_AGENT_LOGGED_OUT:
            _logout(self, agent_id)
        elif code == EV_AGENT_READY:
            _ready(self, agent_id)
        elif code == EV_AGENT_PAUSED:
            _pause(self, agent_id, ev.reason if ev is not None else "paused")
        elif code == EV_WRAP_UP_DONE:
            _wrap_done(self, agent_id)
        elif code == EV_CALLBACK_REQUESTED:
            _callback(self, ev.call_id if ev is not None and ev_ids else call_id)
        elif code == EV_AGENT_OUTBOUND:
            _outbound(self, agent_id)
        elif code == EV_OUTBOUND_ENDED:
            _outbound_ended(self, agent_id, ev.wrap_up if ev is not None else True)
        else:
            raise AcdError(f"unknown event code {code}")
    return 0


# -- calls --------------------------------------------------------------------
cdef inline int _peek_slot(Scheduler self) noexcept:
    """The slot _alloc_call will return next."""
    if self.n_free > 0:
        return self.free_slots[self.n_free - 1]
    return self.n_slots


cdef int _alloc_call(Scheduler self) except -1:
    cdef CallRec* cr
    cdef int* fs
    if self.n_free > 0:
        self.n_free -= 1
        return self.free_slots[self.n_free]
    if self.n_slots == self.cap_calls:
        cr = _calls_alloc(self.calls, self.n_slots, 2 * self.cap_calls)
        if cr == NULL:
            raise MemoryError()
        self.calls = cr
        fs = <int*>realloc(self.free_slots, 2 * self.cap_calls * sizeof(int))
        if fs == NULL:
            raise MemoryError()
        self.free_slots = fs
        self.cap_calls *= 2
    self.call_ids.append(None)
    self.call_req.append(None)
    self.n_slots += 1
    return self.n_slots - 1


cdef int _free_call(Scheduler self, int c) except -1:
    if self.call_names is not None:
        self.call_names.pop_slot(self.calls[c].ext)
    else:
        _call_pop(self, self.call_ids[c])
    _free_slot(self, c)
    return 0


cdef int _free_slot(Scheduler self, int c) except -1:
    """Recycle the slot of a call whose id is already out of the index."""
    if self.call_names is not None:
        self.call_names.drop(self.calls[c].ext)
    self.call_ids[c] = None
    if self.calls[c].has_req:
        self.call_req[c] = None
    if self.calls[c].n_tried:
        _new_round(self, c)
    self.calls[c].state = C_GONE
    self.free_slots[self.n_free] = c
    self.n_free += 1
    return 0


cdef int _pop_call(Scheduler self, object call_id) except -1:
    """Look the call up and drop its id in one dict operation."""
    cdef int c = _call_pop(self, call_id)
    if c < 0:
        raise UnknownCall(_shown_call(self, call_id))
    return c


cdef _RankBox _rank_box(Scheduler self, int qi, int prio):
    ranks = <dict>self.queue_ranks[qi]
    box = ranks.get(prio)
    if box is None:
        box = _RankBox()
        ranks[prio] = box
    return <_RankBox>box


cdef int _arrive(Scheduler self, object call_id, object queue, int priority, object skills,
                 object callback) except -1:
    # One dict operation both checks for a duplicate and registers the id
    # (undone on the rare paths where the call does not enter the queue).
    if _call_claim(self, call_id, _peek_slot(self)) >= 0:
        raise AcdError(f"call {_shown_call(self, call_id)!r} already queued")
    cdef object qobj = self.queue_ix.get(queue)
    if qobj is None:
        _call_pop(self, call_id)
        raise UnknownQueue(queue)
    cdef int qi = qobj
    cdef QueueRec* q = &self.queues[qi]
    if q.serving == 0 and (not q.join_empty or q.leave_when_empty):
        _call_pop(self, call_id)
        self.out.append(_act3(CallExited, _shown_call(self, call_id), self.queue_names[qi],
                              "empty"))
        return 0
    if q.max_len and q.n_in_queue >= q.max_len:
        _call_pop(self, call_id)
        self.out.append(_act3(CallExited, _shown_call(self, call_id), self.queue_names[qi],
                              "full"))
        return 0
    try:
        req = normalize(skills) if skills else _NO_SKILLS
    except Exception:
        _call_pop(self, call_id)
        raise
    self.seq += 1
    cdef int c = _alloc_call(self)
    cdef CallRec* cr = &self.calls[c]
    cr.seq = self.seq
    cr.life = self._next_stamp()
    cr.queue = qi
    cr.prio = priority
    cr.t_enq = self.now
    cr.callback = bool(callback)
    cr.has_req = len(<tuple>req) > 0
    cr.relax_step = 0
    cr.lane = -1
    cr.state = C_WAITING
    cr.wait_stamp = cr.offer_stamp = 0
    cr.n_offers = 0
    cr.agent = -1
    cr.answered_at = 0.0
    cr.expired = False
    cr.n_tried = 0
    cr.ring_pos = -1
    cr.in_queue = True
    if self.call_names is None:
        self.call_ids[c] = call_id
    else:   # call_id is our int: keep the name, index by the int
        cr.ext = call_id
        self.call_ids[c] = self.call_names.name_at(cr.ext)
        self.call_names.hold(cr.ext)
    if cr.has_req:
        self.call_req[c] = req
    q.n_in_queue += 1
    if priority == 0:
        # Boxes are never dropped from queue_ranks, so the pointer stays valid.
        if q.rank0 == NULL:
            q.rank0 = &_rank_box(self, qi, 0).r
        cr.rank = q.rank0
    else:
        cr.rank = &_rank_box(self, qi, priority).r
    cr.rank_slot = rank_push(cr.rank, c)
    if q.max_wait > 0:
        _push_after(self, q.maxwait_fifo, q.max_wait, T_MAXWAIT, c, cr.life)
    cdef int lane = q.base_lane
    if cr.has_req:
        lane = self._lane(qi, _effective_req(self, c))
    self.calls[c].lane = lane
    # The reference enqueues, then dispatches; skipping the heap entry when an
    # agent takes the call at once changes nothing observable (the entry would
    # be stale at once, and stamps never decide an order: keys are unique).
    if not _dispatch(self, c):
        _enqueue(self, c)
    return 0


cdef object _effective_req(Scheduler self, int c):
    """Advance the call's relax step to its wait and schedule the next step."""
    cdef CallRec* cr = &self.calls[c]
    base = self.call_req[c]
    if not cr.has_req:
        return ANY
    moments = self.queue_relax[cr.queue]
    cdef double waited = self.now - cr.t_enq
    cdef int n = len(moments)
    while cr.relax_step < n and moments[cr.relax_step][0] <= waited:
        cr.relax_step += 1
    if cr.relax_step < n:
        _push_timer(self, cr.t_enq + moments[cr.relax_step][0], T_RELAX, c, cr.life)
    if cr.relax_step == 0:
        return base
    return relaxed(base, moments[cr.relax_step - 1][1])


cdef int _relax(Scheduler self, int c) except -1:
    self.calls[c].state = call_next(self.calls[c].state, C_RELAX)
    cdef int lane = self._lane(self.calls[c].queue, _effective_req(self, c))
    cdef CallRec* cr = &self.calls[c]
    if lane == cr.lane:
        return 0
    cr.lane = lane
    if cr.state == C_WAITING and not _dispatch(self, c):
        _enqueue(self, c)
    return 0


cdef void _leave_queue(Scheduler self, int c):
    cdef CallRec* cr = &self.calls[c]
    self.queues[cr.queue].n_in_queue -= 1
    rank_remove(cr.rank, cr.rank_slot)
    cr.in_queue = False


cdef int _exit(Scheduler self, int c, str reason) except -1:
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_EXIT)
    self.out.append(_act3(CallExited, self.call_ids[c], self.queue_names[cr.queue], reason))
    _leave_queue(self, c)
    _free_call(self, c)
    return 0


cdef list _cancel_all(Scheduler self, int c, int inp, str reason):
    cdef list agents = _take_offers(self, c)
    cid = self.call_ids[c]
    cdef int a
    for a in agents:
        _set_agent(self, a, inp)
        _tombstone(self, a, c, reason)
        self.out.append(_act3(CancelOffer, cid, self.agent_ids[a], reason))
    return agents


cdef int _gone(Scheduler self, object call_id, int inp, str reason) except -1:
    cdef int c = _pop_call(self, call_id)
    cdef int st = self.calls[c].state
    if CALL_T[st * N_C_INPUTS + inp] < 0:
        _call_set(self, call_id, c)
        call_next(st, inp)
    self.calls[c].state = call_next(st, inp)
    cdef list agents = _cancel_all(self, c, A_CANCEL, reason)
    _leave_queue(self, c)
    _free_slot(self, c)
    _release(self, agents)
    return 0


cdef int _callback(Scheduler self, object call_id) except -1:
    cdef int c = self._call(call_id)
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_CALLBACK)
    cr.callback = True
    cr.expired = False
    if cr.state == C_OFFERED:
        _offer_lost(self, c, _cancel_all(self, c, A_CANCEL, "caller_gone"))
    return 0


cdef int _answered(Scheduler self, object call_id, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef int c = _call_get(self, call_id)
    cdef AgentRec* ag = &self.agents[a]
    if ag.state != OFFERED or c < 0 or ag.call != c:
        if _was_cancelled(self, a, call_id):
            self.out.append(_act3(CancelOffer, _cancelled_id(self, a, call_id), self.agent_ids[a],
                                  self.last_cancel_reason[a]))
            return 0
        raise AcdError(f"agent {_shown_agent(self, agent_id)!r} has no offer of call "
                       f"{_shown_call(self, call_id)!r}")
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_ANSWER)
    _kill_ring_timer(self, cr)
    _set_agent(self, a, A_ANSWER)
    ag.no_answers = 0
    ag.calls += 1
    cdef list others = None
    if cr.n_offers >= 2:
        others = [x for x in _take_offers(self, c) if x != a]
    cr.n_offers = 0
    cr.agent = a
    cr.answered_at = self.now
    _leave_queue(self, c)
    cid = self.call_ids[c]
    self.out.append(_act2(Connect, cid, self.agent_ids[a]))
    if others:
        _cancel_others(self, c, others, "answered_elsewhere")
    return 0


cdef int _cancel_others(Scheduler self, int c, list others, str reason) except -1:
    """Another agent took ``c``: the rest stop ringing and are free again."""
    cid = self.call_ids[c]
    cdef int x
    for x in others:
        _set_agent(self, x, A_CANCEL)
        _tombstone(self, x, c, reason)
        self.out.append(_act3(CancelOffer, cid, self.agent_ids[x], reason))
    _release(self, others)
    return 0


cdef int _picked_up(Scheduler self, object call_id, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef int c = _call_get(self, call_id)
    if c < 0 or self.calls[c].state != C_OFFERED:
        raise PickupRefused(f"call {_shown_call(self, call_id)!r} is not ringing")
    cdef AgentRec* ag = &self.agents[a]
    cdef CallRec* cr = &self.calls[c]
    cdef int m
    cdef bint member = False
    for m in range(ag.n_mem):
        if ag.mems[m].queue == cr.queue:
            member = True
            break
    if not member:
        raise PickupRefused(
            f"agent {_shown_agent(self, agent_id)!r} does not serve queue "
            f"{self.queue_names[cr.queue]!r}")
    agent_next(ag.state, A_PICKUP)   # refuse before anything changes
    pending = self.pause_reason[a] if ag.state == PAUSED else None
    cr.state = call_next(cr.state, C_PICKUP)
    _kill_ring_timer(self, cr)
    cdef list others = _take_offers(self, c)
    _set_agent(self, a, A_PICKUP)
    if pending is not None:
        self.pause_pending[a] = pending
    ag.no_answers = 0
    ag.calls += 1
    ag.call = c
    cr.agent = a
    cr.answered_at = self.now
    _leave_queue(self, c)
    cid = self.call_ids[c]
    self.out.append(_act2(Connect, cid, self.agent_ids[a]))
    _cancel_others(self, c, others, "picked_up")
    return 0


cdef int _rejected(Scheduler self, object call_id, object agent_id) except -1:
    cdef int a = self._agent(agent_id)
    cdef int c = _call_get(self, call_id)
    cdef AgentRec* ag = &self.agents[a]
    if ag.state != OFFERED or c < 0 or ag.call != c:
        if _was_cancelled(self, a, call_id):
            return 0  # the offer was already withdrawn: nothing to undo
        raise AcdError(f"agent {_shown_agent(self, agent_id)!r} has no offer of call "
                       f"{_shown_call(self, call_id)!r}")
    _remove_offer(self, c, a)
    ag.call = -1
    _set_agent(self, a, A_DECLINE)
    cdef CallRec* cr = &self.calls[c]
    cdef double delay = self.queues[cr.queue].reject_delay
    if delay > 0:
        ag.ready_stamp = self._next_stamp()
        _push_after(self, self.queues[cr.queue].reject_fifo, delay, T_READY, a,
                    ag.ready_stamp)
    _note_failed(self, c, a)
    if cr.n_offers:
        _release(self, [a])
    else:
        _offer_lost(self, c, [a])
    return 0


cdef int _ring_timeout(Scheduler self, int c) except -1:
    cdef list agents = _take_offers(self, c)
    cdef CallRec* cr = &self.calls[c]
    cdef int limit = self.queues[cr.queue].autopause_after
    cid = self.call_ids[c]
    cdef int a
    cdef AgentRec* ag
    for a in agents:
        self.out.append(_act2(OfferTimedOut, cid, self.agent_ids[a]))
        _set_agent(self, a, A_DECLINE)
        _tombstone(self, a, c, "timeout")
        ag = &self.agents[a]
        ag.no_answers += 1
        if limit and ag.no_answers >= limit:
            _set_agent(self, a, A_AUTOPAUSE)
            self.pause_reason[a] = "no_answer"
            ag.no_answers = 0
            self.out.append(_act2(AgentAutoPaused, self.agent_ids[a], "no_answer"))
        _note_failed(self, c, a)
    _offer_lost(self, c, agents)
    return 0


cdef int _ended(Scheduler self, object call_id) except -1:
    cdef int c = _pop_call(self, call_id)
    cdef CallRec* cr = &self.calls[c]
    if cr.state != C_TALKING:
        _call_set(self, call_id, c)
        call_next(cr.state, C_END)
    cr.state = call_next(cr.state, C_END)
    cdef int a = cr.agent
    cdef int qi = cr.queue
    cdef double answered_at = cr.answered_at
    _free_slot(self, c)
    if a < 0:
        return 0  # the agent logged out during the call
    cdef AgentRec* ag = &self.agents[a]
    cdef QueueRec* q = &self.queues[qi]
    cdef double talk = self.now - answered_at
    ag.talk += talk
    ag.idle_since = self.now
    ag.call = -1
    cdef double wrap = ag.wrap_up if ag.wrap_up >= 0 else q.wrap_up
    q.handle[q.handle_pos] = talk + wrap
    q.handle_pos = (q.handle_pos + 1) % HANDLE_WINDOW
    if q.handle_count < HANDLE_WINDOW:
        q.handle_count += 1
    _set_agent(self, a, A_CALL_END)
    if wrap > 0:
        ag.wrap_stamp = self._next_stamp()
        _push_after(self, q.wrap_fifo if ag.wrap_up < 0 else _fifo_for(self, wrap), wrap,
                    T_WRAP, a, ag.wrap_stamp)
    else:
        _end_wrap(self, a)
    return 0


cdef inline bint _was_cancelled(Scheduler self, int a, object call_id) except -1:
    """``call_id`` is the agent's last cancelled offer (a late answer or reject)."""
    cdef long long k
    if self.call_names is not None:   # by int; a name passed as such is unknown
        return (self.agents[a].cancel_ext >= 0 and _int_id(call_id, &k)
                and self.agents[a].cancel_ext == k)
    lc = self.last_cancel[a]
    return lc is not None and lc == call_id


cdef inline object _cancelled_id(Scheduler self, int a, object call_id):
    """The id a repeated CancelOffer carries: the runtime's name when ids are interned."""
    return call_id if self.call_names is None else self.last_cancel[a]
