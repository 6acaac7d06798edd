# cython: language_level=3
"""pjmedia's RTP receive thread, replaced by one that never naps for 500 ms.

pjsua receives every call's RTP on one thread of its media endpoint, which
loops ``pj_ioqueue_poll(ioqueue, 500 ms)``.  pjlib 2.12's epoll ioqueue has
a special case: when epoll reports events of which none can be dispatched
(typically a new call's RTP socket that is readable before its first read is
posted, or a socket being closed), it sleeps for the *whole poll timeout*.
For those 500 ms no RTP of any call in the process is read: the packets wait
in the sockets and then land in the jitter buffers at once, which fill to
their 500 ms ceiling and keep that delay; pjmedia's progressive discard then
trims it one 10 ms frame at a time, at most every 200 ms, for the next ten
seconds.  Measured (benchmarks/jbuf_probe.py): every call in the process
received nothing for 500 ms right after another call's media started; the
just-bridged legs went from 0 to 48-50 buffered frames (500 ms) at once.
Upstream lowered the media worker's timeout to 10 ms in 2.13 (pjproject
PR #3086); this module does the same from outside the build: it stops
pjmedia's worker and polls the media ioqueue itself, in C, with a 10 ms
timeout, so a dispatchless wake-up costs at most 10 ms.

Start it after libInit (in the pjsua2 thread), stop it before libDestroy.
"""

from sipagent.mediaports.pjmedia cimport pj_status_t, pj_strerror, pj_thread_is_registered, PJ_SUCCESS

cdef extern from *:
    """
    #include <pjsua-lib/pjsua.h>

    static int sipacd_rtp_quit;
    static pj_thread_t *sipacd_rtp_thread;
    static pj_pool_t *sipacd_rtp_pool;
    static pj_ioqueue_t *sipacd_rtp_ioqueue;
    static unsigned sipacd_rtp_msec;

    static int sipacd_rtp_main(void *arg)
    {
        (void)arg;
        while (!__atomic_load_n(&sipacd_rtp_quit, __ATOMIC_ACQUIRE)) {
            pj_time_val timeout = { 0, sipacd_rtp_msec };
            pj_ioqueue_poll(sipacd_rtp_ioqueue, &timeout);
        }
        return 0;
    }

    static pj_status_t sipacd_rtp_start(unsigned msec)
    {
        pjmedia_endpt *endpt = pjsua_get_pjmedia_endpt();
        pj_status_t st;
        if (sipacd_rtp_thread)
            return PJ_SUCCESS;
        if (!endpt)
            return PJ_EINVALIDOP;
        sipacd_rtp_ioqueue = pjmedia_endpt_get_ioqueue(endpt);
        /* Joins pjmedia's own worker(s); pjmedia_endpt_destroy later finds
           none to stop. */
        st = pjmedia_endpt_stop_threads(endpt);
        if (st != PJ_SUCCESS)
            return st;
        sipacd_rtp_pool = pjsua_pool_create("rtppoll", 512, 512);
        if (!sipacd_rtp_pool)
            return PJ_ENOMEM;
        sipacd_rtp_msec = msec;
        __atomic_store_n(&sipacd_rtp_quit, 0, __ATOMIC_RELEASE);
        st = pj_thread_create(sipacd_rtp_pool, "rtppoll", &sipacd_rtp_main, NULL,
                              0, 0, &sipacd_rtp_thread);
        if (st != PJ_SUCCESS) {
            sipacd_rtp_thread = NULL;
            pj_pool_release(sipacd_rtp_pool);
            sipacd_rtp_pool = NULL;
        }
        return st;
    }

    static void sipacd_rtp_stop(void)
    {
        if (!sipacd_rtp_thread)
            return;
        __atomic_store_n(&sipacd_rtp_quit, 1, __ATOMIC_RELEASE);
        pj_thread_join(sipacd_rtp_thread);
        pj_thread_destroy(sipacd_rtp_thread);
        sipacd_rtp_thread = NULL;
        pj_pool_release(sipacd_rtp_pool);
        sipacd_rtp_pool = NULL;
    }

    static int sipacd_rtp_running(void) { return sipacd_rtp_thread != NULL; }
    """
    pj_status_t sipacd_rtp_start(unsigned msec) nogil
    void sipacd_rtp_stop() nogil
    int sipacd_rtp_running()


def start(unsigned msec=10):
    """Replace pjmedia's RTP worker by ours (after libInit, in the pjsua2
    thread); again does nothing."""
    cdef pj_status_t st
    cdef char buf[160]
    if not pj_thread_is_registered():
        raise RuntimeError("rtp_poller.start must run in the pjsua2 thread")
    st = sipacd_rtp_start(msec)
    if st != PJ_SUCCESS:
        pj_strerror(st, buf, sizeof(buf))
        raise RuntimeError(f"cannot start the RTP poller: {buf.decode('utf-8', 'replace')} ({st})")


def stop():
    """Join our RTP thread (before libDestroy); nothing if not running."""
    with nogil:
        sipacd_rtp_stop()


def running():
    return bool(sipacd_rtp_running())
