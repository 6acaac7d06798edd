# A C media port on pjsua's conference bridge: what every port type here
# shares (fax.pyx's FaxSession, cng.pyx's FaxToneListener), in two parts.
#
# The C side: a port type's C record starts with a `BridgePort` (the
# pjmedia_port the bridge calls, the port's pool, conference slot and
# eventfd), so a pointer to the record is one to its BridgePort, as
# pjmedia's own ports start with their pjmedia_port.  From attach() on, the
# bridge's clock thread calls the type's two frame callbacks every 20 ms
# without the GIL.  A callback that has news for Python writes its fields,
# publishes them with `sipacd_store_release()` and calls `bridge_notify()`;
# the asyncio loop watches that eventfd (`wait_published` in
# bridge_port.pyx) and reads the fields only after the matching
# `sipacd_load_acquire()`.
#
# The Python side: `MediaPort`, the base class of the port types.  It owns
# the record from `own()` on and gives them one lifecycle: attach/detach,
# slot, fileno/drain, an idempotent close(), a __dealloc__ that is safe from
# any thread, and `with`.  A type only frees its C library's state, in
# `free_state()`.

from posix.unistd cimport write

from sipagent.mediaports.pjmedia cimport pjmedia_port, pjmedia_frame, pj_pool_t, pj_status_t

cdef extern from *:
    """
    /* The bridge thread publishes, the Python thread consumes. */
    static inline void sipacd_store_release(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int sipacd_load_acquire(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void sipacd_add_relaxed(long long *p, long long v) { __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
    static inline long long sipacd_load_relaxed(long long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    """
    void sipacd_store_release(int *p, int v) nogil
    int sipacd_load_acquire(int *p) nogil
    void sipacd_add_relaxed(long long *p, long long v) nogil
    long long sipacd_load_relaxed(long long *p) nogil

cdef enum:
    CLOCK_RATE = 8000      # the bridge's clock (sipagent configures 8 kHz)
    FRAME = 160            # 20 ms at 8 kHz: the bridge's frame

ctypedef pj_status_t (*frame_callback)(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil

cdef struct BridgePort:
    pjmedia_port port      # what the bridge calls; port_data.pdata = the record
    pj_pool_t *pool        # holds the bridge's record of the port; non-NULL while attached
    int slot               # on the conference bridge; PJSUA_INVALID_ID = not attached
    int notify_fd          # eventfd the loop watches; -1 = none


cdef inline void bridge_notify(BridgePort *bp) noexcept nogil:
    cdef unsigned long long one = 1
    if bp.notify_fd >= 0:
        write(bp.notify_fd, &one, sizeof(one))   # eventfd: never blocks (non-blocking, counter)


# One more bridge connection (a recorder tapping the port's output).
cdef int bridge_connect(int source, int sink) except -1


cdef class MediaPort:
    # The port type's C record (calloc'd, a BridgePort first); NULL = closed.
    cdef BridgePort *bridge
    cdef str who           # the Python class, in errors

    # Take ownership of `record` (zeroed memory whose port-type state is
    # set up) and give it an eventfd; from here on close() and __dealloc__
    # free it.
    cdef int own(self, BridgePort *record, str who) except -1

    # The record, or RuntimeError once closed.
    cdef BridgePort *live(self) except NULL

    # Add the port to the bridge (in the pjsua2 thread) and connect
    # `call_slot` -> port, and port -> `call_slot` too when `transmit`.
    # `name` must outlive the port (a C literal): the bridge keeps the
    # pointer.  Returns the port's slot.
    cdef int attach_port(self, const char *name, char sig1, char sig2,
                         frame_callback get_frame, frame_callback put_frame,
                         int call_slot, bint transmit) except -1

    # Free the port type's C library state (not the record).  Runs once,
    # off the bridge: from close() after detach and with the eventfd closed
    # (a notify then does nothing), or from __dealloc__.
    cdef void free_state(self) noexcept
