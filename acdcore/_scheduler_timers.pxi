# Timers of the Cython Scheduler (the reference keeps one heap: see
# ref_matching.py; this file keeps the same order with less work).


# -- timers ---------------------------------------------------------------
# One ordering for all timers: (deadline, sequence number), as the
# reference's single heap.  Timers of a constant delay (ring timeout, max
# wait, wrap-up, reject delay) go to a FIFO per delay value -- they fall due
# in the order they were set -- and only each FIFO's front sits in the heap
# (as a T_FIFO marker).  Most ring timers are dead by the time they fall due
# (the call was answered): answering kills the entry in place, so firing
# skips it without touching the long-gone call record.
cdef int _push_timer(Scheduler self, double deadline, int kind, int idx, long long stamp) except -1:
    cdef Entry e
    self.tseq += 1
    e.k0 = deadline
    e.k1 = <double>self.tseq
    e.k2 = 0.0
    e.k3 = 0.0
    e.stamp = stamp
    e.idx = idx
    e.aux = kind
    heap_push(&self.timers, &e)
    return 0


cdef int _fifo_for(Scheduler self, double delay) except -1:
    """The FIFO for timers of this delay (created on first use)."""
    found = self.fifo_ix.get(delay)
    if found is not None:
        return found
    cdef TimerFifo* fs
    if self.n_fifos == self.cap_fifos:
        fs = <TimerFifo*>realloc(self.fifos, 2 * self.cap_fifos * sizeof(TimerFifo))
        if fs == NULL:
            raise MemoryError()
        self.fifos = fs
        self.cap_fifos *= 2
    cdef TimerFifo* f = &self.fifos[self.n_fifos]
    f.mask = 63
    f.head = f.tail = 0
    f.data = <Entry*>malloc(64 * sizeof(Entry))
    if f.data == NULL:
        raise MemoryError()
    self.fifo_ix[delay] = self.n_fifos
    self.n_fifos += 1
    return self.n_fifos - 1


cdef long long _push_after(Scheduler self, int fi, double delay, int kind, int idx,
                           long long stamp) except -2:
    """A timer ``delay`` from now in FIFO ``fi``; returns its FIFO position."""
    cdef TimerFifo* f = &self.fifos[fi]
    cdef double deadline = self.now + delay
    cdef Entry e
    cdef Entry* d
    cdef long long pos
    if f.tail > f.head and f.data[(f.tail - 1) & f.mask].k0 > deadline:
        _push_timer(self, deadline, kind, idx, stamp)  # cannot happen: time is monotone
        return -1
    if f.tail - f.head > f.mask:
        d = <Entry*>malloc(2 * (f.mask + 1) * sizeof(Entry))
        if d == NULL:
            raise MemoryError()
        for pos in range(f.head, f.tail):
            d[pos & (2 * f.mask + 1)] = f.data[pos & f.mask]
        free(f.data)
        f.data = d
        f.mask = 2 * f.mask + 1
    self.tseq += 1
    e.k0 = deadline
    e.k1 = <double>self.tseq
    e.k2 = 0.0
    e.k3 = 0.0
    e.stamp = stamp
    e.idx = idx
    e.aux = kind
    if f.head == f.tail:
        e.aux = T_FIFO
        e.idx = fi
        heap_push(&self.timers, &e)
        e.aux = kind
        e.idx = idx
    f.data[f.tail & f.mask] = e
    f.tail += 1
    return f.tail - 1


cdef Entry _fifo_pop_front(Scheduler self, int fi) noexcept:
    """Removes the front of FIFO ``fi`` (whose marker is the heap top)."""
    cdef TimerFifo* f = &self.fifos[fi]
    cdef Entry e = f.data[f.head & f.mask]
    cdef Entry marker
    f.head += 1
    heap_pop(&self.timers)
    if f.head < f.tail:
        marker = f.data[f.head & f.mask]
        marker.aux = T_FIFO
        marker.idx = fi
        heap_push_noexcept(&self.timers, &marker)
    return e


cdef inline void _kill_ring_timer(Scheduler self, CallRec* cr) noexcept:
    cdef TimerFifo* f
    if cr.ring_pos >= 0:
        f = &self.fifos[self.queues[cr.queue].ring_fifo]
        if cr.ring_pos >= f.head:
            f.data[cr.ring_pos & f.mask].stamp = 0
        cr.ring_pos = -1


cdef bint _timer_live(Scheduler self, Entry* e) noexcept:
    cdef CallRec* c
    cdef AgentRec* ag
    if e.aux == T_RING:
        c = &self.calls[e.idx]
        return c.state == C_OFFERED and c.offer_stamp == e.stamp
    if e.aux == T_MAXWAIT:
        c = &self.calls[e.idx]
        return (c.life == e.stamp and (c.state == C_WAITING or c.state == C_OFFERED)
                and not c.callback and not c.expired)
    if e.aux == T_RELAX:
        c = &self.calls[e.idx]
        return c.life == e.stamp and (c.state == C_WAITING or c.state == C_OFFERED)
    ag = &self.agents[e.idx]
    if e.aux == T_WRAP:
        return ag.state == WRAP_UP and ag.wrap_stamp == e.stamp
    return ag.state == AVAILABLE and ag.ready_stamp == e.stamp


cdef int _fire_due(Scheduler self, double t) except -1:
    cdef Entry e
    while self.timers.n > 0 and self.timers.data[0].k0 <= t:
        if self.timers.data[0].aux == T_FIFO:
            e = _fifo_pop_front(self, self.timers.data[0].idx)
            if e.stamp == 0:
                continue  # killed in place
        else:
            e = self.timers.data[0]
            heap_pop(&self.timers)
        if not _timer_live(self, &e):
            continue
        if e.k0 > self.now:
            self.now = e.k0
        if e.aux == T_RING:
            _ring_timeout(self, e.idx)
        elif e.aux == T_MAXWAIT:
            if self.calls[e.idx].state == C_WAITING:
                _exit(self, e.idx, "timeout")
            else:
                self.calls[e.idx].expired = True
        elif e.aux == T_RELAX:
            _relax(self, e.idx)
        elif e.aux == T_WRAP:
            self.out.append(_act(WrapUpEnded, (self.agent_ids[e.idx],)))
            _end_wrap(self, e.idx)
        else:
            self.agents[e.idx].ready_stamp = 0
            _free_and_match(self, e.idx)
        if self.empty:
            _drain_empty(self)
    return 0
