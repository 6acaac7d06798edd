# Agent state and matching of the Cython Scheduler: module-level functions
# taking the Scheduler first (direct C calls, no vtable).  Each mirrors its
# namesake in ref_matching.py; timers are in _scheduler_timers.pxi.


# -- agent state ----------------------------------------------------------
cdef int _set_agent(Scheduler self, int a, int inp) except -1:
    cdef AgentRec* ag = &self.agents[a]
    cdef int old = ag.state
    cdef int new = agent_next(old, inp)
    if new == old:
        return 0
    cdef bint was_serving = SERVING[old], serving = SERVING[new]
    cdef QueueRec* q
    cdef int m
    for m in range(ag.n_mem):
        q = &self.queues[ag.mems[m].queue]
        q.counts[old] -= 1
        q.counts[new] += 1
        if was_serving and not serving:
            q.serving -= 1
            if q.serving == 0 and q.leave_when_empty:
                self.empty.append(ag.mems[m].queue)
        elif serving and not was_serving:
            q.serving += 1
    ag.state = new
    if new != AVAILABLE:
        ag.free = False
        ag.ready_stamp = 0
    return 0


cdef int _push_agent(Scheduler self, int lane, int a, int penalty, int midx, int sc) except -1:
    cdef LaneRec* ln = &self.lanes[lane]
    cdef AgentRec* ag = &self.agents[a]
    cdef Entry e
    cdef int s = ln.strategy
    e.k0 = penalty
    e.k2 = 0.0
    e.k3 = a
    if s == ST_LINEAR or s == ST_RING_ALL:
        e.k1 = midx
    elif s == ST_RR:
        e.k1 = ln.rr_cycle if midx > ln.rr_last else ln.rr_cycle + 1
        e.k2 = midx
    elif s == ST_LONGEST_IDLE:
        e.k1 = ag.idle_since
    elif s == ST_FEWEST:
        e.k1 = <double>ag.calls
        e.k2 = ag.idle_since
    elif s == ST_LEAST_TALK:
        e.k1 = ag.talk
        e.k2 = ag.idle_since
    elif s == ST_RANDOM:
        e.k1 = (<dict>self.lane_clock[lane]).get(penalty, 0.0) + self._exp1()
    elif s == ST_WEIGHTED:
        e.k1 = (<dict>self.lane_clock[lane]).get(penalty, 0.0) + self._exp1() / ag.weight
    else:  # skills
        e.k1 = -sc
        e.k2 = ag.idle_since
    e.stamp = ag.free_stamp
    e.idx = a
    e.aux = 0
    heap_push(&ln.pool, &e)
    if ln.pool.n > ln.pool_limit:
        _compact_pool(self, ln)
    return 0

# Lazy deletion leaves stale entries behind; a lane that rarely pops (a
# backup queue, a rare skill class) would grow forever.  When a heap
# doubles past its last compacted size, drop the stale entries: O(n) work
# per O(n) pushes, so amortised O(1), and live entries keep their order.
cdef void _compact_pool(Scheduler self, LaneRec* ln) noexcept:
    cdef Py_ssize_t i, k = 0
    cdef Entry* d = ln.pool.data
    cdef AgentRec* ag
    for i in range(ln.pool.n):
        ag = &self.agents[d[i].idx]
        if ag.free and ag.free_stamp == d[i].stamp:
            d[k] = d[i]
            k += 1
    ln.pool.n = k
    heap_heapify(&ln.pool)
    ln.pool_limit = max(COMPACT_MIN, 2 * k)


cdef void _compact_waiting(Scheduler self, LaneRec* ln) noexcept:
    cdef Py_ssize_t i, k = 0
    cdef Entry* d = ln.waiting.data
    cdef CallRec* c
    for i in range(ln.waiting.n):
        c = &self.calls[d[i].idx]
        if c.state == C_WAITING and c.wait_stamp == d[i].stamp:
            d[k] = d[i]
            k += 1
    ln.waiting.n = k
    heap_heapify(&ln.waiting)
    ln.waiting_limit = max(COMPACT_MIN, 2 * k)


cdef int _make_free(Scheduler self, int a) except -1:
    cdef AgentRec* ag = &self.agents[a]
    cdef AgentLane* al
    cdef int i
    ag.free = True
    ag.free_stamp = self._next_stamp()
    for i in range(ag.n_lanes):
        al = &ag.lanes[i]
        _push_agent(self, al.lane, a, al.penalty, al.midx, al.score)
    return 0


cdef int _release(Scheduler self, list agents) except -1:
    cdef AgentRec* ag
    cdef int a
    for a in agents:
        ag = &self.agents[a]
        if ag.state == AVAILABLE and not ag.free and ag.ready_stamp == 0:
            _make_free(self, a)
    for a in agents:
        _match_agent(self, a)
    return 0


