# InternedScheduler: the Scheduler as a runtime uses it, with str ids.
#
# The runtime's ids (SIP Call-IDs, agent names) are mapped to ints here, in
# C, by two IdTables (_scheduler_idtable.pxi); the core runs on its int-id
# path (C id tables, no dict) and keeps the names beside the ints
# (Scheduler.call_names), so its actions carry the runtime's ids as they
# are: nothing is translated on the way out.  Same API and same actions as Scheduler with str ids
# (tests/acdcore/test_acd_ids.py compares them).
import dataclasses as _dataclasses


cdef inline object _shown_call(Scheduler self, object x):
    return x if self.call_names is None else self.call_names.shown(x)


cdef inline object _shown_agent(Scheduler self, object x):
    return x if self.agent_names is None else self.agent_names.shown(x)


cdef inline object _key(IdTable table, object name):
    """The int of a known name; an unknown one goes to the core as it is
    (its dict path finds nothing and reports it by name, as with str ids)."""
    if name is None:
        return None
    cdef Py_ssize_t k = table.find(name)
    if k >= 0:
        return k
    if not isinstance(name, str):
        raise TypeError(f"ids at the runtime's edge are str, not {type(name).__name__}: "
                        f"{name!r}")
    return name


@cython.final
cdef class InternedScheduler:
    """``Scheduler`` for str ids, run on the core's int-id path.

    Same constructor, methods and actions as ``Scheduler`` (scheduler.py);
    ids must be str.  ``calls`` and ``agents_table`` are the id tables
    (read-outs for tests: ``key_of``, ``name_of``, ``refs_of``, ``len``)."""
    cdef readonly Scheduler core
    cdef readonly IdTable calls
    cdef IdTable agents_t

    COMPILED = True

    def __init__(self, queues, agents, seed=0, fairness="oldest"):
        self.calls = IdTable(True)
        self.agents_t = IdTable(False)
        self.core = Scheduler(queues, [], seed, fairness)
        self.core.call_names = self.calls
        self.core.agent_names = self.agents_t
        for cfg in agents:
            self.add_agent(cfg)

    @property
    def agents_table(self):
        return self.agents_t

    # -- configuration ----------------------------------------------------------
    def add_agent(self, cfg):
        name = cfg.agent_id
        if self.agents_t.find(name) >= 0:
            raise AcdError(f"agent {name!r} exists")
        k = self.agents_t.intern(name)
        try:
            self.core.add_agent(_dataclasses.replace(cfg, agent_id=k))
        except BaseException:
            self.agents_t.forget(name)
            raise
        self.core.agent_ids[self.core.n_agents - 1] = name   # what actions carry

    def remove_agent(self, agent_id):
        self.core.remove_agent(_key(self.agents_t, agent_id))
        self.agents_t.forget(agent_id)

    # -- events -------------------------------------------------------------------
    def handle(self, ev):
        code = _EVENT_CODES.get(type(ev))
        if code is None:
            raise AcdError(f"not an event: {ev!r}")
        cid, aid = self._ids_of(code, ev)
        return self._run(code, ev.t, ev, cid, aid, None, 0)

    def handle_raw(self, int code, double t, call_id=None, agent_id=None, ev=None,
                   queue=None, int priority=0, /):
        """``Scheduler.handle_raw`` with str ids (``ev``, when given, supplies
        the ids too, as there)."""
        if ev is not None:
            call_id, agent_id = self._ids_of(code, ev)
        elif code == EV_CALL_ARRIVED and call_id is not None:
            call_id = self.calls.intern(call_id)
        else:
            call_id = _key(self.calls, call_id)
        if ev is None:
            agent_id = _key(self.agents_t, agent_id)
        return self._run(code, t, ev, call_id, agent_id, queue, priority)

    cdef tuple _ids_of(self, int c, object ev):
        """The ints of an event's call and agent (what Scheduler's _event reads)."""
        if c == EV_CALL_ARRIVED:
            return self.calls.intern(ev.call_id), None
        if c == EV_OFFER_ANSWERED or c == EV_OFFER_REJECTED or c == EV_CALL_PICKED_UP:
            return _key(self.calls, ev.call_id), _key(self.agents_t, ev.agent_id)
        if (c == EV_CALL_ENDED or c == EV_CALL_ABANDONED or c == EV_CALL_WITHDRAWN
                or c == EV_CALLBACK_REQUESTED):
            return _key(self.calls, ev.call_id), None
        if c == EV_TICK:
            return None, None
        return None, _key(self.agents_t, ev.agent_id)

    cdef list _run(self, int code, double t, object ev, object cid, object aid, object queue,
                   int priority):
        cdef list out
        try:
            out = _handle(self.core, code, t, ev, cid, aid, queue, priority, False)
        except BaseException:
            self.calls.flush()
            raise
        if self.calls.n_pending:
            self.calls.flush()
        return out

    def next_deadline(self):
        return self.core.next_deadline()

    # -- read-only queries ----------------------------------------------------------
    def agent_state(self, agent_id):
        return self.core.agent_state(_key(self.agents_t, agent_id))

    def agent_pause_reason(self, agent_id):
        return self.core.agent_pause_reason(_key(self.agents_t, agent_id))

    def call_state(self, call_id):
        return self.core.call_state(_key(self.calls, call_id))

    def queue_position(self, call_id):
        return self.core.queue_position(_key(self.calls, call_id))

    def ewt(self, call_id):
        return self.core.ewt(_key(self.calls, call_id))

    def queue_ewt(self, queue):
        return self.core.queue_ewt(queue)

    def waiting_count(self, queue):
        return self.core.waiting_count(queue)

    def oldest_wait_start(self, queue):
        return self.core.oldest_wait_start(queue)

    def agents_by_state(self, queue):
        return self.core.agents_by_state(queue)

    def heap_sizes(self):
        return self.core.heap_sizes()

    def check_invariants(self):
        """The core's invariants, and the tables': each call int is held
        exactly as often as the core refers to it, every held int has its
        name, and nothing is left unreleased between events."""
        self.core.check_invariants()
        cdef Scheduler s = self.core
        cdef IdTable t = self.calls
        t.check()
        self.agents_t.check()
        assert len(s.call_ix) == 0 and len(s.agent_ix) == 0, "str id in the core"
        counts = {}
        cdef Py_ssize_t i
        for i in range(s.n_slots):
            if s.calls[i].state != C_GONE:
                counts[s.calls[i].ext] = counts.get(s.calls[i].ext, 0) + 1
                assert s.call_ids[i] == t.name_at(s.calls[i].ext)
        for i in range(s.n_agents):
            if s.agents[i].cancel_ext >= 0:
                counts[s.agents[i].cancel_ext] = counts.get(s.agents[i].cancel_ext, 0) + 1
                assert s.last_cancel[i] == t.name_at(s.agents[i].cancel_ext)
        for i in range(t.n_ents):
            assert t.ents[i].refs == counts.get(i, 0), (i, t.name_of(i), t.ents[i].refs)
            assert (t.ents[i].name != NULL) == (i in counts), (i, t.name_of(i))
        for i in range(self.agents_t.n_ents):
            if self.agents_t.ents[i].name != NULL:
                assert s.agent_ids[s._agent(i)] == self.agents_t.name_at(i)
