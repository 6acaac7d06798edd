# A C media port on pjsua's conference bridge: what every port type here
# shares (fax.pyx's FaxSession, cng.pyx's FaxToneListener).
#
# A port type keeps a `BridgePort` in its C record and its conference slot
# beside it (the slot is the record's public face: FaxSession.slot,
# fax_memory's "is it on a call?").  `bridge_attach()` adds the port with the
# type's two frame callbacks; from then on the bridge's clock thread calls
# them every 20 ms without the GIL.  A callback that has news for Python
# writes its fields, publishes them with `sipacd_store_release()` and calls
# `bridge_notify()`; the asyncio loop watches that eventfd (`wait_published`
# in bridge_port.pyx) and reads the fields only after the matching
# `sipacd_load_acquire()`.

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
    pjmedia_port port      # what the bridge calls; port_data.pdata = the owner's record
    pj_pool_t *pool        # holds the bridge's record of the port; non-NULL while attached
    int notify_fd          # eventfd the loop watches; -1 = none


cdef inline void bridge_notify(BridgePort *bp) noexcept nogil:
    cdef unsigned long long one = 1
    if bp.notify_fd >= 0:
        write(bp.notify_fd, &one, sizeof(one))   # eventfd: never blocks (non-blocking, counter)


# Make `bp` detached with a fresh eventfd (the owner's record is zeroed
# memory, and `*slot` is where the owner keeps its conference slot).
cdef int bridge_open(BridgePort *bp, int *slot) except -1

# Add the port to the bridge (in the pjsua2 thread) and connect
# `call_slot` -> port, and port -> `call_slot` too when `transmit`.
# `name` must outlive the port (a C literal): the bridge keeps the pointer.
# `who` names the Python class in errors.  Sets and returns `*slot`.
cdef int bridge_attach(BridgePort *bp, int *slot, const char *name, char sig1, char sig2,
                       void *owner, frame_callback get_frame, frame_callback put_frame,
                       int call_slot, bint transmit, str who) except -1

# One more bridge connection (a recorder tapping the port's output).
cdef int bridge_connect(int source, int sink) except -1

# Take the port off the bridge; nothing if it is not on it.  After this
# returns the callbacks are not running and will not run again.
cdef int bridge_detach(BridgePort *bp, int *slot, str who) except -1

# Read the eventfd's counter (harmless when nothing is pending).
cdef int bridge_drain(BridgePort *bp) except -1

# Close the eventfd; a later bridge_notify() does nothing.
cdef int bridge_close(BridgePort *bp) except -1

# For __dealloc__: detach and close when that is safe from this thread and
# return True; False when the port is still on the bridge and this is not a
# pjsua thread: the bridge may still call into the record, which must then
# leak rather than be freed.
cdef bint bridge_dispose(BridgePort *bp, int *slot) noexcept
