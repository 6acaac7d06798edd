# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Two fax terminals back to back in memory: no SIP, no clock, as fast as
the CPU allows.  The reference the SIP path is judged against, a benchmark
of the modem itself, and a way to reproduce line damage (slipped samples)
deterministically."""

from libc.stdint cimport int16_t
from libc.string cimport memmove

from sipagent.mediaports.spandsp cimport alaw_to_linear, linear_to_alaw, ulaw_to_linear, linear_to_ulaw
from sipagent.mediaports.pjmedia cimport PJSUA_INVALID_ID
from sipagent.mediaports.fax cimport (FaxLine, FaxSession, line_rx, line_tx, sipacd_load_acquire,
                                      CLOCK_RATE, FRAME)


cdef inline void _g711(int16_t *amp, int n, int law) noexcept nogil:
    cdef int i
    if law == 1:
        for i in range(n):
            amp[i] = alaw_to_linear(linear_to_alaw(amp[i]))
    elif law == 2:
        for i in range(n):
            amp[i] = ulaw_to_linear(linear_to_ulaw(amp[i]))


def transfer_in_memory(FaxSession a, FaxSession b, *, double max_seconds=600.0,
                       str codec="alaw", int splice_every=0, int splice_len=0):
    """Run two sessions against each other, 20 ms at a time, as fast as the
    CPU allows.  `codec` ("alaw", "ulaw" or None) passes each direction
    through G.711 as a call would.  `splice_every`/`splice_len` cut
    `splice_len` samples out of both directions every `splice_every` samples,
    the damage seen on audio crossing processes (see tests).  Returns the
    seconds of line audio exchanged."""
    cdef FaxLine *la = a.live_line()
    cdef FaxLine *lb = b.live_line()
    if la.bridge.slot != PJSUA_INVALID_ID or lb.bridge.slot != PJSUA_INVALID_ID:
        raise RuntimeError("a session attached to a call cannot also run in memory")
    cdef int law = {"alaw": 1, "ulaw": 2, None: 0}[codec]
    cdef long long limit = <long long>(max_seconds * CLOCK_RATE)
    cdef long long t = 0, next_splice = splice_every if splice_every > 0 else -1
    cdef int16_t ab[FRAME]
    cdef int16_t ba[FRAME]
    cdef int n
    if splice_len < 0 or splice_len >= FRAME:
        raise ValueError("splice_len must be in 0..159")
    with nogil:
        while t < limit:
            line_tx(la, ab, FRAME)
            line_tx(lb, ba, FRAME)
            _g711(ab, FRAME, law)
            _g711(ba, FRAME, law)
            n = FRAME
            if next_splice >= 0 and t >= next_splice:
                # Drop a slice from the middle of the frame, both directions.
                memmove(&ab[FRAME // 2], &ab[FRAME // 2 + splice_len],
                        (FRAME // 2 - splice_len) * sizeof(int16_t))
                memmove(&ba[FRAME // 2], &ba[FRAME // 2 + splice_len],
                        (FRAME // 2 - splice_len) * sizeof(int16_t))
                n = FRAME - splice_len
                next_splice += splice_every
            line_rx(lb, ab, n)
            line_rx(la, ba, n)
            t += FRAME
            if sipacd_load_acquire(&la.done) and sipacd_load_acquire(&lb.done):
                break
    return t / <double>CLOCK_RATE
