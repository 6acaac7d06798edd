# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``sim_loop.run``: same behaviour, C data structures.

Read sim_loop.py for *what* happens; this file mirrors it statement by
statement.  What differs is only representation: the event heap is a C
binary heap of ``(t, kind, a, b)`` structs ordered exactly like Python's
tuples, the pending-answer stack and the occupancy log are growable C
arrays, and per-call state sits in typed memoryviews.  The scheduler is
still called through its public ``handle_raw``/``next_deadline`` — the
point of the simulator is to drive the real engine, not a copy.
"""
from libc.stdlib cimport malloc, realloc, free
from libc.math cimport INFINITY

from acdcore._heap cimport Entry, Heap, heap_free, heap_init, heap_pop, heap_push

import numpy as np

from acdcore import events as E
from acdcore import sim_loop as P
from acdcore.actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                             OfferTimedOut, WrapUpEnded)

cdef enum:
    K_LOGIN = 0
    K_ANSWER = 1
    K_END = 2
    K_ABANDON = 3
    K_LOGOUT = 4
    WAITING = 0
    TALKING = 1
    DONE = 2
    ABANDONED = 3
    EXITED = 4
    OUT = 0
    IDLE = 1
    BUSY = 2
    PAUSED = 3

# The codes are defined once, in sim_loop.py; refuse to run if they drift.
assert (P.K_LOGIN, P.K_ANSWER, P.K_END, P.K_ABANDON, P.K_LOGOUT) == (0, 1, 2, 3, 4)
assert (P.WAITING, P.TALKING, P.DONE, P.ABANDONED, P.EXITED) == (0, 1, 2, 3, 4)
assert (P.OUT, P.IDLE, P.BUSY, P.PAUSED) == (0, 1, 2, 3)

cdef object _Offer = Offer
cdef object _Connect = Connect
cdef object _CancelOffer = CancelOffer
cdef object _OfferTimedOut = OfferTimedOut
cdef object _WrapUpEnded = WrapUpEnded
cdef object _AgentAutoPaused = AgentAutoPaused
cdef object _CallExited = CallExited


# Future events: the engine's heap (_heap.pxd), keyed (t, kind, a, b) like
# the reference loop's tuples; identical keys are identical events, so the
# order among them does not matter.
cdef inline int _push(Heap* h, double t, int kind, long long a, long long b) except -1:
    cdef Entry e
    e.k0 = t
    e.k1 = kind
    e.k2 = <double>a      # ids and indices stay far below 2**53: exact
    e.k3 = <double>b
    e.stamp = 0
    e.idx = e.aux = 0
    return heap_push(h, &e)


cdef struct Growable:
    double* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _append4(Growable* g, double t, double agent, double busy, double idle) except -1:
    cdef double* grown
    if g.size + 4 > g.cap:
        g.cap = g.cap * 2 if g.cap else 4 * 4096
        grown = <double*>realloc(g.data, g.cap * sizeof(double))
        if grown == NULL:
            raise MemoryError()
        g.data = grown
    g.data[g.size] = t
    g.data[g.size + 1] = agent
    g.data[g.size + 2] = busy
    g.data[g.size + 3] = idle
    g.size += 4
    return 0


def run(sched, inp):
    cdef double[::1] arr_t = np.ascontiguousarray(inp.arrival, dtype=np.float64)
    cdef long long[::1] arr_q = np.ascontiguousarray(inp.queue, dtype=np.int64)
    cdef double[::1] handle = np.ascontiguousarray(inp.handle, dtype=np.float64)
    cdef double[::1] expiry = np.ascontiguousarray(inp.expiry, dtype=np.float64)
    cdef double[::1] wrap_of = np.ascontiguousarray(inp.wrap_up, dtype=np.float64)
    cdef double[::1] login = np.ascontiguousarray(inp.login, dtype=np.float64)
    cdef double[::1] logout = np.ascontiguousarray(inp.logout, dtype=np.float64)
    cdef list names = list(inp.names)
    cdef double delay = inp.answer_delay
    cdef Py_ssize_t n_calls = arr_t.shape[0], n_agents = login.shape[0]
    status_np = np.zeros(n_calls, dtype=np.uint8)
    wait_np = np.zeros(n_calls, dtype=np.float64)
    cdef unsigned char[::1] status = status_np
    cdef double[::1] wait = wait_np
    cdef unsigned char* agent_state = <unsigned char*>malloc(max(n_agents, 1))
    cdef list exits = []
    cdef set pending = set()
    cdef Heap heap
    cdef Growable occ
    cdef long long* now_c = NULL
    cdef long long* now_a = NULL
    cdef Py_ssize_t now_n = 0, now_cap = 0
    cdef long long* grown
    cdef Entry e
    cdef Py_ssize_t i = 0, k
    cdef long long c, a
    cdef double t = 0.0, ta, th, deadline = INFINITY
    cdef long long events = 0
    cdef int st
    cdef object actions, act, typ, key, d
    cdef object handle_raw = sched.handle_raw
    cdef object next_deadline = sched.next_deadline
    cdef int EV_ARR = E.EV_CALL_ARRIVED, EV_ANS = E.EV_OFFER_ANSWERED, EV_END = E.EV_CALL_ENDED
    cdef int EV_ABN = E.EV_CALL_ABANDONED, EV_TICK = E.EV_TICK
    cdef int EV_IN = E.EV_AGENT_LOGGED_IN, EV_OUT = E.EV_AGENT_LOGGED_OUT
    if agent_state == NULL:
        raise MemoryError()
    heap_init(&heap)
    occ.data = NULL
    occ.size = occ.cap = 0
    try:
        for k in range(n_agents):
            agent_state[k] = OUT
            _push(&heap, login[k], K_LOGIN, k, k)
            if logout[k] != INFINITY:
                _push(&heap, logout[k], K_LOGOUT, k, k)
        while True:
            if now_n:
                now_n -= 1
                c = now_c[now_n]
                a = now_a[now_n]
                key = (c, a)
                if key not in pending:
                    continue
                pending.discard(key)
                actions = handle_raw(EV_ANS, t, c, a)
            else:
                ta = arr_t[i] if i < n_calls else INFINITY
                th = heap.data[0].k0 if heap.n else INFINITY
                if deadline < ta and deadline < th:
                    t = deadline
                    actions = handle_raw(EV_TICK, t)
                elif ta <= th:
                    if ta == INFINITY:
                        break
                    t = ta
                    c = i
                    i += 1
                    actions = handle_raw(EV_ARR, t, c, None, None, names[arr_q[c]], 0)
                    if expiry[c] != INFINITY:
                        _push(&heap, expiry[c], K_ABANDON, c, -1)
                else:
                    e = heap.data[0]
                    heap_pop(&heap)
                    t = e.k0
                    c = <long long>e.k2
                    a = <long long>e.k3
                    if <int>e.k1 == K_END:
                        status[c] = DONE
                        actions = handle_raw(EV_END, t, c)
                        if wrap_of[arr_q[c]] == 0 and agent_state[a] == BUSY:
                            agent_state[a] = IDLE
                            _append4(&occ, t, a, -1, 1)
                    elif <int>e.k1 == K_ABANDON:
                        if status[c] != WAITING:
                            continue
                        status[c] = ABANDONED
                        wait[c] = t - arr_t[c]
                        actions = handle_raw(EV_ABN, t, c)
                    elif <int>e.k1 == K_ANSWER:
                        key = (c, a)
                        if key not in pending:
                            continue
                        pending.discard(key)
                        actions = handle_raw(EV_ANS, t, c, a)
                    elif <int>e.k1 == K_LOGIN:
                        actions = handle_raw(EV_IN, t, None, a)
                        agent_state[a] = IDLE
                        _append4(&occ, t, a, 0, 1)
                    else:
                        actions = handle_raw(EV_OUT, t, None, a)
                        st = agent_state[a]
                        _append4(&occ, t, a, -(st == BUSY), -(st == IDLE))
                        agent_state[a] = OUT
            events += 1
            for act in <list>actions:
                typ = type(act)
                if typ is _Offer:
                    c = (<tuple>act)[0]
                    a = (<tuple>act)[1]
                    pending.add((c, a))
                    if delay == 0:
                        if now_n == now_cap:
                            now_cap = now_cap * 2 if now_cap else 64
                            grown = <long long*>realloc(now_c, now_cap * sizeof(long long))
                            if grown == NULL:
                                raise MemoryError()
                            now_c = grown
                            grown = <long long*>realloc(now_a, now_cap * sizeof(long long))
                            if grown == NULL:
                                raise MemoryError()
                            now_a = grown
                        now_c[now_n] = c
                        now_a[now_n] = a
                        now_n += 1
                    else:
                        _push(&heap, t + delay, K_ANSWER, c, a)
                elif typ is _Connect:
                    c = (<tuple>act)[0]
                    a = (<tuple>act)[1]
                    status[c] = TALKING
                    wait[c] = t - arr_t[c]
                    _push(&heap, t + handle[c], K_END, c, a)
                    if agent_state[a] == IDLE:
                        agent_state[a] = BUSY
                        _append4(&occ, t, a, 1, -1)
                elif typ is _CancelOffer or typ is _OfferTimedOut:
                    pending.discard(((<tuple>act)[0], (<tuple>act)[1]))
                elif typ is _WrapUpEnded:
                    a = (<tuple>act)[0]
                    if agent_state[a] == BUSY:
                        agent_state[a] = IDLE
                        _append4(&occ, t, a, -1, 1)
                elif typ is _AgentAutoPaused:
                    a = (<tuple>act)[0]
                    st = agent_state[a]
                    _append4(&occ, t, a, -(st == BUSY), -(st == IDLE))
                    agent_state[a] = PAUSED
                elif typ is _CallExited:
                    c = (<tuple>act)[0]
                    status[c] = EXITED
                    exits.append((c, (<tuple>act)[2]))
            d = next_deadline()
            deadline = INFINITY if d is None else <double>d
        occupancy = np.empty((occ.size // 4, 4), dtype=np.float64)
        if occ.size:
            occupancy.reshape(-1)[:] = <double[:occ.size]>occ.data
    finally:
        heap_free(&heap)
        free(occ.data)
        free(now_c)
        free(now_a)
        free(agent_state)
    return P.LoopOutput(status=status_np, wait=wait_np, exits=exits, occupancy=occupancy,
                        events=events, t_last=t)
