# cython: language_level=3
"""A C media port's life on pjsua's conference bridge, shared by every port
type in this package (see bridge_port.pxd for the contract): the bridge
plumbing in C, and `MediaPort`, the base class that gives each port type
the same attach/detach/close lifecycle.

All of it runs in the pjsua2 thread (the asyncio loop's), except
`bridge_notify()`, which the bridge's clock thread calls, and __dealloc__,
which runs wherever the last reference goes.
"""

import asyncio
import os

from libc.stdlib cimport free
from posix.unistd cimport close

from sipagent.mediaports.pjmedia cimport *


cdef str _pj_error(pj_status_t st):
    cdef char buf[160]
    pj_strerror(st, buf, sizeof(buf))
    return f"{buf.decode('utf-8', 'replace')} ({st})"


cdef int _in_pjsua_thread(str what) except -1:
    if not pj_thread_is_registered():
        raise RuntimeError(f"{what} must run in the pjsua2 thread")
    return 0


cdef int bridge_connect(int source, int sink) except -1:
    cdef pj_status_t st = pjsua_conf_connect(source, sink)
    if st != PJ_SUCCESS:
        raise RuntimeError(f"pjsua_conf_connect {source}->{sink}: {_pj_error(st)}")
    return 0


cdef int _detach(BridgePort *bp, str who) except -1:
    if bp.slot == PJSUA_INVALID_ID:
        return 0
    _in_pjsua_thread(f"{who}.detach")
    # Removal takes the bridge's mutex, which its clock thread holds for a
    # whole tick: after this returns the callbacks are not running and will
    # not run again, so the pool (holding the bridge's record of the port)
    # may go.
    pjsua_conf_remove_port(bp.slot)
    bp.slot = PJSUA_INVALID_ID
    pj_pool_release(bp.pool)
    bp.pool = NULL
    return 0


cdef int _drain(int fd) except -1:
    try:
        os.read(fd, 8)
    except BlockingIOError:
        pass
    return 0


cdef class MediaPort:
    """A C port for the conference bridge, as Python sees it (the base of
    FaxSession and FaxToneListener).  Use it in a ``with`` block or close()
    it, before the call's Call object is released."""

    def __cinit__(self):
        self.bridge = NULL

    cdef int own(self, BridgePort *record, str who) except -1:
        record.pool = NULL
        record.slot = PJSUA_INVALID_ID
        record.notify_fd = -1
        self.who = who
        self.bridge = record
        record.notify_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return 0

    cdef BridgePort *live(self) except NULL:
        if self.bridge == NULL:
            raise RuntimeError(f"{self.who} is closed")
        return self.bridge

    cdef void free_state(self) noexcept:
        pass

    # --- the conference bridge ----------------------------------------------

    cdef int attach_port(self, const char *name, char sig1, char sig2,
                         frame_callback get_frame, frame_callback put_frame,
                         int call_slot, bint transmit) except -1:
        cdef BridgePort *bp = self.live()
        cdef pj_status_t st
        cdef pj_str_t pj_name
        if bp.slot != PJSUA_INVALID_ID:
            raise RuntimeError(f"{name.decode('ascii')} port is already attached")
        _in_pjsua_thread(f"{self.who}.attach")
        bp.pool = pjsua_pool_create(name, 1024, 1024)
        if bp.pool == NULL:
            raise MemoryError("pjsua_pool_create")
        pj_name = pj_str(<char *>name)
        pjmedia_port_info_init(&bp.port.info, &pj_name, PJMEDIA_SIG_CLASS_PORT_AUD(sig1, sig2),
                               CLOCK_RATE, 1, 16, FRAME)
        bp.port.port_data.pdata = bp
        bp.port.get_frame = get_frame
        bp.port.put_frame = put_frame
        bp.port.on_destroy = NULL
        st = pjsua_conf_add_port(bp.pool, &bp.port, &bp.slot)
        if st != PJ_SUCCESS:
            pj_pool_release(bp.pool)
            bp.pool = NULL
            bp.slot = PJSUA_INVALID_ID
            raise RuntimeError(f"pjsua_conf_add_port: {_pj_error(st)}")
        try:
            bridge_connect(call_slot, bp.slot)
            if transmit:
                bridge_connect(bp.slot, call_slot)
        except BaseException:
            _detach(bp, self.who)
            raise
        return bp.slot

    def detach(self):
        """Take the port off the bridge (then no callback runs any more);
        nothing if it is not on it."""
        if self.bridge != NULL:
            _detach(self.bridge, self.who)

    @property
    def slot(self):
        """The port's conference slot while attached, else None."""
        return None if self.bridge == NULL or self.bridge.slot == PJSUA_INVALID_ID else self.bridge.slot

    # --- the eventfd ---------------------------------------------------------

    def fileno(self):
        """The eventfd that becomes readable when the bridge thread published
        news (what news depends on the port type)."""
        return self.live().notify_fd

    def drain(self):
        """Reset the eventfd (read its counter); harmless when nothing is pending."""
        _drain(self.live().notify_fd)

    # --- lifetime ------------------------------------------------------------

    def close(self):
        """Detach, close the eventfd and free the C state; again does nothing.
        A wait() must be over by then."""
        cdef BridgePort *bp = self.bridge
        cdef int fd
        if bp == NULL:
            return
        self.detach()
        fd = bp.notify_fd
        bp.notify_fd = -1
        if fd >= 0:
            os.close(fd)
        self.free_state()
        self.bridge = NULL
        free(bp)

    def __dealloc__(self):
        cdef BridgePort *bp = self.bridge
        if bp == NULL:
            return
        if bp.slot != PJSUA_INVALID_ID:
            if not pj_thread_is_registered():
                # We may not touch pjsua from this thread, and the bridge may
                # still be calling into the record: leaking is the only safe choice.
                return
            pjsua_conf_remove_port(bp.slot)
            bp.slot = PJSUA_INVALID_ID
            pj_pool_release(bp.pool)
            bp.pool = NULL
        if bp.notify_fd >= 0:
            close(bp.notify_fd)
            bp.notify_fd = -1
        self.free_state()
        free(bp)
        self.bridge = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def wait_published(int fd, poll, timeout=None):
    """Await the first non-None `poll()`, asked again whenever the port's
    eventfd `fd` becomes readable (the bridge thread published something).
    Raises TimeoutError after `timeout` seconds.  The reader is removed
    before this returns, so the port may be closed afterwards."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def readable():
        _drain(fd)
        r = poll()
        if r is not None and not fut.done():
            fut.set_result(r)

    loop.add_reader(fd, readable)
    try:
        readable()
        return await asyncio.wait_for(fut, timeout)
    finally:
        loop.remove_reader(fd)
