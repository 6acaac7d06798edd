# cython: language_level=3
"""The jitter buffer's frame-discard policy: for the whole process, or per call.

pjmedia's default (progressive discard) drops a 10 ms codec frame whenever
the buffer holds more than its measured burst level.  Between two processes,
whose media clocks tick with scheduling jitter, that happens several times a
second: inaudible in speech, fatal for a fax modem.  pjsua2 2.12.1 cannot set
the policy (SWIG wraps the enum as an opaque type), so this module goes one
level down:

- `set_discard()` changes pjsua's live media configuration, which every
  stream created later copies: the whole process.
- `set_call_discard()` chains a C hook in front of pjsua2's own
  ``on_stream_precreate`` callback and overrides the policy for the streams
  of one call id: fax calls go without discard, voice keeps pjmedia's
  latency trimming.  Set it before the call's media exists (before answer(),
  right after makeCall()); pjsua keeps an unchanged stream across
  re-INVITEs, so a call that becomes a fax later keeps its policy.  Clear it
  when the call ends: pjsua reuses call ids.

Per-call prefetch (jbInit/jbMinPre/jbMaxPre/jbMax) is settable from pjsua2's
onStreamPreCreate in Python; see sipagent/sip/fax_media.py.
"""

from sipagent.mediaports.pjmedia cimport *

cdef extern from *:
    """
    #include <pjsua-lib/pjsua_internal.h>

    /* 0 = leave the call alone, else the algorithm + 1. */
    static signed char sipacd_call_discard[PJSUA_MAX_CALLS];
    static void (*sipacd_next_precreate)(pjsua_call_id, pjsua_on_stream_precreate_param *);

    /* Runs in pjsua's thread (mainThreadOnly: the asyncio loop's), like the
       Python calls that fill the table: no lock needed. */
    static void sipacd_precreate(pjsua_call_id call_id, pjsua_on_stream_precreate_param *prm)
    {
        if (sipacd_next_precreate)
            sipacd_next_precreate(call_id, prm);
        if (call_id >= 0 && call_id < PJSUA_MAX_CALLS && sipacd_call_discard[call_id] > 0
            && prm->stream_info.type == PJMEDIA_TYPE_AUDIO)
            prm->stream_info.info.aud.jb_discard_algo =
                (pjmedia_jb_discard_algo)(sipacd_call_discard[call_id] - 1);
    }

    static void sipacd_install_precreate_hook(void)
    {
        SIPACD_CHAIN_PJSUA_CALLBACK(on_stream_precreate, sipacd_precreate,
                                    sipacd_next_precreate);
    }
    """
    int PJSUA_MAX_CALLS
    signed char sipacd_call_discard[1]
    void sipacd_install_precreate_hook()

ALGORITHMS = {"none": PJMEDIA_JB_DISCARD_NONE, "static": PJMEDIA_JB_DISCARD_STATIC,
              "progressive": PJMEDIA_JB_DISCARD_PROGRESSIVE}
_NAMES = {v: k for k, v in ALGORITHMS.items()}


def _check(str algorithm, str what):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"jitter discard must be one of {sorted(ALGORITHMS)}, not {algorithm!r}")
    if not pj_thread_is_registered():
        raise RuntimeError(f"{what} must run in the pjsua2 thread")


def set_discard(str algorithm):
    """"none", "static" or "progressive" (pjmedia's default) for every
    stream created from now on (after libInit)."""
    _check(algorithm, "set_discard")
    pjsua_get_var().media_cfg.jb_discard_algo = ALGORITHMS[algorithm]


def get_discard():
    """The process-wide policy."""
    if not pj_thread_is_registered():
        raise RuntimeError("get_discard must run in the pjsua2 thread")
    cdef int algo = pjsua_get_var().media_cfg.jb_discard_algo
    return _NAMES.get(algo, str(algo))


def set_call_discard(int call_id, str algorithm):
    """Override the policy for the audio streams of `call_id` (pjsua2's
    ``Call.getId()``) created from now on."""
    _check(algorithm, "set_call_discard")
    if not 0 <= call_id < PJSUA_MAX_CALLS:
        raise ValueError(f"call id {call_id} outside 0..{PJSUA_MAX_CALLS - 1}")
    sipacd_install_precreate_hook()
    sipacd_call_discard[call_id] = ALGORITHMS[algorithm] + 1


def clear_call(int call_id):
    """Back to the process-wide policy (when the call has ended)."""
    if 0 <= call_id < PJSUA_MAX_CALLS:
        sipacd_call_discard[call_id] = 0


def call_discard(int call_id):
    """The override for `call_id`, or None."""
    if not 0 <= call_id < PJSUA_MAX_CALLS or sipacd_call_discard[call_id] == 0:
        return None
    return _NAMES[sipacd_call_discard[call_id] - 1]


cdef extern from "pjsua-lib/pjsua.h" nogil:
    ctypedef struct _aud_stream_info "pjmedia_stream_info":
        pjmedia_jb_discard_algo jb_discard_algo
    ctypedef struct _stream_info_union:
        _aud_stream_info aud
    ctypedef struct _pjsua_stream_info "pjsua_stream_info":
        _stream_info_union info
    pj_status_t pjsua_call_get_stream_info(int call_id, unsigned med_idx, _pjsua_stream_info *psi)


def stream_discard(int call_id, unsigned med_idx):
    """The policy the call's live audio stream `med_idx` actually uses."""
    cdef _pjsua_stream_info psi
    if not pj_thread_is_registered():
        raise RuntimeError("stream_discard must run in the pjsua2 thread")
    if pjsua_call_get_stream_info(call_id, med_idx, &psi) != PJ_SUCCESS:
        return None
    return _NAMES.get(psi.info.aud.jb_discard_algo, str(psi.info.aud.jb_discard_algo))
