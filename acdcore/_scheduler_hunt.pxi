# Hunting (reference.py, "Hunting"): the agents that failed a call in the
# current round, and the pool entries a dispatch sets aside to pass over
# them.  Failures are rare, so the agent lists live in a dict beside the
# call records (Scheduler.tried), counted by CallRec.n_tried; a call that
# never failed costs one int test per dispatch.


cdef int _note_failed(Scheduler self, int c, int a) except -1:
    """Agent ``a`` rejected call ``c`` or let it ring out."""
    cdef CallRec* cr = &self.calls[c]
    if cr.n_tried == 0:
        self.tried[c] = [a]
    else:
        (<list>self.tried[c]).append(a)
    cr.n_tried += 1
    return 0


cdef int _new_round(Scheduler self, int c) except -1:
    del self.tried[c]
    self.calls[c].n_tried = 0
    return 0


cdef long long _mark_tried(Scheduler self, int c) except -1:
    """Stamps the agents that failed ``c`` with a fresh mark, so the pool
    walk tests each entry in O(1): O(k) for k failures, no set per call."""
    self.tried_mark += 1
    cdef int a
    for a in <list>self.tried[c]:
        self.agents[a].tried_mark = self.tried_mark
    return self.tried_mark


cdef bint _failed(Scheduler self, int c, int a) except -1:
    return self.calls[c].n_tried > 0 and a in <list>self.tried[c]


cdef inline int _set_aside(Scheduler self, Entry* e) except -1:
    # Only a scratch array: its order does not matter.
    return heap_push(&self.aside, e)


cdef inline void _restore_aside(Scheduler self, LaneRec* ln) noexcept:
    """Pushes the set-aside entries back; the pool has room, they came from it."""
    cdef Py_ssize_t i
    for i in range(self.aside.n):
        heap_push_noexcept(&ln.pool, &self.aside.data[i])
    self.aside.n = 0
