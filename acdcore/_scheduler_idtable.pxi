# IdTable: the runtime's str ids <-> small ints, for InternedScheduler
# (_scheduler_interned.pxi).
#
# Why: the core indexes int ids in a C table (_scheduler_ids.pxi) and str
# ids in a dict; a runtime holds str ids (SIP Call-IDs, agent names).
# Mapping them in Python at the edge cost as much as the core's own str
# handling, so the mapping lives here, in C, next to the core.  It is not a
# dict either: a dict lookup returns a Python int object that must then be
# touched (a cache miss per id at 100,000 calls); here the index is one C
# array of (name pointer, hash, int), matched by pointer first (the runtime
# passes the very str it registered), so a lookup costs one cache line.
#
# Calls: a name gets an int when it arrives (``intern``) and keeps it while
# the core holds that int anywhere -- as a live call (CallRec.ext) or as an
# agent's last cancelled offer (AgentRec.cancel_ext, which answers a late
# answer with a CancelOffer).  The core counts those references through
# ``hold`` and ``drop``; a name whose count falls to 0 is released at the
# end of the event (``flush``: an error raised later in the same event may
# still name it, and a new arrival's int starts unreferenced), and its int
# is reused by a later arrival.  An int is therefore never reused while the
# core could still mean the old call by it.
#
# Agents: an int per ``add_agent``, never reused (agents are few and
# configured, not per call); ``forget`` on ``remove_agent``.
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.object cimport PyObject_Hash
from cpython.unicode cimport PyUnicode_CheckExact

cdef extern from "Python.h":
    ctypedef struct PyASCIIObject:
        Py_hash_t hash


cdef inline Py_hash_t _hash(object name) except? -1:
    # A str caches its hash in its header: read it there (as dict does)
    # rather than through the type's hash function.
    cdef Py_hash_t h
    if PyUnicode_CheckExact(name):
        h = (<PyASCIIObject*><PyObject*>name).hash
        if h != -1:
            return h
    return PyObject_Hash(name)


cdef struct NameSlot:          # the index: open addressing, linear probing
    PyObject* name             # borrowed from NameEnt; NULL: empty
    Py_hash_t hash
    int k
    int slot                   # the core's slot (a call while live; an agent), -1:
                               # the core's id index for these ints (no IntMap)


cdef struct NameEnt:           # int -> name
    PyObject* name             # owned; NULL: the int is free
    Py_hash_t hash
    int refs                   # references the core holds (calls)


