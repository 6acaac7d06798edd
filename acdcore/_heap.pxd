# Binary min-heap of fixed-size C entries with lazy deletion (see lanes.py).
#
# One entry type serves every heap of the engine: agent pools, waiting calls
# and timers.  Keys compare lexicographically on (k0, k1, k2, k3, stamp),
# exactly like the tuples of the reference scheduler, so both engines pop in
# the same order.
from libc.stdlib cimport malloc, realloc, free


cdef struct Entry:
    double k0
    double k1
    double k2
    double k3
    long long stamp
    int idx
    int aux


cdef struct Heap:
    Entry* data
    Py_ssize_t n
    Py_ssize_t cap


cdef inline bint entry_lt(Entry* a, Entry* b) noexcept nogil:
    if a.k0 != b.k0:
        return a.k0 < b.k0
    if a.k1 != b.k1:
        return a.k1 < b.k1
    if a.k2 != b.k2:
        return a.k2 < b.k2
    if a.k3 != b.k3:
        return a.k3 < b.k3
    return a.stamp < b.stamp


cdef inline int heap_init(Heap* h) except -1:
    h.cap = 4
    h.n = 0
    h.data = <Entry*>malloc(h.cap * sizeof(Entry))
    if h.data == NULL:
        raise MemoryError()
    return 0


cdef inline void heap_free(Heap* h) noexcept:
    free(h.data)
    h.data = NULL
    h.n = h.cap = 0


cdef inline int heap_push(Heap* h, Entry* e) except -1:
    cdef Py_ssize_t i, parent
    cdef Entry* d
    if h.n == h.cap:
        d = <Entry*>realloc(h.data, 2 * h.cap * sizeof(Entry))
        if d == NULL:
            raise MemoryError()
        h.data = d
        h.cap *= 2
    d = h.data
    i = h.n
    h.n += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not entry_lt(e, &d[parent]):
            break
        d[i] = d[parent]
        i = parent
    d[i] = e[0]
    return 0


cdef inline void heap_push_noexcept(Heap* h, Entry* e) noexcept:
    """heap_push for a heap known to have room (an entry was just popped)."""
    cdef Py_ssize_t i = h.n, parent
    cdef Entry* d = h.data
    h.n += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not entry_lt(e, &d[parent]):
            break
        d[i] = d[parent]
        i = parent
    d[i] = e[0]


cdef inline void heap_pop(Heap* h) noexcept:
    """Removes the top entry (the caller has read it from h.data[0]).

    Bottom-up variant: walk the hole down along the smaller children to a
    leaf (one comparison per level), then sift the former last entry up from
    there.  It usually belongs near the bottom, so this saves about half the
    comparisons of the textbook sift-down.  Keys are unique (the stamp breaks
    ties), so every correct heap pops the same sequence.
    """
    cdef Py_ssize_t hole = 0, child, parent, n
    cdef Entry last
    cdef Entry* d = h.data
    h.n -= 1
    n = h.n
    if n == 0:
        return
    last = d[n]
    child = 1
    while child < n:
        if child + 1 < n and entry_lt(&d[child + 1], &d[child]):
            child += 1
        d[hole] = d[child]
        hole = child
        child = 2 * hole + 1
    while hole > 0:
        parent = (hole - 1) >> 1
        if not entry_lt(&last, &d[parent]):
            break
        d[hole] = d[parent]
        hole = parent
    d[hole] = last


cdef inline void heap_heapify(Heap* h) noexcept:
    """Restores the heap order after entries were filtered out in place."""
    cdef Py_ssize_t start = h.n // 2 - 1, i, child
    cdef Entry item
    cdef Entry* d = h.data
    while start >= 0:
        i = start
        item = d[i]
        while True:
            child = 2 * i + 1
            if child >= h.n:
                break
            if child + 1 < h.n and entry_lt(&d[child + 1], &d[child]):
                child += 1
            if not entry_lt(&d[child], &item):
                break
            d[i] = d[child]
            i = child
        d[i] = item
        start -= 1
