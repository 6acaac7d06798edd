# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A fax terminal (spandsp's T.30 over G.711 audio) as a pjmedia port.

Theory of operation
-------------------
A `FaxSession` owns one spandsp ``fax_state_t`` and the C record the rest of
this file calls a *line*.  `attach()` registers the line's ``pjmedia_port``
with pjsua's conference bridge and connects it both ways to a call's slot
(bridge_port.pyx: the plumbing every port type here shares).
From then on the bridge's clock thread calls `_port_get_frame` (audio we
send: ``fax_tx``) and `_port_put_frame` (audio we hear: ``fax_rx``) every
20 ms, without the GIL: that path is C only, no Python object is touched.

spandsp calls the T.30 phase B/D/E handlers from inside ``fax_rx``/``fax_tx``,
so they also run on the bridge thread.  They copy what Python will want
(statistics, remote ident, completion code) into the line, publish it with a
release store of ``done`` and bump an eventfd.  The asyncio loop watches that
eventfd with ``loop.add_reader`` (`wait()`), or polls `poll()`; either way
Python only reads the line after the acquire load of ``done`` saw 1, and the
bridge never writes those fields again (T.30 reaches phase E once).

fax_memory.transfer_in_memory() runs two sessions back to back with no SIP
at all: the reference against which the SIP path is judged.
"""

import os

from libc.stdint cimport int16_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, strncpy
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from sipagent.mediaports.spandsp cimport *
from sipagent.mediaports.pjmedia cimport pjmedia_port, pjmedia_frame, pj_status_t, PJ_SUCCESS, \
    PJMEDIA_FRAME_TYPE_AUDIO, PJSUA_INVALID_ID
from sipagent.mediaports.bridge_port cimport *
from sipagent.mediaports.bridge_port import wait_published

# Resolutions spandsp reports, in pixels per metre.
_X_RES = {8031: "R8", 8040: "R8", 16062: "R16", 16080: "R16", 7874: "200dpi", 11811: "300dpi", 15748: "400dpi"}
_Y_RES = {3850: "standard", 7700: "fine", 15400: "superfine", 7874: "200dpi",
          11811: "300dpi", 15748: "400dpi"}
_ENCODINGS = {T4_COMPRESSION_ITU_T4_1D: "T.4 1D", T4_COMPRESSION_ITU_T4_2D: "T.4 2D",
              T4_COMPRESSION_ITU_T6: "T.6"}


cdef inline double _monotonic() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef int _on_phase_b(t30_state_t *t30, void *user, int result) noexcept nogil:
    cdef FaxLine *line = <FaxLine *>user
    line.phase_b_result = result
    line.phase_b_count += 1
    bridge_notify(&line.bridge)
    return T30_ERR_OK


cdef int _on_phase_d(t30_state_t *t30, void *user, int result) noexcept nogil:
    cdef FaxLine *line = <FaxLine *>user
    cdef t30_stats_t st
    # Page boundaries.  Statistics are read here, on the thread that owns
    # the T.30 state, never from Python while the bridge runs.
    t30_get_transfer_statistics(t30, &st)
    line.pages_so_far = st.pages_tx if line.sending else st.pages_rx
    line.phase_d_count += 1
    bridge_notify(&line.bridge)
    return T30_ERR_OK


cdef void _on_phase_e(t30_state_t *t30, void *user, int completion_code) noexcept nogil:
    cdef FaxLine *line = <FaxLine *>user
    cdef const char *ident
    if sipacd_load_acquire(&line.done):
        return
    t30_get_transfer_statistics(t30, &line.stats)
    ident = t30_get_rx_ident(t30)
    if ident != NULL:
        strncpy(line.remote_ident, ident, IDENT_MAX - 1)
    line.completion_code = completion_code
    line.samples_at_done = line.samples_rx
    line.done_at = _monotonic()
    sipacd_store_release(&line.done, 1)
    bridge_notify(&line.bridge)


cdef void line_rx(FaxLine *line, int16_t *amp, int n) noexcept nogil:
    if line.first_frame_at == 0:
        line.first_frame_at = _monotonic()
    fax_rx(line.fax, amp, n)
    sipacd_add_relaxed(&line.samples_rx, n)


cdef void line_tx(FaxLine *line, int16_t *amp, int n) noexcept nogil:
    cdef int got = fax_tx(line.fax, amp, n)
    if got < n:
        memset(&amp[got], 0, (n - got) * sizeof(int16_t))


# --- the pjmedia port: bridge clock thread, no GIL -----------------------------

cdef pj_status_t _port_get_frame(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil:
    cdef FaxLine *line = <FaxLine *>port.port_data.pdata
    cdef int n = FRAME
    if frame.size and <int>(frame.size // 2) < n:
        n = <int>(frame.size // 2)
    line_tx(line, <int16_t *>frame.buf, n)
    frame.type = PJMEDIA_FRAME_TYPE_AUDIO
    frame.size = n * 2
    return PJ_SUCCESS


cdef pj_status_t _port_put_frame(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil:
    cdef FaxLine *line = <FaxLine *>port.port_data.pdata
    if frame.type == PJMEDIA_FRAME_TYPE_AUDIO and frame.size >= 2:
        line_rx(line, <int16_t *>frame.buf, <int>(frame.size // 2))
    else:
        # A heart-beat (nobody transmitting to us yet): the line is silent,
        # and T.30's timers run off received samples, so they must advance.
        line_rx(line, line.silence, FRAME)
    return PJ_SUCCESS


cdef class FaxSession(MediaPort):
    """One fax transfer.

    mode      "send" (transmit `tiff`) or "receive" (write pages to `tiff`)
    calling   T.30 role: True for the calling terminal (sends CNG, waits for
              CED/DIS).  The SIP role is independent: fax-on-demand answers
              the SIP call and still *calls* in T.30.
    ident     our TSI/CSI (at most 20 characters)
    ecm       offer error correction mode
    start_page  (send) the first page to transmit, counted from 0: a retry
              resumes after the pages the far end already confirmed

    fileno() becomes readable at phase B, at each page and at the end.  The
    received TIFF is final once close() (or the ``with`` block) freed
    spandsp's state.
    """

    def __init__(self, str mode, str tiff, *, bint calling, str ident="", bint ecm=True,
                 str header=None, bint v17=True, int log_level=0, int start_page=0):
        if mode not in ("send", "receive"):
            raise ValueError(f"mode must be 'send' or 'receive', not {mode!r}")
        if len(ident) > IDENT_MAX - 1:
            raise ValueError(f"fax ident {ident!r} is longer than 20 characters")
        if start_page < 0:
            raise ValueError(f"start_page must be >= 0, not {start_page}")
        if mode == "send" and not os.path.isfile(tiff):
            raise FileNotFoundError(tiff)
        if mode == "receive" and not os.path.isdir(os.path.dirname(os.path.abspath(tiff))):
            # spandsp would only notice at the first page, as a T.30 file error.
            raise FileNotFoundError(f"no directory for {tiff}")
        self.mode, self.tiff, self.ident, self.calling = mode, tiff, ident, calling
        self._tiff_b = os.fsencode(tiff)
        self._ident_b = ident.encode("ascii")
        self._header_b = header.encode("ascii") if header else None
        cdef FaxLine *line = <FaxLine *>calloc(1, sizeof(FaxLine))
        if line == NULL:
            raise MemoryError()
        line.sending = mode == "send"
        line.fax = fax_init(NULL, calling)
        if line.fax == NULL:
            free(line)
            raise RuntimeError("spandsp fax_init failed")
        self.own(&line.bridge, "FaxSession")
        line.t30 = fax_get_t30_state(line.fax)
        # Over RTP a silent gap would be sent as nothing at all; the far
        # modem and its clock recovery want a continuous signal.
        fax_set_transmit_on_idle(line.fax, 1)
        fax_set_tep_mode(line.fax, 0)
        cdef int modems = T30_SUPPORT_V27TER | T30_SUPPORT_V29
        if v17:
            modems |= T30_SUPPORT_V17
        t30_set_supported_modems(line.t30, modems)
        t30_set_supported_compressions(line.t30, T30_SUPPORT_T4_1D_COMPRESSION
                                       | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION)
        t30_set_supported_resolutions(line.t30, T30_SUPPORT_STANDARD_RESOLUTION
                                      | T30_SUPPORT_FINE_RESOLUTION | T30_SUPPORT_SUPERFINE_RESOLUTION
                                      | T30_SUPPORT_R8_RESOLUTION | T30_SUPPORT_R16_RESOLUTION)
        t30_set_supported_image_sizes(line.t30, T30_SUPPORT_215MM_WIDTH | T30_SUPPORT_255MM_WIDTH
                                      | T30_SUPPORT_303MM_WIDTH | T30_SUPPORT_UNLIMITED_LENGTH
                                      | T30_SUPPORT_A4_LENGTH | T30_SUPPORT_B4_LENGTH
                                      | T30_SUPPORT_US_LETTER_LENGTH | T30_SUPPORT_US_LEGAL_LENGTH)
        t30_set_ecm_capability(line.t30, ecm)
        if self._ident_b:
            t30_set_tx_ident(line.t30, self._ident_b)
        if self._header_b:
            t30_set_tx_page_header_info(line.t30, self._header_b)
        if line.sending:
            t30_set_tx_file(line.t30, self._tiff_b, start_page if start_page else -1, -1)
        else:
            # T.6 is the densest encoding; spandsp transcodes whatever the
            # line carried into it.
            t30_set_rx_encoding(line.t30, T4_COMPRESSION_ITU_T6)
            t30_set_rx_file(line.t30, self._tiff_b, -1)
        t30_set_phase_b_handler(line.t30, _on_phase_b, line)
        t30_set_phase_d_handler(line.t30, _on_phase_d, line)
        t30_set_phase_e_handler(line.t30, _on_phase_e, line)
        self.set_log_level(log_level)

    def set_log_level(self, int level):
        """spandsp's own protocol log on stderr: 0 off, 5 = T.30 flow."""
        cdef int flags = SPAN_LOG_SHOW_TAG | SPAN_LOG_SHOW_PROTOCOL | SPAN_LOG_SHOW_SAMPLE_TIME
        lvl = (level | flags) if level > 0 else SPAN_LOG_NONE
        cdef FaxLine *line = self.live_line()
        span_log_set_level(fax_get_logging_state(line.fax), lvl)
        span_log_set_level(t30_get_logging_state(line.t30), lvl)

    # --- the conference bridge ----------------------------------------------

    def attach(self, int call_slot):
        """Add the fax port to pjsua's bridge and connect it both ways to
        `call_slot` (``AudioMedia.getPortId()``).  Returns the port's slot.
        Call from the thread that runs pjsua2."""
        return self.attach_port(b"fax", b'F', b'X', _port_get_frame, _port_put_frame, call_slot, True)

    def tap(self, int sink_slot):
        """Also send what the modem transmits to `sink_slot` (a recorder's
        port, for a recording of the line's transmit side)."""
        cdef FaxLine *line = self.live_line()
        if line.bridge.slot == PJSUA_INVALID_ID:
            raise RuntimeError("attach the fax port first")
        bridge_connect(line.bridge.slot, sink_slot)

    # --- results -------------------------------------------------------------

    @property
    def done(self):
        return self.bridge != NULL and sipacd_load_acquire(&(<FaxLine *>self.bridge).done) == 1

    def progress(self):
        """Live view: T.30 negotiated (phase B), pages done at the last page
        boundary (phase D), seconds of line audio so far."""
        cdef FaxLine *line = self.live_line()
        cdef bint finished = sipacd_load_acquire(&line.done) == 1
        if finished:
            pages = line.stats.pages_tx if line.sending else line.stats.pages_rx
        else:
            pages = line.pages_so_far   # a plain int written at phase D
        return {"negotiated": line.phase_b_count > 0, "pages": pages,
                "line_seconds": sipacd_load_relaxed(&line.samples_rx) / <double>CLOCK_RATE,
                "done": finished}

    def poll(self):
        """The result dict once T.30 reached phase E, else None."""
        cdef FaxLine *line = self.live_line()
        if not sipacd_load_acquire(&line.done):
            return None
        cdef t30_stats_t *st = &line.stats
        cdef int code = line.completion_code
        text = t30_completion_code_to_str(code)
        wall = line.done_at - line.first_frame_at if line.first_frame_at else 0.0
        return {
            "ok": code == T30_ERR_OK,
            "status": code,
            "status_text": text.decode("ascii", "replace") if text != NULL else "",
            "mode": self.mode,
            "pages": st.pages_tx if line.sending else st.pages_rx,
            "pages_in_file": st.pages_in_file,
            "bit_rate": st.bit_rate,
            "ecm": bool(st.error_correcting_mode),
            "ecm_retries": st.error_correcting_mode_retries,
            "resolution": f"{_X_RES.get(st.x_resolution, st.x_resolution)}/"
                          f"{_Y_RES.get(st.y_resolution, st.y_resolution)}",
            "x_resolution": st.x_resolution,
            "y_resolution": st.y_resolution,
            "width": st.width,
            "length": st.length,
            "encoding": _ENCODINGS.get(st.encoding, st.encoding),
            "bad_rows": st.bad_rows,
            "remote_ident": line.remote_ident.decode("ascii", "replace").strip(),
            "line_seconds": line.samples_at_done / <double>CLOCK_RATE,
            "wall_seconds": wall,
        }

    async def wait(self, timeout=None):
        """Await phase E from the asyncio loop (the eventfd as a reader):
        poll()'s result, or TimeoutError."""
        return await wait_published(self.fileno(), self.poll, timeout)

    def terminate(self):
        """The call is gone before T.30 finished: end it now, so that poll()
        reports how far it got (T30_ERR_CALLDROPPED and the pages confirmed
        until then) instead of nothing.  Detaches first: T.30 state is only
        ever touched by one thread at a time."""
        cdef FaxLine *line = self.live_line()
        self.detach()
        if not sipacd_load_acquire(&line.done):
            t30_terminate(line.t30)    # runs phase E on this thread
        self.drain()

    # --- lifetime ------------------------------------------------------------

    cdef FaxLine *live_line(self) except NULL:
        return <FaxLine *>self.live()

    cdef void free_state(self) noexcept:
        # After close()'s detach this may run phase E, into the line: the
        # eventfd is closed by then, so nobody is notified.  The received
        # TIFF is final after this.
        fax_free((<FaxLine *>self.bridge).fax)
