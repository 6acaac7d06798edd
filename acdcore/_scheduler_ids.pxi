# Id interning of the Cython Scheduler: call and agent ids -> slot numbers.
#
# Any hashable is an id.  Integer ids -- what a runtime hands out after
# interning its SIP Call-IDs, and the cheapest to pass -- skip the Python
# dict: they live in a C open-addressing table (Fibonacci hashing, linear
# probing, backward-shift deletion, load <= 1/2), one cache line per
# lookup, no object comparison, no refcounting.  Every other id goes to a
# dict.  A number *equal* to an int (True, 5.0, numpy.int64(5)) is the same
# dict key as that int in Python, so it is routed to the int table too and
# both engines agree on which ids collide.
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_CheckExact
from cpython.long cimport PyLong_CheckExact
import numbers as _numbers


cdef int im_init(IntMap* m, Py_ssize_t cap_log2) except -1:
    cdef Py_ssize_t cap = (<Py_ssize_t>1) << cap_log2, i
    m.slots = <IdSlot*>malloc(cap * sizeof(IdSlot))
    if m.slots == NULL:
        raise MemoryError()
    for i in range(cap):
        m.slots[i].val = -1
    m.mask = cap - 1
    m.shift = 64 - <int>cap_log2
    m.n = 0
    return 0


cdef inline void im_free(IntMap* m) noexcept:
    free(m.slots)
    m.slots = NULL


cdef inline Py_ssize_t _im_home(IntMap* m, long long key) noexcept nogil:
    return <Py_ssize_t>((<uint64_t>key * <uint64_t>0x9E3779B97F4A7C15) >> m.shift)


cdef inline int im_get(IntMap* m, long long key) noexcept nogil:
    """The value of ``key``, or -1."""
    cdef Py_ssize_t i = _im_home(m, key)
    cdef IdSlot* s
    while True:
        s = &m.slots[i]
        if s.val < 0 or s.key == key:
            return s.val
        i = (i + 1) & m.mask


cdef int _im_grow(IntMap* m) except -1:
    cdef IdSlot* old = m.slots
    cdef Py_ssize_t old_cap = m.mask + 1, i, j
    im_init(m, 64 - m.shift + 1)
    for i in range(old_cap):
        if old[i].val >= 0:
            j = _im_home(m, old[i].key)
            while m.slots[j].val >= 0:
                j = (j + 1) & m.mask
            m.slots[j] = old[i]
            m.n += 1
    free(old)
    return 0


cdef inline int im_setdefault(IntMap* m, long long key, int val) except -2:
    """Inserts key -> val unless key is there; returns the existing value or -1."""
    cdef Py_ssize_t i
    cdef IdSlot* s
    if 2 * (m.n + 1) > m.mask + 1:
        _im_grow(m)
    i = _im_home(m, key)
    while True:
        s = &m.slots[i]
        if s.val < 0:
            s.key = key
            s.val = val
            m.n += 1
            return -1
        if s.key == key:
            return s.val
        i = (i + 1) & m.mask


cdef inline int im_pop(IntMap* m, long long key) noexcept nogil:
    """Removes ``key``; returns its value, or -1 if absent."""
    cdef Py_ssize_t i = _im_home(m, key), j, k
    cdef int val
    while True:
        if m.slots[i].val < 0:
            return -1
        if m.slots[i].key == key:
            break
        i = (i + 1) & m.mask
    val = m.slots[i].val
    # Backward shift: pull later members of the probe run into the hole
    # unless their home lies cyclically in (hole, j].
    j = i
    while True:
        j = (j + 1) & m.mask
        if m.slots[j].val < 0:
            break
        k = _im_home(m, m.slots[j].key)
        if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
            m.slots[i] = m.slots[j]
            i = j
    m.slots[i].val = -1
    m.n -= 1
    return val


cdef inline bint _int_id(object x, long long* key) except -1:
    """True (and the key) when ``x`` is an int id for the C table."""
    cdef int overflow = 0
    if PyUnicode_CheckExact(x):
        return False
    if PyLong_CheckExact(x):
        key[0] = PyLong_AsLongLongAndOverflow(x, &overflow)
        return overflow == 0
    return _int_alias(x, key)


cdef bint _int_alias(object x, long long* key) except -1:
    # Rare path: a bool, float or other number that equals an int is that
    # int's dict key in Python, so it must share the int's table entry.
    cdef int overflow = 0
    if x is None or not isinstance(x, _numbers.Number):
        return False
    try:
        i = int(x)
    except (TypeError, ValueError, OverflowError):
        return False
    if i != x or hash(i) != hash(x):
        return False
    key[0] = PyLong_AsLongLongAndOverflow(i, &overflow)
    return overflow == 0


# -- the two indexes, as the rules use them ---------------------------------
cdef inline int _call_get(Scheduler self, object call_id) except -2:
    """Slot of ``call_id``, or -1."""
    cdef long long k
    if _int_id(call_id, &k):
        if self.call_names is not None:
            return self.call_names.slot_of(k)
        return im_get(&self.call_im, k)
    cdef object c = self.call_ix.get(call_id)
    return -1 if c is None else <int>c


cdef inline int _call_claim(Scheduler self, object call_id, int slot) except -2:
    """Registers call_id -> slot unless the id is known; returns the known slot or -1."""
    cdef long long k
    if _int_id(call_id, &k):
        if self.call_names is not None:
            return self.call_names.claim_slot(k, slot)
        return im_setdefault(&self.call_im, k, slot)
    cdef object s = slot
    cdef object c = self.call_ix.setdefault(call_id, s)
    return -1 if c is s else <int>c


cdef inline int _call_pop(Scheduler self, object call_id) except -2:
    """Drops call_id; returns its slot, or -1 if unknown."""
    cdef long long k
    if _int_id(call_id, &k):
        if self.call_names is not None:
            return self.call_names.pop_slot(k)
        return im_pop(&self.call_im, k)
    cdef object c = self.call_ix.pop(call_id, None)
    return -1 if c is None else <int>c


cdef inline int _call_set(Scheduler self, object call_id, int c) except -1:
    if _call_claim(self, call_id, c) >= 0:
        raise AssertionError("call id re-registered")
    return 0


cdef inline int _agent_get(Scheduler self, object agent_id) except -2:
    cdef long long k
    if _int_id(agent_id, &k):
        if self.agent_names is not None:
            return self.agent_names.slot_of(k)
        return im_get(&self.agent_im, k)
    cdef object a = self.agent_ix.get(agent_id)
    return -1 if a is None else <int>a


cdef object _call_items(Scheduler self):
    """(id, slot) of every known call (invariant checks only)."""
    items = list(self.call_ix.items())
    cdef Py_ssize_t i
    if self.call_names is not None:
        for i in range(self.call_names.mask + 1):
            if self.call_names.slots[i].name != NULL and self.call_names.slots[i].slot >= 0:
                items.append((self.call_names.slots[i].k, self.call_names.slots[i].slot))
    for i in range(self.call_im.mask + 1):
        if self.call_im.slots[i].val >= 0:
            items.append((self.call_im.slots[i].key, self.call_im.slots[i].val))
    return items