@cython.final
cdef class IdTable:
    """str names <-> dense ints (0, 1, ...)."""
    cdef NameSlot* slots
    cdef Py_ssize_t mask, n_live
    cdef int shift
    cdef NameEnt* ents
    cdef Py_ssize_t n_ents, cap
    cdef int* free_ints        # released ints (calls only), reused last out first
    cdef Py_ssize_t n_free
    cdef long long last_k      # the int the last lookup found, and its slot:
    cdef NameSlot* last_ns     # the core asks for that one next (one cache line)
    cdef int* pending          # ints that may be unreferenced: checked by flush
    cdef Py_ssize_t n_pending
    cdef readonly bint reuse   # calls: ints are reused once released

    def __cinit__(self):
        self.slots = NULL
        self.ents = NULL
        self.free_ints = self.pending = NULL
        self.n_ents = 0

    def __init__(self, bint reuse=True):
        self.reuse = reuse
        self.cap = 64
        self.n_live = self.n_free = self.n_pending = 0
        self.last_k = -1
        self.ents = <NameEnt*>malloc(self.cap * sizeof(NameEnt))
        self.free_ints = <int*>malloc(self.cap * sizeof(int))
        self.pending = <int*>malloc(self.cap * sizeof(int))
        if self.ents == NULL or self.free_ints == NULL or self.pending == NULL:
            raise MemoryError()
        self._new_index(7)

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.ents != NULL:
            for i in range(self.n_ents):
                if self.ents[i].name != NULL:
                    Py_DECREF(<object>self.ents[i].name)
        free(self.ents)
        free(self.slots)
        free(self.free_ints)
        free(self.pending)

    # -- the index ----------------------------------------------------------------
    cdef int _new_index(self, int log2) except -1:
        cdef Py_ssize_t cap = (<Py_ssize_t>1) << log2, i
        cdef NameSlot* s = <NameSlot*>malloc(cap * sizeof(NameSlot))
        if s == NULL:
            raise MemoryError()
        for i in range(cap):
            s[i].name = NULL
        free(self.slots)
        self.slots = s
        self.mask = cap - 1
        self.shift = 64 - log2
        return 0

    cdef inline Py_ssize_t _home(self, Py_hash_t h) noexcept:
        return <Py_ssize_t>((<uint64_t>h * <uint64_t>0x9E3779B97F4A7C15) >> self.shift)

    cdef inline NameSlot* _place(self, PyObject* name, Py_hash_t h, int k, int slot) noexcept:
        cdef Py_ssize_t i = self._home(h)
        while self.slots[i].name != NULL:
            i = (i + 1) & self.mask
        self.slots[i].name = name
        self.slots[i].hash = h
        self.slots[i].k = k
        self.slots[i].slot = slot
        return &self.slots[i]

    cdef int _grow_index(self) except -1:
        cdef NameSlot* old = self.slots
        cdef Py_ssize_t old_cap = self.mask + 1, i
        self.slots = NULL
        self.last_k = -1
        self._new_index(64 - self.shift + 1)
        for i in range(old_cap):
            if old[i].name != NULL:
                self._place(old[i].name, old[i].hash, old[i].k, old[i].slot)
        free(old)
        return 0

    cdef inline Py_ssize_t find(self, object name) except -2:
        """The int of ``name``, or -1."""
        cdef Py_hash_t h = _hash(name)
        cdef Py_ssize_t i = self._home(h)
        cdef NameSlot* s
        while True:
            s = &self.slots[i]
            if s.name == NULL:
                return -1
            if s.name == <PyObject*>name or (s.hash == h and <object>s.name == name):
                self.last_k = s.k
                self.last_ns = s
                return s.k
            i = (i + 1) & self.mask

    cdef int _unplace(self, int k) except -1:
        """Remove int ``k``'s slot (backward shift: no tombstones)."""
        cdef NameSlot* s = self._slot_of_k(k)
        cdef Py_ssize_t i = s - self.slots, j, home
        self.last_k = -1                     # slots move
        j = i
        while True:
            j = (j + 1) & self.mask
            if self.slots[j].name == NULL:
                break
            home = self._home(self.slots[j].hash)
            if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                self.slots[i] = self.slots[j]
                i = j
        self.slots[i].name = NULL
        return 0

    # -- ints ---------------------------------------------------------------------
    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = 2 * self.cap
        cdef NameEnt* e = <NameEnt*>realloc(self.ents, cap * sizeof(NameEnt))
        if e == NULL:
            raise MemoryError()
        self.ents = e
        cdef int* r = <int*>realloc(self.free_ints, cap * sizeof(int))
        if r == NULL:
            raise MemoryError()
        self.free_ints = r
        r = <int*>realloc(self.pending, cap * sizeof(int))
        if r == NULL:
            raise MemoryError()
        self.pending = r
        self.cap = cap
        return 0

    cdef inline int _note_pending(self, Py_ssize_t k) except -1:
        # A repeat is harmless (flush skips an int already released), and
        # ``pending`` is emptied after every event, so it stays small.
        if self.n_pending == self.cap:
            self._grow()
        self.pending[self.n_pending] = <int>k
        self.n_pending += 1
        return 0

    cdef Py_ssize_t intern(self, object name) except -1:
        """The int of ``name``, a new one if it has none (unreferenced
        until the core holds it: released by the next flush otherwise)."""
        cdef Py_ssize_t k = self.find(name)
        if k >= 0:
            return k
        if not isinstance(name, str):
            raise TypeError(f"ids at the runtime's edge are str, not {type(name).__name__}: "
                            f"{name!r}")
        if 2 * (self.n_live + 1) > self.mask + 1:
            self._grow_index()
        if self.n_free > 0:
            self.n_free -= 1
            k = self.free_ints[self.n_free]
        else:
            if self.n_ents >= 0x7FFFFFFF:
                raise OverflowError("id table full")
            if self.n_ents == self.cap:
                self._grow()
            k = self.n_ents
            self.n_ents += 1
        Py_INCREF(name)
        self.ents[k].name = <PyObject*>name
        self.ents[k].refs = 0
        self.ents[k].hash = _hash(name)
        self.last_ns = self._place(<PyObject*>name, self.ents[k].hash, <int>k, -1)
        self.last_k = k
        self.n_live += 1
        if self.reuse:
            self._note_pending(k)
        return k

    cdef inline bint _ours(self, long long k) noexcept:
        return 0 <= k < self.n_ents and self.ents[k].name != NULL

    cdef inline NameSlot* _slot_of_k(self, long long k) noexcept:
        """Int ``k``'s index entry (NULL: not ours); the last one found is at hand."""
        if k == self.last_k:
            return self.last_ns
        if not self._ours(k):
            return NULL
        cdef PyObject* name = self.ents[k].name
        cdef Py_ssize_t i = self._home(self.ents[k].hash)
        while self.slots[i].name != name:    # the entry borrows this very pointer
            i = (i + 1) & self.mask
        self.last_k = k
        self.last_ns = &self.slots[i]
        return self.last_ns

    cdef inline int slot_of(self, long long k) noexcept:
        """The core's slot of int ``k``, -1."""
        cdef NameSlot* s = self._slot_of_k(k)
        return -1 if s == NULL else s.slot

    cdef inline int claim_slot(self, long long k, int c) except -2:
        """Registers k -> c unless k has a slot; returns the slot it has, or -1."""
        cdef NameSlot* s = self._slot_of_k(k)
        if s == NULL:
            raise AcdError(f"id {k!r} is not an interned id")
        if s.slot >= 0:
            return s.slot
        s.slot = c
        return -1

    cdef inline int pop_slot(self, long long k) noexcept:
        cdef NameSlot* s = self._slot_of_k(k)
        if s == NULL or s.slot < 0:
            return -1
        cdef int c = s.slot
        s.slot = -1
        return c

    cdef inline object name_at(self, Py_ssize_t k):
        return <object>self.ents[k].name

    cdef inline void hold(self, Py_ssize_t k) noexcept:
        self.ents[k].refs += 1

    cdef inline int drop(self, Py_ssize_t k) except -1:
        self.ents[k].refs -= 1
        if self.ents[k].refs == 0:
            self._note_pending(k)
        return 0

    cdef int _release(self, Py_ssize_t k) except -1:
        self._unplace(<int>k)
        name = <object>self.ents[k].name
        self.ents[k].name = NULL
        Py_DECREF(name)   # the table's own reference (``name`` keeps one till return)
        self.n_live -= 1
        return 0

    cdef int flush(self) except -1:
        """Release the names no longer referenced (after an event)."""
        cdef Py_ssize_t j, k
        for j in range(self.n_pending):
            k = self.pending[j]
            if self.ents[k].refs == 0 and self.ents[k].name != NULL:
                self._release(k)
                self.free_ints[self.n_free] = <int>k
                self.n_free += 1
        self.n_pending = 0
        return 0

    cdef int forget(self, object name) except -1:
        """Drop ``name`` (an agent removed); its int is not reused."""
        cdef Py_ssize_t k = self.find(name)
        if k < 0:
            raise KeyError(name)
        self._release(k)
        return 0

    cdef inline object shown(self, object x):
        """The name behind ``x`` when ``x`` is one of our ints, else ``x``
        (error messages speak of the runtime's ids)."""
        if type(x) is not int:
            return x
        cdef Py_ssize_t k
        try:
            k = x
        except OverflowError:
            return x
        if 0 <= k < self.n_ents and self.ents[k].name != NULL:
            return <object>self.ents[k].name
        return x

    # -- read-outs, for tests and invariant checks ---------------------------------
    def __len__(self):
        return self.n_live

    def key_of(self, name):
        """The int of ``name``, or None."""
        cdef Py_ssize_t k = self.find(name)
        return None if k < 0 else k

    def name_of(self, Py_ssize_t k):
        """The name of int ``k``, or None when ``k`` is free."""
        if 0 <= k < self.n_ents and self.ents[k].name != NULL:
            return <object>self.ents[k].name
        return None

    def refs_of(self, Py_ssize_t k):
        return self.ents[k].refs

    def capacity(self):
        """Ints handed out so far (live + free): the table's size."""
        return self.n_ents

    def check(self):
        """The table's own consistency (tests): index <-> ints, free list."""
        cdef Py_ssize_t i, n_slots = 0
        assert self.n_pending == 0, "id table: a release was not flushed"
        for i in range(self.mask + 1):
            if self.slots[i].name != NULL:
                n_slots += 1
                k = self.slots[i].k
                assert self.ents[k].name == self.slots[i].name, (i, k)
                assert self.ents[k].hash == self.slots[i].hash, (i, k)
                assert self.find(<object>self.slots[i].name) == k
        assert n_slots == self.n_live
        free_set = {self.free_ints[i] for i in range(self.n_free)}
        assert len(free_set) == self.n_free, "id table: an int freed twice"
        for i in range(self.n_ents):
            if self.ents[i].name == NULL:
                assert i in free_set or not self.reuse, f"id table: int {i} lost"
                assert self.ents[i].refs == 0
            else:
                assert i not in free_set
        if self.reuse:
            assert self.n_live + self.n_free == self.n_ents
