# cython: language_level=3
"""Real-time scheduling (SCHED_RR) for the two threads that carry every
call's audio: the conference bridge's clock and the RTP poller.

Why: under CPU contention the engine's media threads are ordinary threads
that the kernel's fair scheduler treats like any other, and the clock
thread, which does a whole tick's work for hundreds of ports at once, is
the one most often preempted half-way.  A late tick sends a burst of
frames, the far ends' jitter buffers grow, and pjmedia's progressive
discard takes seconds to trim them back: benchmarks/mouth_to_ear.py under
the load benchmark's traffic showed delay spikes of 200-500 ms on the
engine's path that the direct path did not have.  Both threads sleep most
of each 20 ms, so a real-time class costs the rest of the process nothing
but a place in the queue.

How: pjmedia's clock thread is pjsua's own (the null sound device's
master port); nothing hands out its handle.  So a silent port is added to
the bridge: the bridge calls its put_frame from the clock thread on every
tick (a heart-beat frame, as to every port nobody transmits to), and the
first call switches that thread to SCHED_RR.  The RTP poller
(rtp_poller.pyx) switches itself when told to.  Without the privilege
(CAP_SYS_NICE or an RLIMIT_RTPRIO) the switch fails and nothing changes:
`status()` says so.
"""

from sipagent.mediaports.pjmedia cimport *
from sipagent.mediaports import rtp_poller

cdef extern from *:
    """
    #include <pthread.h>
    #include <sched.h>
    #include <errno.h>
    #include <pjsua-lib/pjsua.h>

    static int sipacd_rt_prio;
    /* -1: not tried yet; else 0 or the errno of pthread_setschedparam. */
    static volatile int sipacd_rt_clock_result = -1;
    static pjmedia_port sipacd_rt_port;
    static pj_pool_t *sipacd_rt_pool;
    static int sipacd_rt_slot = -1;

    static pj_status_t sipacd_rt_put_frame(pjmedia_port *port, pjmedia_frame *frame)
    {
        (void)port; (void)frame;
        if (sipacd_rt_clock_result < 0) {
            struct sched_param sp;
            sp.sched_priority = sipacd_rt_prio;
            sipacd_rt_clock_result = pthread_setschedparam(pthread_self(), SCHED_RR, &sp);
        }
        return PJ_SUCCESS;
    }

    static pj_status_t sipacd_rt_get_frame(pjmedia_port *port, pjmedia_frame *frame)
    {
        (void)port;
        frame->type = PJMEDIA_FRAME_TYPE_NONE;
        frame->size = 0;
        return PJ_SUCCESS;
    }

    static pj_status_t sipacd_rt_install(int prio, unsigned clock_rate, unsigned spf)
    {
        pj_str_t name = pj_str("rt-prio");
        if (sipacd_rt_slot >= 0)
            return PJ_SUCCESS;
        sipacd_rt_prio = prio;
        sipacd_rt_pool = pjsua_pool_create("rtprio", 256, 256);
        if (!sipacd_rt_pool)
            return PJ_ENOMEM;
        pj_bzero(&sipacd_rt_port, sizeof(sipacd_rt_port));
        pjmedia_port_info_init(&sipacd_rt_port.info, &name, PJMEDIA_SIG_CLASS_PORT_AUD('R', 'T'),
                               clock_rate, 1, 16, spf);
        sipacd_rt_port.put_frame = &sipacd_rt_put_frame;
        sipacd_rt_port.get_frame = &sipacd_rt_get_frame;
        return pjsua_conf_add_port(sipacd_rt_pool, &sipacd_rt_port, &sipacd_rt_slot);
    }

    static void sipacd_rt_uninstall(void)
    {
        if (sipacd_rt_slot >= 0)
            pjsua_conf_remove_port(sipacd_rt_slot);
        sipacd_rt_slot = -1;
        if (sipacd_rt_pool)
            pj_pool_release(sipacd_rt_pool);
        sipacd_rt_pool = NULL;
        sipacd_rt_clock_result = -1;
    }
    """
    pj_status_t sipacd_rt_install(int prio, unsigned clock_rate, unsigned spf)
    void sipacd_rt_uninstall()
    int sipacd_rt_clock_result
    int sipacd_rt_slot


def install(int priority=10, unsigned clock_rate=8000, unsigned ptime_ms=20):
    """Ask for SCHED_RR at `priority` (1-99) for the bridge's clock thread
    (from its next tick) and the RTP poller; in the pjsua2 thread, after
    the sound device is set.  Again: nothing."""
    cdef char buf[160]
    if not 1 <= priority <= 99:
        raise ValueError(f"real-time priority must be 1..99, not {priority}")
    if not pj_thread_is_registered():
        raise RuntimeError("media_priority.install must run in the pjsua2 thread")
    cdef pj_status_t st = sipacd_rt_install(priority, clock_rate, clock_rate * ptime_ms // 1000)
    if st != PJ_SUCCESS:
        pj_strerror(st, buf, sizeof(buf))
        raise RuntimeError(f"cannot add the priority port: {buf.decode('utf-8', 'replace')}")
    rtp_poller.set_priority(priority)


def uninstall():
    """Remove the port (before libDestroy); the threads keep their class."""
    if not pj_thread_is_registered():
        raise RuntimeError("media_priority.uninstall must run in the pjsua2 thread")
    sipacd_rt_uninstall()
    rtp_poller.set_priority(0)


def status() -> dict:
    """What each thread got: "rt" (switched), "pending" (not tried yet) or
    the error (e.g. "Operation not permitted" without the privilege)."""
    import os

    def word(int result):
        if result < 0:
            return "pending"
        return "rt" if result == 0 else os.strerror(result)

    return {"clock": word(sipacd_rt_clock_result) if sipacd_rt_slot >= 0 else "off",
            "rtp_poller": word(rtp_poller.priority_result())}