cdef inline int _tombstone(Scheduler self, int a, int c, str reason) except -1:
    cdef AgentRec* ag = &self.agents[a]
    cdef int old
    ag.call = -1
    self.last_cancel[a] = self.call_ids[c]
    if self.call_names is not None:   # hold the new first: old may be the same call
        old = ag.cancel_ext
        ag.cancel_ext = self.calls[c].ext
        self.call_names.hold(ag.cancel_ext)
        if old >= 0:
            self.call_names.drop(old)
    self.last_cancel_reason[a] = reason


# -- matching ---------------------------------------------------------------
cdef Entry* _pool_top(Scheduler self, LaneRec* ln) noexcept:
    cdef Entry* e
    cdef AgentRec* ag
    while ln.pool.n > 0:
        e = &ln.pool.data[0]
        ag = &self.agents[e.idx]
        if ag.free and ag.free_stamp == e.stamp:
            return e
        heap_pop(&ln.pool)
    return NULL


cdef Entry* _waiting_top(Scheduler self, LaneRec* ln) noexcept:
    cdef Entry* e
    cdef CallRec* c
    while ln.waiting.n > 0:
        e = &ln.waiting.data[0]
        c = &self.calls[e.idx]
        if c.state == C_WAITING and c.wait_stamp == e.stamp:
            return e
        heap_pop(&ln.waiting)
    return NULL


cdef bint _dispatch(Scheduler self, int c) except -1:
    cdef CallRec* cr = &self.calls[c]
    cdef int lane = cr.lane
    cdef LaneRec* ln = &self.lanes[lane]
    cdef Entry* top = _pool_top(self, ln)
    cdef Entry e
    cdef double tier
    cdef list agents
    cdef long long mark = -1  # no agent carries it: nobody is passed over
    if cr.n_tried and top != NULL:
        mark = _mark_tried(self, c)
        while top != NULL and self.agents[top.idx].tried_mark == mark:
            _set_aside(self, top)
            heap_pop(&ln.pool)
            top = _pool_top(self, ln)
        if top == NULL:
            # Every free agent of the lane failed it: a new round.
            _new_round(self, c)
            mark = -1
            _restore_aside(self, ln)
            top = _pool_top(self, ln)
    if top == NULL:
        return False
    if ln.strategy == ST_RING_ALL:
        tier = top.k0  # ring the best penalty tier only
        agents = []
        while top != NULL and top.k0 == tier:
            if self.agents[top.idx].tried_mark == mark:
                _set_aside(self, top)
            else:
                agents.append(top.idx)
            heap_pop(&ln.pool)
            top = _pool_top(self, ln)
        _restore_aside(self, ln)
        _offer(self, c, agents)
        return True
    e = top[0]
    heap_pop(&ln.pool)
    _restore_aside(self, ln)
    if ln.strategy == ST_RR:
        if e.k1 >= ln.rr_cycle:
            ln.rr_cycle = e.k1
            ln.rr_last = e.k2
    elif ln.strategy == ST_RANDOM or ln.strategy == ST_WEIGHTED:
        clock = <dict>self.lane_clock[lane]
        if e.k1 > clock.get(<int>e.k0, 0.0):
            clock[<int>e.k0] = e.k1
    _offer1(self, c, e.idx)
    return True


cdef int _offer1(Scheduler self, int c, int a) except -1:
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_OFFER)
    cr.offer_stamp = self._next_stamp()
    cr.n_offers = 1
    cr.agent = a
    _set_agent(self, a, A_OFFER)
    self.agents[a].call = c
    self.out.append(_act3(Offer, self.call_ids[c], self.agent_ids[a], cr.callback))
    cr.ring_pos = _push_after(self, self.queues[cr.queue].ring_fifo,
                              self.queues[cr.queue].ring_timeout, T_RING, c, cr.offer_stamp)
    return 0


cdef int _offer(Scheduler self, int c, list agents) except -1:
    if len(agents) == 1:
        return _offer1(self, c, agents[0])
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_OFFER)
    cr.offer_stamp = self._next_stamp()
    cr.n_offers = len(agents)
    cr.agent = agents[0]
    self.multi[c] = agents
    cid = self.call_ids[c]
    cb = cr.callback
    cdef int a
    for a in agents:
        _set_agent(self, a, A_OFFER)
        self.agents[a].call = c
        self.out.append(_act3(Offer, cid, self.agent_ids[a], cb))
    cr.ring_pos = _push_after(self, self.queues[cr.queue].ring_fifo,
                              self.queues[cr.queue].ring_timeout, T_RING, c, cr.offer_stamp)
    return 0


cdef list _offers_of(Scheduler self, int c):
    cdef CallRec* cr = &self.calls[c]
    if cr.n_offers == 0:
        return []
    if cr.n_offers == 1:
        return [cr.agent]
    return self.multi[c]


cdef int _remove_offer(Scheduler self, int c, int a) except -1:
    cdef CallRec* cr = &self.calls[c]
    cdef list lst
    if cr.n_offers >= 2:
        lst = self.multi[c]
        lst.remove(a)
        cr.n_offers -= 1
        if cr.n_offers == 1:
            cr.agent = lst[0]
            del self.multi[c]
    else:
        cr.n_offers = 0
        cr.agent = -1
    return 0


