# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Hearing a fax machine call: a CNG detector (spandsp) as a pjmedia port.

Theory of operation
-------------------
A calling fax machine sends CNG until something answers it: 1100 Hz in
0.5 s bursts (±15 %) with 3 s of silence between them (T.30).  An IVR that
hears it can switch the call to fax receive instead of playing prompts to a
machine.

`FaxToneListener.attach()` adds a port to pjsua's conference bridge and
connects only the call's slot to it: the port listens and never transmits
(its get_frame yields no audio, and nothing listens to it).  The bridge's
clock thread hands it the caller's audio every 20 ms (`_port_put_frame`),
without the GIL, and it runs spandsp's modem-connect-tone detector on it.

What spandsp's CNG detector does (libspandsp 0.0.6, measured by the tests):
it reports the tone *present* once it has heard 415 ms of audio that is
mostly 1040-1160 Hz (a notch filter: at most 1/6 of the level outside the
notch) and louder than about -44 dBm0, and *absent* as soon as that stops
being true.  It does not look at the cadence: a continuous 1100 Hz tone is
reported present after 0.42 s and stays so.  A fax machine's burst is over
by 0.575 s, so this port counts a burst only when the tone also stops
within `BURST_TAIL` of being reported: a held 1100 Hz note (a test tone,
music, a whistle) is not a fax machine.  One burst is enough: CNG is heard
about 0.52 s after the start of the first whole burst.

The bridge thread publishes the first counted burst as fax.pyx does its
results: plain fields, then a release store of ``heard``, then the port's
eventfd, which `wait()` watches with ``loop.add_reader``.  Python reads the
fields only after the acquire load of ``heard`` saw 1; they are never
written again.

