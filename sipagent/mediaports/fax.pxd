# The fax line shared by fax.pyx (the pjmedia port and FaxSession) and
# fax_memory.pyx (two sessions back to back without SIP).

from libc.stdint cimport int16_t

from sipagent.mediaports.spandsp cimport fax_state_t, t30_state_t, t30_stats_t
# sipacd_load_acquire, CLOCK_RATE and FRAME are also fax_memory.pyx's, from here.
from sipagent.mediaports.bridge_port cimport BridgePort, MediaPort, sipacd_load_acquire, CLOCK_RATE, FRAME

cdef enum:
    IDENT_MAX = 21         # T30_MAX_IDENT_LEN + 1

cdef struct FaxLine:
    BridgePort bridge             # first: the port, its pool, slot and eventfd (bridge_port.pxd)
    fax_state_t *fax
    t30_state_t *t30
    bint sending
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
    int16_t silence[FRAME]


# Feed `n` received samples to the modem / fill `n` samples it sends
# (silence when it has nothing): the same two calls the bridge thread makes.
cdef void line_rx(FaxLine *line, int16_t *amp, int n) noexcept nogil
cdef void line_tx(FaxLine *line, int16_t *amp, int n) noexcept nogil


cdef class FaxSession(MediaPort):
    cdef readonly str mode
    cdef readonly str tiff
    cdef readonly str ident
    cdef readonly bint calling
    cdef bytes _tiff_b, _ident_b, _header_b
    # The line, or RuntimeError once closed.
    cdef FaxLine *live_line(self) except NULL
