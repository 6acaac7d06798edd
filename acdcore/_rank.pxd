# FIFO rank index: position of a call among the calls of one (queue,
# priority), in O(log n).  Calls of one priority are ordered by arrival, so a
# call is a slot number ``seq`` and its rank is a prefix count over a Fenwick
# tree.  The tree covers a window [base, base + cap) of slots; when arrivals
# run past it the window is rebuilt around the live slots (amortised O(1)).
from libc.stdlib cimport calloc, free


cdef struct Rank:
    long long base      # slot number of tree index 1
    long long next      # slot number of the next arrival
    Py_ssize_t cap
    Py_ssize_t count
    int* tree           # Fenwick, 1-based, cap + 1 ints
    int* calls          # call index per slot, -1 when empty


cdef inline int rank_init(Rank* r, Py_ssize_t cap) except -1:
    r.base = 0
    r.next = 0
    r.cap = cap
    r.count = 0
    r.tree = <int*>calloc(cap + 1, sizeof(int))
    r.calls = <int*>calloc(cap, sizeof(int))
    if r.tree == NULL or r.calls == NULL:
        raise MemoryError()
    cdef Py_ssize_t i
    for i in range(cap):
        r.calls[i] = -1
    return 0


cdef inline void rank_free(Rank* r) noexcept:
    free(r.tree)
    free(r.calls)
    r.tree = NULL
    r.calls = NULL


cdef inline void _rank_add(Rank* r, Py_ssize_t i, int delta) noexcept:
    i += 1
    while i <= r.cap:
        r.tree[i] += delta
        i += i & (-i)


cdef inline Py_ssize_t rank_prefix(Rank* r, long long slot) noexcept:
    """Live slots strictly before ``slot``."""
    cdef Py_ssize_t i = <Py_ssize_t>(slot - r.base), total = 0
    if i > r.cap:
        i = r.cap
    while i > 0:
        total += r.tree[i]
        i -= i & (-i)
    return total


cdef inline long long rank_first(Rank* r) noexcept:
    """Slot of the oldest live call, or -1."""
    cdef Py_ssize_t pos = 0, step = 1, rem = 1
    if r.count == 0:
        return -1
    while step * 2 <= r.cap:
        step *= 2
    while step > 0:
        if pos + step <= r.cap and r.tree[pos + step] < rem:
            pos += step
            rem -= r.tree[pos]
        step >>= 1
    return r.base + pos


cdef inline int _rank_rebuild(Rank* r) except -1:
    cdef long long first = rank_first(r)
    cdef long long new_base = first if first >= 0 else r.next
    cdef Py_ssize_t live_span = <Py_ssize_t>(r.next - new_base) + 1
    cdef Py_ssize_t new_cap = r.cap
    while new_cap < 2 * live_span:
        new_cap *= 2
    cdef int* old_calls = r.calls
    cdef Py_ssize_t old_cap = r.cap, i
    cdef long long old_base = r.base
    free(r.tree)
    r.tree = <int*>calloc(new_cap + 1, sizeof(int))
    r.calls = <int*>calloc(new_cap, sizeof(int))
    if r.tree == NULL or r.calls == NULL:
        raise MemoryError()
    r.cap = new_cap
    r.base = new_base
    for i in range(new_cap):
        r.calls[i] = -1
    for i in range(old_cap):
        if old_calls[i] >= 0:
            r.calls[old_base + i - new_base] = old_calls[i]
            _rank_add(r, <Py_ssize_t>(old_base + i - new_base), 1)
    free(old_calls)
    return 0


cdef inline long long rank_push(Rank* r, int call) except -2:
    if r.next - r.base >= r.cap:
        _rank_rebuild(r)
    cdef long long slot = r.next
    r.next += 1
    r.calls[slot - r.base] = call
    _rank_add(r, <Py_ssize_t>(slot - r.base), 1)
    r.count += 1
    return slot


cdef inline void rank_remove(Rank* r, long long slot) noexcept:
    r.calls[slot - r.base] = -1
    _rank_add(r, <Py_ssize_t>(slot - r.base), -1)
    r.count -= 1
