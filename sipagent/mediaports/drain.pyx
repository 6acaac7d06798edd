# cython: language_level=3
"""Every call's received audio is read by the conference bridge from the
moment its media is active, whether or not anyone listens to it yet.

The bridge reads (calls get_frame on) only ports that have listeners.  A
call nobody listens to (a caller in the IVR or the queue, hearing prompts
and music; an agent leg before its bridge) still receives RTP, so its
jitter buffer fills to its ceiling (500 ms by default) and then discards
the oldest frame for each new one.  benchmarks/jbuf_probe.py showed it: an
unbridged caller's buffer held 50 frames and discarded 100 a second.
pjmedia throws that backlog away only on the stream's very first read (its
"soft start"); a call read once, then left unread (its agent hung up, it
went back to the IVR or another queue) and bridged again plays the stale
half second first, and progressive discard then trims it one frame at a
time.

So every active call is connected to the bridge's slot 0, the (null) sound
device, which discards what it is given: the jitter buffer is drained
every 20 ms like any listened-to port, its level stays at the few frames
the network needs, and a bridge, a whisper or a recording starts on fresh
audio.  The cost is one G.711 decode per call per tick, which a bridged
call pays anyway.  A C hook chained in front of pjsua2's own
``on_call_media_state`` does it, in pjsua's thread, for every call and
every media update (re-INVITE, unhold), with no Python per call.
"""

from sipagent.mediaports.pjmedia cimport *

cdef extern from *:
    """
    #include <pjsua-lib/pjsua_internal.h>

    static void (*sipacd_next_media_state)(pjsua_call_id);

    static void sipacd_drain_media_state(pjsua_call_id call_id)
    {
        pjsua_conf_port_id slot;
        if (sipacd_next_media_state)
            sipacd_next_media_state(call_id);
        slot = pjsua_call_get_conf_port(call_id);
        /* Already connected: pjmedia only updates the level. */
        if (slot != PJSUA_INVALID_ID && slot != 0)
            pjsua_conf_connect(slot, 0);
    }

    static void sipacd_drain_install(void)
    {
        SIPACD_CHAIN_PJSUA_CALLBACK(on_call_media_state, sipacd_drain_media_state,
                                    sipacd_next_media_state);
    }
    """
    void sipacd_drain_install()


def install():
    """Drain every call's audio from its media's start on (after libInit,
    in the pjsua2 thread)."""
    if not pj_thread_is_registered():
        raise RuntimeError("drain.install must run in the pjsua2 thread")
    sipacd_drain_install()
