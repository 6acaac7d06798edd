# IdTable: the runtime's str ids <-> small ints, for InternedScheduler
# (_scheduler_interned.pxi).
#
# Why: the core indexes int ids in a C table (_scheduler_ids.pxi) and str
# ids in a dict; a runtime holds str ids (SIP Call-IDs, agent names).
# Mapping them in Python at the edge cost as much as the core's own str
# handling, so the mapping lives here, in C, next to the core.
#
# Calls: a name gets an int when it arrives (``intern``) and keeps it while
# the core holds that int anywhere -- as a live call (``call_ids``) or as an
# agent's last cancelled offer (``last_cancel``, which answers a late answer
# with a CancelOffer).  The core counts those references through ``hold`` and
# ``drop``; a name whose count falls to 0 is released at the end of the
# event (``flush``: an error raised later in the same event may still name
# it, and a new arrival's int starts unreferenced), and its int is reused by
# a later arrival.  An int is therefore never reused while the core could
# still mean the old call by it.
#
# Agents: an int per ``add_agent``, never reused (agents are few and
# configured, not per call); ``forget`` on ``remove_agent``.


@cython.final
cdef class IdTable:
    """str names <-> dense ints (0, 1, ...)."""
    cdef dict ix              # name -> its int (the object in ``keys``)
    cdef list names           # int -> name, None when free
    cdef list keys            # int -> the int object, made once per int
    cdef int* refs            # int -> references the core holds
    cdef int* free_ints       # released ints (calls only), reused last out first
    cdef Py_ssize_t n_free
    cdef int* pending         # ints that may be unreferenced: checked by flush
    cdef Py_ssize_t n_pending, cap
    cdef readonly bint reuse  # calls: ints are reused once released

    def __cinit__(self):
        self.refs = self.free_ints = self.pending = NULL

    def __init__(self, bint reuse=True):
        self.reuse = reuse
        self.ix = {}
        self.names = []
        self.keys = []
        self.cap = 64
        self.n_free = self.n_pending = 0
        self.refs = <int*>malloc(self.cap * sizeof(int))
        self.free_ints = <int*>malloc(self.cap * sizeof(int))
        self.pending = <int*>malloc(self.cap * sizeof(int))
        if self.refs == NULL or self.free_ints == NULL or self.pending == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.refs)
        free(self.free_ints)
        free(self.pending)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = 2 * self.cap
        cdef int* r = <int*>realloc(self.refs, cap * sizeof(int))
        if r == NULL:
            raise MemoryError()
        self.refs = r
        r = <int*>realloc(self.free_ints, cap * sizeof(int))
        if r == NULL:
            raise MemoryError()
        self.free_ints = r
        r = <int*>realloc(self.pending, cap * sizeof(int))
        if r == NULL:
            raise MemoryError()
        self.pending = r
        self.cap = cap
        return 0

    cdef inline int _note_pending(self, Py_ssize_t i) except -1:
        # At most one entry per int in ``pending`` would need a flag; a
        # repeat is harmless (flush skips an int already released), and
        # ``pending`` is emptied after every event, so it stays small.
        if self.n_pending == self.cap:
            self._grow()
        self.pending[self.n_pending] = <int>i
        self.n_pending += 1
        return 0

    cdef object intern(self, object name):
        """The int of ``name``, a new one if it has none (unreferenced
        until the core holds it: released by the next flush otherwise)."""
        cdef object k = self.ix.get(name)
        if k is not None:
            return k
        if not isinstance(name, str):
            raise TypeError(f"ids at the runtime's edge are str, not {type(name).__name__}: "
                            f"{name!r}")
        cdef Py_ssize_t i
        if self.n_free > 0:
            self.n_free -= 1
            i = self.free_ints[self.n_free]
            self.names[i] = name
            k = self.keys[i]
        else:
            i = len(self.names)
            if i >= 0x7FFFFFFF:
                raise OverflowError("id table full")
            if i == self.cap:
                self._grow()
            k = i
            self.names.append(name)
            self.keys.append(k)
        self.refs[i] = 0
        self.ix[name] = k
        if self.reuse:
            self._note_pending(i)
        return k

    cdef inline void hold(self, Py_ssize_t i) noexcept:
        self.refs[i] += 1

    cdef inline int drop(self, Py_ssize_t i) except -1:
        self.refs[i] -= 1
        if self.refs[i] == 0:
            self._note_pending(i)
        return 0

    cdef int flush(self) except -1:
        """Release the names no longer referenced (after an event's actions
        were translated back)."""
        cdef Py_ssize_t j, i
        for j in range(self.n_pending):
            i = self.pending[j]
            if self.refs[i] == 0 and self.names[i] is not None:
                del self.ix[self.names[i]]
                self.names[i] = None
                self.free_ints[self.n_free] = <int>i
                self.n_free += 1
        self.n_pending = 0
        return 0

    cdef int forget(self, object name) except -1:
        """Drop ``name`` (an agent removed); its int is not reused."""
        cdef object k = self.ix.pop(name)
        self.names[<Py_ssize_t>k] = None
        return 0

    cdef inline object shown(self, object x):
        """The name behind ``x`` when ``x`` is one of our ints, else ``x``
        (error messages speak of the runtime's ids)."""
        if type(x) is not int:
            return x
        cdef Py_ssize_t i
        try:
            i = x
        except OverflowError:
            return x
        if 0 <= i < len(self.names) and self.names[i] is not None:
            return self.names[i]
        return x

    # -- read-outs, for tests and invariant checks ---------------------------------
    def __len__(self):
        return len(self.ix)

    def key_of(self, name):
        """The int of ``name``, or None."""
        return self.ix.get(name)

    def name_of(self, k):
        """The name of int ``k``, or None when ``k`` is free."""
        return self.names[k] if 0 <= k < len(self.names) else None

    def refs_of(self, k):
        return self.refs[<Py_ssize_t>k]

    def capacity(self):
        """Ints handed out so far (live + free): the table's size."""
        return len(self.names)