cdef list _take_offers(Scheduler self, int c):
    """All agents offered ``c``; the call keeps none."""
    cdef list agents = _offers_of(self, c)
    cdef CallRec* cr = &self.calls[c]
    if cr.n_offers >= 2:
        del self.multi[c]
    cr.n_offers = 0
    cr.agent = -1
    return agents


cdef int _best_call(Scheduler self, int a) except -2:
    cdef AgentRec* ag = &self.agents[a]
    cdef Entry* e
    cdef LaneRec* ln
    cdef int i, best = -1
    cdef double bw = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, w = 0.0
    for i in range(ag.n_lanes):
        ln = &self.lanes[ag.lanes[i].lane]
        e = _waiting_top(self, ln)
        if e == NULL:
            continue
        if self.by_weight:
            w = -self.queues[ln.queue].weight
        if best < 0 or _key4_lt(w, e.k0, e.k1, e.k2, bw, b0, b1, b2):
            best = e.idx
            bw, b0, b1, b2 = w, e.k0, e.k1, e.k2
    return best


cdef int _free_and_match(Scheduler self, int a) except -1:
    """``_make_free`` + ``_match_agent`` for an agent that frees up *alone*
    (login, ready, wrap-up end, reject delay over).

    Then no other agent is free in a lane where a call waits (the matching
    invariant holds between events), so if a call waits in one of the
    agent's lanes the reference's dispatch would pop this very agent: offer
    directly instead of pushing pool entries that would be stale at once.
    Random lanes still draw their key, so the PRNG stream stays identical.
    """
    cdef int c = _best_call(self, a)
    if c < 0:
        return _make_free(self, a)
    cdef AgentRec* ag = &self.agents[a]
    cdef CallRec* cr = &self.calls[c]
    cdef int lane = cr.lane, i, s
    cdef LaneRec* ln
    cdef AgentLane* al
    cdef double key = 0.0, draw
    cdef int penalty = 0, midx = 0
    ag.free = True
    for i in range(ag.n_lanes):
        al = &ag.lanes[i]
        ln = &self.lanes[al.lane]
        s = ln.strategy
        if s == ST_RANDOM or s == ST_WEIGHTED:
            draw = self._exp1()
            if s == ST_WEIGHTED:
                draw = draw / ag.weight
            if al.lane == lane:
                key = (<dict>self.lane_clock[lane]).get(al.penalty, 0.0) + draw
        if al.lane == lane:
            penalty = al.penalty
            midx = al.midx
    ln = &self.lanes[lane]
    if ln.strategy == ST_RR:
        key = ln.rr_cycle if midx > ln.rr_last else ln.rr_cycle + 1
        if key >= ln.rr_cycle:
            ln.rr_cycle = key
            ln.rr_last = midx
    elif ln.strategy == ST_RANDOM or ln.strategy == ST_WEIGHTED:
        clock = <dict>self.lane_clock[lane]
        if key > clock.get(penalty, 0.0):
            clock[penalty] = key
    if _failed(self, c, a):
        _new_round(self, c)  # the lane's only free agent failed it: a new round
    _offer1(self, c, a)
    ln = &self.lanes[lane]
    if ln.waiting.n > 0 and ln.waiting.data[0].idx == c:
        heap_pop(&ln.waiting)
    return 0


cdef int _match_agent(Scheduler self, int a) except -1:
    cdef int c
    cdef LaneRec* ln
    while self.agents[a].free:
        c = _best_call(self, a)
        if c < 0 or not _dispatch(self, c):
            return 0
        # c was the top of its lane's waiting heap and is stale now: drop
        # it while it is hot in cache rather than when it surfaces later.
        ln = &self.lanes[self.calls[c].lane]
        if ln.waiting.n > 0 and ln.waiting.data[0].idx == c:
            heap_pop(&ln.waiting)
    return 0


cdef int _enqueue(Scheduler self, int c) except -1:
    cdef CallRec* cr = &self.calls[c]
    cdef Entry e
    cr.wait_stamp = self._next_stamp()
    e.k0 = -cr.prio
    e.k1 = cr.t_enq
    e.k2 = <double>cr.seq
    e.k3 = 0.0
    e.stamp = cr.wait_stamp
    e.idx = c
    e.aux = 0
    cdef LaneRec* ln = &self.lanes[cr.lane]
    heap_push(&ln.waiting, &e)
    if ln.waiting.n > ln.waiting_limit:
        _compact_waiting(self, ln)
    return 0


cdef int _offer_lost(Scheduler self, int c, list freed) except -1:
    cdef CallRec* cr = &self.calls[c]
    cr.state = call_next(cr.state, C_LOST)
    if cr.expired:
        _exit(self, c, "timeout")
    else:
        _enqueue(self, c)
    _release(self, freed)
    if self.calls[c].state == C_WAITING:
        _dispatch(self, c)
    return 0

