# The fax line shared by fax.pyx (the pjmedia port and FaxSession) and
# fax_memory.pyx (two sessions back to back without SIP).

from libc.stdint cimport int16_t

from sipagent.mediaports.spandsp cimport fax_state_t, t30_state_t, t30_stats_t
from sipagent.mediaports.pjmedia cimport pjmedia_port, pj_pool_t

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
    CLOCK_RATE = 8000
    FRAME = 160            # 20 ms at 8 kHz: the bridge's frame
    IDENT_MAX = 21         # T30_MAX_IDENT_LEN + 1

cdef struct FaxLine:
    fax_state_t *fax
    t30_state_t *t30
    bint sending
    int notify_fd                 # eventfd the loop watches; -1 = none
    # written by the bridge thread only
    int done                      # published last (release store)
    int completion_code
    int phase_b_result
    int phase_b_count
    int phase_d_count
    int pages_so_far              # at the last phase D (progress)
    long long samples_rx          # line audio heard so far (also the T.30 clock)
    long long samples_at_done
    double first_frame_at         # CLOCK_MONOTONIC seconds
    double done_at
    t30_stats_t stats
    char remote_ident[IDENT_MAX]
    # pjmedia side
    pjmedia_port port
    pj_pool_t *pool
    int slot
    int call_slot
    int16_t silence[FRAME]


# Feed `n` received samples to the modem / fill `n` samples it sends
# (silence when it has nothing): the same two calls the bridge thread makes.
cdef void line_rx(FaxLine *line, int16_t *amp, int n) noexcept nogil
cdef void line_tx(FaxLine *line, int16_t *amp, int n) noexcept nogil


cdef class FaxSession:
    cdef FaxLine *line
    cdef readonly str mode
    cdef readonly str tiff
    cdef readonly str ident
    cdef readonly bint calling
    cdef bytes _tiff_b, _ident_b, _header_b
    cdef FaxLine *_live(self) except NULL
