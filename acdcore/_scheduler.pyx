# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled ACD scheduler: the rules of reference.py on C records.

Read reference.py for *what* happens; this file mirrors it function by
function (same names, same order of side effects -- the differential tests
compare every action).  What differs is only representation:

* agents, calls, queues and lanes are C structs in growable arrays, ids are
  interned to slot numbers at the API edge (_scheduler_ids.pxi: a C table
  for int ids, a dict for any other hashable); call slots are
  recycled through a free list, and every heap entry carries a stamp from a
  global counter, so an entry for a recycled slot is never mistaken as live;
* heaps are C binary heaps of one entry type (_heap.pxd); queue positions
  come from a Fenwick index per (queue, priority) (_rank.pxd);
* randomness is the same splitmix64 as rng.py, in uint64 arithmetic.

Fast path: ``handle_raw(code, t, call_id, agent_id, ev, queue, priority, /)``
skips building event objects (codes are ``events.EV_*``); ids may be ints,
which hash faster than str (see scheduler.py).

Layout: this file holds the C tables and helpers; the class is in
_scheduler_core.pxi and the rules in _scheduler_timers.pxi,
_scheduler_hunt.pxi, _scheduler_matching.pxi,
_scheduler_events.pxi, _scheduler_agents.pxi and _scheduler_queries.pxi
(included below; each mirrors a ref_*.py file).
"""
cimport cython
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.math cimport log
from libc.stdint cimport uint64_t

from acdcore._heap cimport (Entry, Heap, heap_heapify, heap_init, heap_free, heap_push,
                            heap_push_noexcept, heap_pop)
from acdcore._records cimport (HANDLE_WINDOW, AgentLane, AgentRec, CallRec, IdSlot, IntMap,
                              LaneRec, Membership, QueueRec, TimerFifo)
from acdcore._rank cimport (Rank, rank_init, rank_free, rank_push, rank_remove,
                            rank_prefix, rank_first)

from acdcore import events as E
from acdcore import states as S
from acdcore.actions import (AgentAutoPaused, CallExited, CancelOffer, Connect, Offer,
                             OfferTimedOut, WrapUpEnded)
from acdcore.errors import AcdError, PickupRefused, UnknownAgent, UnknownCall, UnknownQueue
from acdcore.ewt import expected_wait, mean_handle
from acdcore.model import STRATEGY_CODES, Strategy
from acdcore.skills import ANY, eligible, normalize, relax_moments, relaxed, score

cdef tuple _NO_SKILLS = ANY  # C-level constant: no module lookup per call

cdef dict _EVENT_CODES = E.EVENT_CODES

from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_INCREF

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject* t, Py_ssize_t n)
    void PyTuple_SET_ITEM(object p, Py_ssize_t pos, object o)


cdef inline object _act(type kind, tuple fields):
    return tuple.__new__(kind, fields)


cdef inline object _act2(type kind, object a, object b):
    # An action is a NamedTuple: allocate the subtype instance directly and
    # fill it (what tuple.__new__ does, minus the temporary argument tuple).
    cdef object r = PyType_GenericAlloc(<PyTypeObject*>kind, 2)
    Py_INCREF(a)
    Py_INCREF(b)
    PyTuple_SET_ITEM(r, 0, a)
    PyTuple_SET_ITEM(r, 1, b)
    return r


cdef inline object _act3(type kind, object a, object b, object c):
    cdef object r = PyType_GenericAlloc(<PyTypeObject*>kind, 3)
    Py_INCREF(a)
    Py_INCREF(b)
    Py_INCREF(c)
    PyTuple_SET_ITEM(r, 0, a)
    PyTuple_SET_ITEM(r, 1, b)
    PyTuple_SET_ITEM(r, 2, c)
    return r

# --- state tables, flattened from states.py (the single source of truth) ---
cdef enum:
    LOGGED_OUT = 0
    AVAILABLE = 1
    OFFERED = 2
    BUSY = 3
    WRAP_UP = 4
    PAUSED = 5
    A_LOGIN = 0
    A_LOGOUT = 1
    A_READY = 2
    A_PAUSE = 3
    A_OFFER = 4
    A_ANSWER = 5
    A_DECLINE = 6
    A_CANCEL = 7
    A_CALL_END = 8
    A_WRAP_DONE = 9
    A_AUTOPAUSE = 10
    A_OUTBOUND = 11
    A_PICKUP = 12
    N_A_INPUTS = 13
    C_WAITING = 0
    C_OFFERED = 1
    C_TALKING = 2
    C_GONE = 3
    C_OFFER = 0
    C_LOST = 1
    C_ANSWER = 2
    C_ABANDON = 3
    C_WITHDRAW = 4
    C_EXIT = 5
    C_END = 6
    C_RELAX = 7
    C_CALLBACK = 8
    C_PICKUP = 9
    N_C_INPUTS = 10
    T_RING = 0
    T_MAXWAIT = 1
    T_WRAP = 2
    T_READY = 3
    T_RELAX = 4
    T_FIFO = 5      # heap marker standing for the front of a TimerFifo
    EV_CALL_ARRIVED = 0
    EV_CALL_ABANDONED = 1
    EV_CALL_WITHDRAWN = 2
    EV_AGENT_LOGGED_IN = 3
    EV_AGENT_LOGGED_OUT = 4
    EV_AGENT_READY = 5
    EV_AGENT_PAUSED = 6
    EV_OFFER_ANSWERED = 7
    EV_OFFER_REJECTED = 8
    EV_CALL_ENDED = 9
    EV_WRAP_UP_DONE = 10
    EV_TICK = 11
    EV_CALLBACK_REQUESTED = 12
    EV_AGENT_OUTBOUND = 20
    EV_OUTBOUND_ENDED = 21
    OUT_NONE = 0
    OUT_ON_CALL = 1
    OUT_DROPPED = 2
    EV_CALL_PICKED_UP = 13

assert (S.LOGGED_OUT, S.AVAILABLE, S.OFFERED, S.BUSY, S.WRAP_UP, S.PAUSED) == tuple(range(6))
assert (S.A_AUTOPAUSE, S.C_CALLBACK, S.C_GONE) == (A_AUTOPAUSE, C_CALLBACK, C_GONE)
assert (S.A_PICKUP, S.C_PICKUP, len(S.AGENT_INPUT_NAMES), len(S.CALL_INPUT_NAMES)) == \
    (A_PICKUP, C_PICKUP, N_A_INPUTS, N_C_INPUTS)
assert E.EV_CALL_PICKED_UP == EV_CALL_PICKED_UP
assert (E.EV_CALL_ARRIVED, E.EV_OFFER_ANSWERED, E.EV_TICK, E.EV_CALLBACK_REQUESTED) == \
    (EV_CALL_ARRIVED, EV_OFFER_ANSWERED, EV_TICK, EV_CALLBACK_REQUESTED)
assert (S.A_OUTBOUND, len(S.AGENT_INPUT_NAMES)) == (A_OUTBOUND, N_A_INPUTS)
assert (E.EV_AGENT_OUTBOUND, E.EV_OUTBOUND_ENDED) == (EV_AGENT_OUTBOUND, EV_OUTBOUND_ENDED)

cdef int AGENT_T[6 * N_A_INPUTS]
cdef int CALL_T[4 * N_C_INPUTS]
cdef bint SERVING[6]
for _i, _v in enumerate(S.flat_table(S.AGENT_TRANSITIONS, 6, N_A_INPUTS)):
    AGENT_T[_i] = _v
for _i, _v in enumerate(S.flat_table(S.CALL_TRANSITIONS, 4, N_C_INPUTS)):
    CALL_T[_i] = _v
for _i in range(6):
    SERVING[_i] = _i in S.SERVING_STATES

# strategy codes
cdef int ST_LINEAR = STRATEGY_CODES[Strategy.LINEAR]
cdef int ST_RR = STRATEGY_CODES[Strategy.ROUND_ROBIN]
cdef int ST_RING_ALL = STRATEGY_CODES[Strategy.RING_ALL]
cdef int ST_LONGEST_IDLE = STRATEGY_CODES[Strategy.LONGEST_IDLE]
cdef int ST_FEWEST = STRATEGY_CODES[Strategy.FEWEST_CALLS]
cdef int ST_LEAST_TALK = STRATEGY_CODES[Strategy.LEAST_TALK_TIME]
cdef int ST_RANDOM = STRATEGY_CODES[Strategy.RANDOM]
cdef int ST_WEIGHTED = STRATEGY_CODES[Strategy.WEIGHTED_RANDOM]
cdef int ST_SKILLS = STRATEGY_CODES[Strategy.SKILLS]


cdef extern from "stdlib.h":
    int posix_memalign(void** p, size_t alignment, size_t size) nogil

assert sizeof(CallRec) == 128


cdef CallRec* _calls_alloc(CallRec* old, Py_ssize_t n, Py_ssize_t cap) noexcept:
    """A 64-byte aligned array of ``cap`` records holding the ``n`` of ``old``
    (freed); NULL, with ``old`` untouched, when out of memory.  realloc
    would not keep the alignment."""
    cdef void* p = NULL
    if posix_memalign(&p, 64, cap * sizeof(CallRec)) != 0:
        return NULL
    if old != NULL:
        memcpy(p, old, n * sizeof(CallRec))
        free(old)
    return <CallRec*>p


cdef inline int agent_next(int state, int inp) except -1:
    cdef int ns = AGENT_T[state * N_A_INPUTS + inp]
    if ns < 0:
        S.agent_next(state, inp)  # raises InvalidTransition with the names
    return ns


cdef inline int call_next(int state, int inp) except -1:
    cdef int ns = CALL_T[state * N_C_INPUTS + inp]
    if ns < 0:
        S.call_next(state, inp)
    return ns


cdef class _RankBox:
    """A Rank (Fenwick FIFO index) owned by Python (one per queue and priority)."""
    cdef Rank r

    def __cinit__(self):
        rank_init(&self.r, 64)

    def __dealloc__(self):
        rank_free(&self.r)


include "_scheduler_idtable.pxi"
include "_scheduler_core.pxi"
include "_scheduler_ids.pxi"
include "_scheduler_timers.pxi"
include "_scheduler_hunt.pxi"
include "_scheduler_matching.pxi"
include "_scheduler_events.pxi"
include "_scheduler_agents.pxi"
include "_scheduler_queries.pxi"
include "_scheduler_interned.pxi"
