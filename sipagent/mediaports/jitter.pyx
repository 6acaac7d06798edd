# cython: language_level=3
"""The jitter buffer's frame-discard policy for calls created from now on.

pjmedia's default (progressive discard) drops a 10 ms codec frame whenever
the buffer holds more than its measured burst level.  Between two processes,
whose media clocks tick with scheduling jitter, that happens several times a
second: inaudible in speech, fatal for a fax modem.  pjsua2 2.12.1 cannot set
the policy (SWIG wraps the enum as an opaque type), so this module sets pjsua's
live media configuration, which each new stream copies.  Per-call prefetch
(jbInit/jbMinPre/jbMaxPre/jbMax) is set in pjsua2's onStreamPreCreate.
"""

from sipagent.mediaports.pjmedia cimport *

ALGORITHMS = {"none": PJMEDIA_JB_DISCARD_NONE, "static": PJMEDIA_JB_DISCARD_STATIC,
              "progressive": PJMEDIA_JB_DISCARD_PROGRESSIVE}


def set_discard(str algorithm):
    """"none", "static" or "progressive" (pjmedia's default); after libInit,
    from the thread that runs pjsua2; applies to streams created later."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"jitter discard must be one of {sorted(ALGORITHMS)}, not {algorithm!r}")
    if not pj_thread_is_registered():
        raise RuntimeError("set_discard must run in the pjsua2 thread")
    cdef pjsua_data *var = pjsua_get_var()
    var.media_cfg.jb_discard_algo = ALGORITHMS[algorithm]


def get_discard():
    if not pj_thread_is_registered():
        raise RuntimeError("get_discard must run in the pjsua2 thread")
    cdef int algo = pjsua_get_var().media_cfg.jb_discard_algo
    return {v: k for k, v in ALGORITHMS.items()}.get(algo, str(algo))