`feed()` runs the same detector on samples in memory, with no SIP, from the
calling thread (tests, recordings); `cng_samples()` makes spandsp's CNG for it.
"""

from libc.stdint cimport int16_t
from libc.stdlib cimport calloc, free

from sipagent.mediaports.spandsp cimport *
from sipagent.mediaports.pjmedia cimport pjmedia_port, pjmedia_frame, pj_status_t, PJ_SUCCESS, \
    PJMEDIA_FRAME_TYPE_AUDIO, PJMEDIA_FRAME_TYPE_NONE, PJSUA_INVALID_ID
from sipagent.mediaports.bridge_port cimport *
from sipagent.mediaports.bridge_port import wait_published

cdef enum:
    # spandsp reports the tone 415 ms into it; a 0.575 s burst then ends
    # 160 ms later.  The rest is one bridge frame of slack either side and
    # margin for a line that stretches the burst.
    BURST_TAIL = 300 * CLOCK_RATE // 1000

cdef int16_t _SILENCE[FRAME]      # zeros: a frame with nobody talking


cdef struct ToneLine:
    BridgePort bridge             # first: the port on the conference bridge (bridge_port.pxd)
    modem_connect_tones_rx_state_t *rx
    # bridge thread (or feed()) only
    long long samples             # audio heard so far
    long long tone_since          # `samples` when spandsp reported 1100 Hz; -1 = no tone
    bint burst_counted            # a whole burst went by (not yet published)
    # published (release store of `heard` last)
    long long heard_at            # `samples` at the end of the frame that completed the burst
    int heard


cdef void _on_tone(void *user, int code, int level, int delay) noexcept nogil:
    # Called from inside modem_connect_tones_rx(), so `samples` is the start
    # of the current frame: the edges are known to within 20 ms.
    cdef ToneLine *line = <ToneLine *>user
    if code == MODEM_CONNECT_TONES_FAX_CNG:
        line.tone_since = line.samples
    elif line.tone_since >= 0:
        if line.samples - line.tone_since <= BURST_TAIL:
            line.burst_counted = True
        line.tone_since = -1


cdef void _listen(ToneLine *line, const int16_t *amp, int n) noexcept nogil:
    modem_connect_tones_rx(line.rx, amp, n)
    line.samples += n
    if line.burst_counted and not line.heard:
        line.heard_at = line.samples
        sipacd_store_release(&line.heard, 1)
        bridge_notify(&line.bridge)


# --- the pjmedia port: bridge clock thread, no GIL -----------------------------

cdef pj_status_t _port_get_frame(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil:
    # Nothing is connected to our output, so the bridge should never ask;
    # if it does, we have nothing to say.
    frame.type = PJMEDIA_FRAME_TYPE_NONE
    frame.size = 0
    return PJ_SUCCESS


cdef pj_status_t _port_put_frame(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil:
    cdef ToneLine *line = <ToneLine *>port.port_data.pdata
    if frame.type == PJMEDIA_FRAME_TYPE_AUDIO and frame.size >= 2:
        _listen(line, <const int16_t *>frame.buf, <int>(frame.size // 2))
    else:
        # A heart-beat: nobody transmits to us, which is silence (it ends a
        # tone), and the burst clock keeps counting.
        _listen(line, _SILENCE, FRAME)
    return PJ_SUCCESS


cdef class FaxToneListener(MediaPort):
    """Listens to a call for a calling fax machine (CNG).  fileno() becomes
    readable when it is heard."""

    def __init__(self):
        cdef ToneLine *line = <ToneLine *>calloc(1, sizeof(ToneLine))
        if line == NULL:
            raise MemoryError()
        line.tone_since = -1
        line.rx = modem_connect_tones_rx_init(NULL, MODEM_CONNECT_TONES_FAX_CNG, _on_tone, line)
        if line.rx == NULL:
            free(line)
            raise RuntimeError("spandsp modem_connect_tones_rx_init failed")
        self.own(&line.bridge, "FaxToneListener")

    cdef void free_state(self) noexcept:
        modem_connect_tones_rx_free((<ToneLine *>self.bridge).rx)

    # --- the conference bridge ----------------------------------------------

    def attach(self, int call_slot):
        """Add the listening port to pjsua's bridge and connect `call_slot`
        (``AudioMedia.getPortId()``) to it, one way.  Returns the port's
        slot.  Call from the thread that runs pjsua2."""
        return self.attach_port(b"cng", b'C', b'N', _port_get_frame, _port_put_frame, call_slot, False)

    # --- in memory -----------------------------------------------------------

    def feed(self, samples):
        """Run the detector on `samples` (16-bit native-endian 8 kHz audio:
        bytes, or a buffer of int16 such as array('h') or a numpy array),
        20 ms at a time as the bridge would.  Only while detached: an
        attached listener's detector belongs to the bridge thread.
        Returns `heard`."""
        cdef ToneLine *line = <ToneLine *>self.live()
        if line.bridge.slot != PJSUA_INVALID_ID:
            raise RuntimeError("FaxToneListener.feed: the listener is attached to a call")
        if isinstance(samples, (bytes, bytearray)):
            if len(samples) % 2:
                raise ValueError("feed: an odd number of bytes is not 16-bit audio")
            samples = memoryview(samples).cast("h")
        cdef const int16_t[::1] amp = samples
        cdef Py_ssize_t i = 0, n = amp.shape[0]
        cdef int k
        with nogil:
            while i < n:
                k = <int>min(<Py_ssize_t>FRAME, n - i)
                _listen(line, &amp[i], k)
                i += k
        return self.heard

    # --- the result ------------------------------------------------------------

    @property
    def heard(self):
        """True once a fax machine's CNG burst went by."""
        return self.bridge != NULL and sipacd_load_acquire(&(<ToneLine *>self.bridge).heard) == 1

    @property
    def heard_after(self):
        """Seconds of audio this listener had heard when it counted the
        burst (attached: from attach(); fed: from the first sample), or None."""
        if not self.heard:
            return None
        return (<ToneLine *>self.bridge).heard_at / <double>CLOCK_RATE

    async def wait(self, timeout=None):
        """Await CNG from the asyncio loop: True once heard, False when
        `timeout` seconds pass first."""
        try:
            return await wait_published(self.fileno(), lambda: True if self.heard else None, timeout)
        except TimeoutError:
            return False


def cng_samples(double seconds):
    """`seconds` of the CNG a calling fax machine sends, from spandsp's
    generator (1100 Hz at -11 dBm0, 0.5 s on, 3 s off, starting with a
    burst): 16-bit native-endian 8 kHz samples, as bytes.  For tests."""
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    cdef Py_ssize_t n = <Py_ssize_t>(seconds * CLOCK_RATE)
    out = bytearray(2 * n)
    if n == 0:
        return bytes(out)
    cdef int16_t[::1] amp = memoryview(out).cast("h")
    cdef modem_connect_tones_tx_state_t *tx = modem_connect_tones_tx_init(NULL, MODEM_CONNECT_TONES_FAX_CNG)
    if tx == NULL:
        raise RuntimeError("spandsp modem_connect_tones_tx_init failed")
    modem_connect_tones_tx(tx, &amp[0], <int>n)
    modem_connect_tones_tx_free(tx)
    return bytes(out)
