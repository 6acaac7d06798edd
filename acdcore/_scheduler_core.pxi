# The Scheduler class: its fields, configuration, id lookups and public
# methods.  The rules live in module-level functions taking the Scheduler
# first (Cython does not allow ``include`` inside a class body):
# _scheduler_matching.pxi (timers, agent state, matching),
# _scheduler_events.pxi (event entry, callers), _scheduler_agents.pxi
# (agents) and _scheduler_queries.pxi (queries, invariants).


cdef enum:
    COMPACT_MIN = 64


cdef inline bint _key4_lt(double a0, double a1, double a2, double a3,
                          double b0, double b1, double b2, double b3) noexcept:
    if a0 != b0:
        return a0 < b0
    if a1 != b1:
        return a1 < b1
    if a2 != b2:
        return a2 < b2
    return a3 < b3


@cython.final   # no subclasses: cdef methods are direct C calls, not vtable lookups
cdef class Scheduler:
    cdef AgentRec* agents
    cdef Py_ssize_t n_agents, cap_agents
    cdef CallRec* calls
    cdef Py_ssize_t n_slots, cap_calls
    cdef int* free_slots
    cdef Py_ssize_t n_free
    cdef QueueRec* queues
    cdef Py_ssize_t n_queues
    cdef LaneRec* lanes
    cdef Py_ssize_t n_lanes, cap_lanes
    cdef Heap timers
    cdef TimerFifo* fifos
    cdef Py_ssize_t n_fifos, cap_fifos
    cdef dict fifo_ix
    cdef double now
    cdef long long stamp, seq, tseq
    cdef uint64_t rng
    cdef bint by_weight
    cdef list out
    cdef list empty
    cdef dict queue_ix, agent_ix, call_ix, classes, multi
    cdef dict tried                 # call slot -> agents that failed it this round
    cdef long long tried_mark
    cdef Heap aside                 # pool entries set aside by a dispatch (_scheduler_hunt.pxi)
    cdef IntMap call_im, agent_im   # int ids (agent_ix/call_ix: all others)
    cdef list queue_names, queue_cfgs, queue_lanes, queue_lane_list, queue_members
    cdef list queue_relax, queue_ranks
    cdef list agent_ids, agent_cfgs, pause_reason, pause_pending
    cdef list last_cancel, last_cancel_reason
    cdef list call_ids, call_req
    cdef list lane_req, lane_clock
    # Set by InternedScheduler (None otherwise): the tables its int ids
    # come from.  Ints then only index (the tables' own slots, not
    # call_im/agent_im; CallRec.ext, AgentRec.cancel_ext); call_ids,
    # agent_ids and last_cancel hold the runtime's names, so actions leave
    # the core already named.  The core counts its references to call ints
    # in ``call_names``.
    cdef IdTable call_names, agent_names

    COMPILED = True

    def __cinit__(self):
        self.agents = NULL
        self.calls = NULL
        self.free_slots = NULL
        self.queues = NULL
        self.lanes = NULL
        self.timers.data = NULL
        self.aside.data = NULL
        self.fifos = NULL
        self.call_im.slots = NULL
        self.agent_im.slots = NULL

    def __init__(self, queues, agents, seed=0, fairness="oldest"):
        if fairness not in ("oldest", "weight"):
            raise ValueError("fairness must be 'oldest' or 'weight'")
        self.by_weight = fairness == "weight"
        self.rng = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
        self.now = float("-inf")
        self.stamp = self.seq = self.tseq = 0
        self.out = []
        self.empty = []
        self.queue_ix, self.agent_ix, self.call_ix = {}, {}, {}
        self.classes = {ANY: 0}
        self.multi = {}
        self.tried = {}
        self.tried_mark = 0
        self.queue_names, self.queue_cfgs, self.queue_lanes = [], [], []
        self.queue_lane_list, self.queue_members, self.queue_relax = [], [], []
        self.queue_ranks = []
        self.agent_ids, self.agent_cfgs, self.pause_reason = [], [], []
        self.pause_pending, self.last_cancel, self.last_cancel_reason = [], [], []
        self.call_ids, self.call_req = [], []
        self.lane_req, self.lane_clock = [], []
        heap_init(&self.timers)
        heap_init(&self.aside)
        im_init(&self.call_im, 10)
        im_init(&self.agent_im, 6)
        self.fifo_ix = {}
        self.cap_fifos = 4
        self.fifos = <TimerFifo*>malloc(self.cap_fifos * sizeof(TimerFifo))
        queues = list(queues)
        self.queues = <QueueRec*>malloc(max(1, len(queues)) * sizeof(QueueRec))
        self.cap_agents = 16
        self.agents = <AgentRec*>malloc(self.cap_agents * sizeof(AgentRec))
        self.cap_calls = 64
        self.calls = _calls_alloc(NULL, 0, self.cap_calls)
        self.free_slots = <int*>malloc(self.cap_calls * sizeof(int))
        self.cap_lanes = 16
        self.lanes = <LaneRec*>malloc(self.cap_lanes * sizeof(LaneRec))
        if not (self.queues and self.agents and self.calls and self.free_slots and self.lanes
                and self.fifos):
            raise MemoryError()
        cdef QueueRec* q
        cdef int qi
        for qc in queues:
            if qc.name in self.queue_ix:
                raise ValueError(f"duplicate queue {qc.name}")
            qi = self.n_queues
            q = &self.queues[qi]
            q.strategy = STRATEGY_CODES[qc.strategy]
            q.ring_timeout = qc.ring_timeout
            q.wrap_up = qc.wrap_up
            q.max_wait = qc.max_wait
            q.reject_delay = qc.reject_delay
            q.weight = qc.weight
            q.hint = qc.handle_time_hint
            q.max_len = qc.max_len
            q.autopause_after = qc.autopause_after
            q.join_empty = qc.join_empty
            q.leave_when_empty = qc.leave_when_empty
            q.n_in_queue = q.serving = 0
            for i in range(6):
                q.counts[i] = 0
            q.next_member = 0
            q.handle_count = q.handle_pos = 0
            q.rank0 = NULL
            self.n_queues += 1
            self.queue_ix[qc.name] = qi
            self.queue_names.append(qc.name)
            self.queue_cfgs.append(qc)
            self.queue_lanes.append({})
            self.queue_lane_list.append([])
            self.queue_members.append([])
            self.queue_relax.append(relax_moments(qc))
            self.queue_ranks.append({})
            q.base_lane = self._lane(qi, ANY)
            q.ring_fifo = _fifo_for(self, qc.ring_timeout)
            q.maxwait_fifo = _fifo_for(self, qc.max_wait) if qc.max_wait > 0 else -1
            q.wrap_fifo = _fifo_for(self, qc.wrap_up) if qc.wrap_up > 0 else -1
            q.reject_fifo = _fifo_for(self, qc.reject_delay) if qc.reject_delay > 0 else -1
        for ac in agents:
            self.add_agent(ac)

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.agents != NULL:
            for i in range(self.n_agents):
                free(self.agents[i].mems)
                free(self.agents[i].lanes)
            free(self.agents)
        if self.lanes != NULL:
            for i in range(self.n_lanes):
                heap_free(&self.lanes[i].waiting)
                heap_free(&self.lanes[i].pool)
            free(self.lanes)
        free(self.calls)
        im_free(&self.call_im)
        im_free(&self.agent_im)
        free(self.free_slots)
        free(self.queues)
        heap_free(&self.timers)
        heap_free(&self.aside)
        if self.fifos != NULL:
            for i in range(self.n_fifos):
                free(self.fifos[i].data)
            free(self.fifos)

    # -- configuration ------------------------------------------------------
    def add_agent(self, cfg):
        if _agent_get(self, cfg.agent_id) >= 0:
            raise AcdError(f"agent {_shown_agent(self, cfg.agent_id)!r} exists")
        for name in cfg.queues:
            if name not in self.queue_ix:
                raise UnknownQueue(name)
        cdef AgentRec* ag
        if self.n_agents == self.cap_agents:
            ag = <AgentRec*>realloc(self.agents, 2 * self.cap_agents * sizeof(AgentRec))
            if ag == NULL:
                raise MemoryError()
            self.agents = ag
            self.cap_agents *= 2
        cdef int a = self.n_agents
        ag = &self.agents[a]
        ag.state = LOGGED_OUT
        ag.call = -1
        ag.free = False
        ag.alive = True
        ag.free_stamp = ag.ready_stamp = ag.wrap_stamp = 0
        ag.no_answers = 0
        ag.calls = 0
        ag.talk = 0.0
        ag.idle_since = 0.0
        ag.tried_mark = 0
        ag.weight = cfg.weight
        ag.wrap_up = -1.0 if cfg.wrap_up is None else cfg.wrap_up
        ag.outbound = OUT_NONE
        ag.cancel_ext = -1
        ag.n_mem = 0
        ag.mems = <Membership*>malloc(max(1, len(cfg.queues)) * sizeof(Membership))
        ag.n_lanes = 0
        ag.cap_lanes = 4
        ag.lanes = <AgentLane*>malloc(ag.cap_lanes * sizeof(AgentLane))
        if ag.mems == NULL or ag.lanes == NULL:
            raise MemoryError()
        self.n_agents += 1
        self.agent_ids.append(cfg.agent_id)
        self.agent_cfgs.append(cfg)
        self.pause_reason.append(None)
        self.pause_pending.append(None)
        self.last_cancel.append(None)
        self.last_cancel_reason.append(None)
        cdef int qi, midx, penalty
        for name, pen in cfg.queues.items():
            qi = self.queue_ix[name]
            penalty = pen
            midx = self.queues[qi].next_member
            self.queues[qi].next_member += 1
            self.queue_members[qi].append((a, penalty, midx))
            ag.mems[ag.n_mem].queue = qi
            ag.mems[ag.n_mem].penalty = penalty
            ag.mems[ag.n_mem].midx = midx
            ag.n_mem += 1
            self.queues[qi].counts[LOGGED_OUT] += 1
            for lane in self.queue_lane_list[qi]:
                req = self.lane_req[lane]
                if eligible(cfg.skills, req):
                    self._agent_add_lane(a, lane, penalty, midx, score(cfg.skills, req))
        cdef long long k
        if _int_id(cfg.agent_id, &k):
            if self.agent_names is not None:
                self.agent_names.claim_slot(k, a)
            else:
                im_setdefault(&self.agent_im, k, a)
        else:
            self.agent_ix[cfg.agent_id] = a

    def remove_agent(self, agent_id):
        """Only a logged-out agent can be removed (log it out first)."""
        cdef int a = self._agent(agent_id)
        cdef AgentRec* ag = &self.agents[a]
        if ag.state != LOGGED_OUT:
            raise AcdError(
                f"agent {_shown_agent(self, agent_id)!r} must be logged out to be removed")
        cdef int m, qi
        for m in range(ag.n_mem):
            qi = ag.mems[m].queue
            self.queue_members[qi] = [x for x in self.queue_members[qi] if x[0] != a]
            self.queues[qi].counts[LOGGED_OUT] -= 1
        ag.n_mem = 0
        ag.n_lanes = 0
        ag.alive = False
        cdef long long k
        if _int_id(agent_id, &k):
            if self.agent_names is not None:
                self.agent_names.pop_slot(k)
            else:
                im_pop(&self.agent_im, k)
        else:
            del self.agent_ix[agent_id]

    cdef int _agent_add_lane(self, int a, int lane, int penalty, int midx, int sc) except -1:
        cdef AgentRec* ag = &self.agents[a]
        cdef AgentLane* al
        if ag.n_lanes == ag.cap_lanes:
            al = <AgentLane*>realloc(ag.lanes, 2 * ag.cap_lanes * sizeof(AgentLane))
            if al == NULL:
                raise MemoryError()
            ag.lanes = al
            ag.cap_lanes *= 2
        al = &ag.lanes[ag.n_lanes]
        al.lane = lane
        al.penalty = penalty
        al.midx = midx
        al.score = sc
        ag.n_lanes += 1
        return 0

    # -- lookups --------------------------------------------------------------
    cdef int _agent(self, agent_id) except -1:
        cdef int a = _agent_get(self, agent_id)
        if a < 0:
            raise UnknownAgent(_shown_agent(self, agent_id))
        return a

    cdef int _call(self, call_id) except -1:
        cdef int c = _call_get(self, call_id)
        if c < 0:
            raise UnknownCall(_shown_call(self, call_id))
        return c

    cdef inline long long _next_stamp(self) noexcept:
        self.stamp += 1
        return self.stamp

    cdef double _exp1(self) noexcept:
        # splitmix64, bit-identical to rng.SplitMix64
        self.rng += <uint64_t>0x9E3779B97F4A7C15
        cdef uint64_t z = self.rng
        z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
        z = z ^ (z >> 31)
        cdef double u = <double>(z >> 11) * (1.0 / 9007199254740992.0)
        return -log(1.0 - u)

    cdef int _lane(self, int qi, req) except -1:
        cls = self.classes.setdefault(req, len(self.classes))
        lanes_of_q = <dict>self.queue_lanes[qi]
        found = lanes_of_q.get(cls)
        if found is not None:
            return found
        # A new skill class: one pass over the queue's members, once.
        cdef LaneRec* ln
        if self.n_lanes == self.cap_lanes:
            ln = <LaneRec*>realloc(self.lanes, 2 * self.cap_lanes * sizeof(LaneRec))
            if ln == NULL:
                raise MemoryError()
            self.lanes = ln
            self.cap_lanes *= 2
        cdef int lane = self.n_lanes
        ln = &self.lanes[lane]
        ln.queue = qi
        ln.cls = cls
        ln.strategy = self.queues[qi].strategy
        ln.rr_cycle = 0
        ln.rr_last = -1
        ln.pool_limit = ln.waiting_limit = COMPACT_MIN
        heap_init(&ln.waiting)
        heap_init(&ln.pool)
        self.n_lanes += 1
        self.lane_req.append(req)
        self.lane_clock.append({})
        lanes_of_q[cls] = lane
        self.queue_lane_list[qi].append(lane)
        cdef int a, penalty, midx, sc
        for a, penalty, midx in self.queue_members[qi]:
            skills = self.agent_cfgs[a].skills
            if eligible(skills, req):
                sc = score(skills, req)
                self._agent_add_lane(a, lane, penalty, midx, sc)
                if self.agents[a].free:
                    _push_agent(self, lane, a, penalty, midx, sc)
        return lane

    def next_deadline(self):
        cdef Entry* top
        cdef TimerFifo* f
        cdef Entry* front
        while self.timers.n > 0:
            top = &self.timers.data[0]
            if top.aux == T_FIFO:
                f = &self.fifos[top.idx]
                front = &f.data[f.head & f.mask]
                if front.stamp != 0 and _timer_live(self, front):
                    return front.k0
                _fifo_pop_front(self, top.idx)
            elif _timer_live(self, top):
                return top.k0
            else:
                heap_pop(&self.timers)
        return None


    # -- the event entry points (bodies in _scheduler_events.pxi) ---------------
    def handle(self, ev):
        code = _EVENT_CODES.get(type(ev))
        if code is None:
            raise AcdError(f"not an event: {ev!r}")
        return _handle(self, code, ev.t, ev, None, None, None, 0, True)

    def handle_raw(self, int code, double t, call_id=None, agent_id=None, ev=None,
                   queue=None, int priority=0, /):
        """``handle`` without an event object (arguments are positional only:
        cheaper to parse).  ``ev`` (optional) supplies the rarer fields:
        skills, callback, pause/withdraw reason, busy."""
        return _handle(self, code, t, ev, call_id, agent_id, queue, priority, True)

    # -- read-only queries (bodies in _scheduler_queries.pxi) -------------------
    def agent_state(self, agent_id):
        return S.AGENT_STATE_NAMES[self.agents[self._agent(agent_id)].state]

    def agent_pause_reason(self, agent_id):
        cdef int a = self._agent(agent_id)
        return self.pause_reason[a] if self.agents[a].state == PAUSED else None

    def call_state(self, call_id):
        return S.CALL_STATE_NAMES[self.calls[self._call(call_id)].state]

    def queue_position(self, call_id):
        """1-based among the queue's waiting and ringing calls; None once connected."""
        return _queue_position(self, self._call(call_id))

    def ewt(self, call_id):
        return _ewt(self, self._call(call_id))

    def queue_ewt(self, queue):
        """EWT of a caller who would join ``queue`` now (position = calls in it + 1)."""
        return _queue_ewt(self, self._queue(queue))

    def waiting_count(self, queue):
        """Calls in the queue: waiting or ringing an agent."""
        return self.queues[self._queue(queue)].n_in_queue

    def oldest_wait_start(self, queue):
        return _oldest_wait_start(self, self._queue(queue))

    def agents_by_state(self, queue):
        cdef QueueRec* q = &self.queues[self._queue(queue)]
        return {name: q.counts[i] for i, name in enumerate(S.AGENT_STATE_NAMES)}

    def heap_sizes(self):
        """Entries held in the engine's heaps, stale ones included (memory checks)."""
        cdef Py_ssize_t i, pools = 0, waiting = 0
        for i in range(self.n_lanes):
            pools += self.lanes[i].pool.n
            waiting += self.lanes[i].waiting.n
        cdef Py_ssize_t timers = self.timers.n
        for i in range(self.n_fifos):
            timers += self.fifos[i].tail - self.fifos[i].head
        return {"timers": timers, "pools": pools, "waiting": waiting}

    def check_invariants(self):
        _check_invariants(self)

    cdef int _queue(self, name) except -1:
        cdef object qi = self.queue_ix.get(name)
        if qi is None:
            raise UnknownQueue(name)
        return qi
