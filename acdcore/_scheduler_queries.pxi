# Read-only queries and the invariant check of the Cython Scheduler.


cdef object _queue_position(Scheduler self, int c):
    cdef CallRec* cr = &self.calls[c]
    if cr.state == C_TALKING:
        return None
    cdef Py_ssize_t ahead = 0
    cdef _RankBox box
    for prio, box in (<dict>self.queue_ranks[cr.queue]).items():
        if prio > cr.prio:
            ahead += box.r.count
        elif prio == cr.prio:
            ahead += rank_prefix(&box.r, cr.rank_slot)
    return 1 + ahead


cdef object _ewt(Scheduler self, int c):
    pos = _queue_position(self, c)
    if pos is None:
        return None
    cdef QueueRec* q = &self.queues[self.calls[c].queue]
    samples = [q.handle[i] for i in range(q.handle_count)]
    return expected_wait(pos, q.serving, mean_handle(samples, q.handle_count, q.hint))


cdef object _queue_ewt(Scheduler self, int qi):
    cdef QueueRec* q = &self.queues[qi]
    samples = [q.handle[i] for i in range(q.handle_count)]
    return expected_wait(q.n_in_queue + 1, q.serving,
                         mean_handle(samples, q.handle_count, q.hint))


cdef object _oldest_wait_start(Scheduler self, int qi):
    cdef _RankBox box
    cdef long long slot
    cdef double t
    best = None
    for box in (<dict>self.queue_ranks[qi]).values():
        slot = rank_first(&box.r)
        if slot >= 0:
            t = self.calls[box.r.calls[slot - box.r.base]].t_enq
            if best is None or t < best:
                best = t
    return best


cdef int _check_invariants(Scheduler self) except -1:
    """O(n) consistency check (tests only); mirrors ref_parts.check_invariants."""
    cdef Py_ssize_t qi, a, c, i, k
    cdef int counts[6]
    cdef AgentRec* ag
    cdef CallRec* cr
    cdef QueueRec* q
    cdef _RankBox box
    cdef Entry* e
    cdef Heap* hp
    cdef Py_ssize_t live, total, serving
    for qi in range(self.n_queues):
        q = &self.queues[qi]
        for k in range(6):
            counts[k] = 0
        for m in self.queue_members[qi]:
            counts[self.agents[m[0]].state] += 1
        serving = 0
        for k in range(6):
            assert counts[k] == q.counts[k], (self.queue_names[qi], k)
            if SERVING[k]:
                serving += counts[k]
        assert serving == q.serving
        total = 0
        for prio, box in (<dict>self.queue_ranks[qi]).items():
            live = 0
            for i in range(box.r.cap):
                c = box.r.calls[i]
                if c >= 0:
                    live += 1
                    cr = &self.calls[c]
                    assert cr.in_queue and cr.queue == qi and cr.prio == prio
                    assert cr.rank_slot == box.r.base + i
                    assert cr.state == C_WAITING or cr.state == C_OFFERED
            assert live == box.r.count
            total += live
        assert total == q.n_in_queue, (self.queue_names[qi], total, q.n_in_queue)
    for a in range(self.n_agents):
        ag = &self.agents[a]
        if not ag.alive:
            continue
        if ag.state == OFFERED:
            cr = &self.calls[ag.call]
            assert cr.state == C_OFFERED and a in _offers_of(self, ag.call)
        elif ag.outbound == OUT_ON_CALL:
            assert ag.state == BUSY and ag.call == -1, (self.agent_ids[a], ag.state)
        elif ag.state == BUSY:
            cr = &self.calls[ag.call]
            assert cr.state == C_TALKING and cr.agent == a
        else:
            assert ag.call == -1, (self.agent_ids[a], ag.state)
        if ag.free:
            assert ag.state == AVAILABLE and ag.ready_stamp == 0
        elif ag.state == AVAILABLE:
            assert ag.ready_stamp != 0, f"agent {self.agent_ids[a]} idle but not offerable"
    assert len(_call_items(self)) + self.n_free == self.n_slots
    waiting_lanes = set()
    n_tried = 0
    for cid, c in _call_items(self):
        cr = &self.calls[c]
        if self.call_names is None:
            assert self.call_ids[c] == cid
        else:
            assert self.calls[c].ext == cid and self.call_ids[c] == self.call_names.name_at(cid)
        if cr.n_tried:
            n_tried += 1
            assert len(set(self.tried[c])) == len(self.tried[c]) == cr.n_tried
        if cr.state == C_WAITING:
            assert cr.n_offers == 0 and cr.in_queue
            live = 0
            hp = &self.lanes[cr.lane].waiting
            for i in range(hp.n):
                if hp.data[i].idx == c and hp.data[i].stamp == cr.wait_stamp:
                    live += 1
            assert live == 1
            waiting_lanes.add(cr.lane)
        elif cr.state == C_OFFERED:
            offers = _offers_of(self, c)
            assert offers and len(set(offers)) == len(offers) == cr.n_offers
            assert (cr.n_offers >= 2) == (c in self.multi)
            for a in offers:
                assert self.agents[a].state == OFFERED and self.agents[a].call == c
            assert cr.in_queue
        else:
            assert cr.state == C_TALKING and not cr.in_queue
    assert n_tried == len(self.tried) and self.aside.n == 0
    for lane in waiting_lanes:
        hp = &self.lanes[lane].pool
        for i in range(hp.n):
            e = &hp.data[i]
            ag = &self.agents[e.idx]
            assert not (ag.free and ag.free_stamp == e.stamp), \
                f"agent {self.agent_ids[e.idx]} free while a call waits in its lane"
    return 0
