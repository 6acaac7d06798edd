# cython: language_level=3
"""A C media port's life on pjsua's conference bridge, shared by every port
type in this package (see bridge_port.pxd for the contract).

All of it runs in the pjsua2 thread (the asyncio loop's), except
`bridge_notify()`, which the bridge's clock thread calls.
"""

import asyncio
import os

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


cdef int bridge_open(BridgePort *bp, int *slot) except -1:
    bp.pool = NULL
    bp.notify_fd = -1
    slot[0] = PJSUA_INVALID_ID
    bp.notify_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    return 0


cdef int bridge_attach(BridgePort *bp, int *slot, const char *name, char sig1, char sig2,
                       void *owner, frame_callback get_frame, frame_callback put_frame,
                       int call_slot, bint transmit, str who) except -1:
    cdef pj_status_t st
    cdef pj_str_t pj_name
    if slot[0] != PJSUA_INVALID_ID:
        raise RuntimeError(f"{name.decode('ascii')} port is already attached")
    _in_pjsua_thread(f"{who}.attach")
    bp.pool = pjsua_pool_create(name, 1024, 1024)
    if bp.pool == NULL:
        raise MemoryError("pjsua_pool_create")
    pj_name = pj_str(<char *>name)
    pjmedia_port_info_init(&bp.port.info, &pj_name, PJMEDIA_SIG_CLASS_PORT_AUD(sig1, sig2),
                           CLOCK_RATE, 1, 16, FRAME)
    bp.port.port_data.pdata = owner
    bp.port.get_frame = get_frame
    bp.port.put_frame = put_frame
    bp.port.on_destroy = NULL
    st = pjsua_conf_add_port(bp.pool, &bp.port, slot)
    if st != PJ_SUCCESS:
        pj_pool_release(bp.pool)
        bp.pool = NULL
        slot[0] = PJSUA_INVALID_ID
        raise RuntimeError(f"pjsua_conf_add_port: {_pj_error(st)}")
    try:
        bridge_connect(call_slot, slot[0])
        if transmit:
            bridge_connect(slot[0], call_slot)
    except BaseException:
        bridge_detach(bp, slot, who)
        raise
    return slot[0]


cdef int bridge_connect(int source, int sink) except -1:
    cdef pj_status_t st = pjsua_conf_connect(source, sink)
    if st != PJ_SUCCESS:
        raise RuntimeError(f"pjsua_conf_connect {source}->{sink}: {_pj_error(st)}")
    return 0


cdef int bridge_detach(BridgePort *bp, int *slot, str who) except -1:
    if slot[0] == PJSUA_INVALID_ID:
        return 0
    _in_pjsua_thread(f"{who}.detach")
    # Removal takes the bridge's mutex, which its clock thread holds for a
    # whole tick: after this returns the callbacks are not running and will
    # not run again, so the pool (holding the bridge's record of the port)
    # may go.
    pjsua_conf_remove_port(slot[0])
    slot[0] = PJSUA_INVALID_ID
    pj_pool_release(bp.pool)
    bp.pool = NULL
    return 0


cdef int _drain(int fd) except -1:
    try:
        os.read(fd, 8)
    except BlockingIOError:
        pass
    return 0


cdef int bridge_drain(BridgePort *bp) except -1:
    return _drain(bp.notify_fd)


cdef int bridge_close(BridgePort *bp) except -1:
    cdef int fd = bp.notify_fd
    bp.notify_fd = -1
    if fd >= 0:
        os.close(fd)
    return 0


cdef bint bridge_dispose(BridgePort *bp, int *slot) noexcept:
    if slot[0] != PJSUA_INVALID_ID:
        if not pj_thread_is_registered():
            # We may not touch pjsua from this thread, and the bridge may
            # still be calling into the record: leaking is the only safe choice.
            return False
        pjsua_conf_remove_port(slot[0])
        slot[0] = PJSUA_INVALID_ID
        pj_pool_release(bp.pool)
        bp.pool = NULL
    if bp.notify_fd >= 0:
        close(bp.notify_fd)
        bp.notify_fd = -1
    return True


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
