# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Recording a two-party conversation as one stereo WAV: left the caller,
right the agent, 8 kHz 16-bit PCM.

Theory of operation
-------------------
`StereoRecorder.attach(left_slot, right_slot)` adds two listening ports
("taps") to pjsua's conference bridge and connects each call's slot to one
of them, one way.  Every tick (20 ms) the bridge's clock thread calls each
port's put_frame, without the GIL: with the call's audio, or with a
heart-beat (no audio) when nothing transmits to it, e.g. after that leg
hung up.  Both calls of one tick carry the bridge's tick timestamp, so the
two channels are put together by timestamp, not by arrival: the first
frame of a new tick closes the previous one, and a channel that brought
nothing for a tick is silent in it.  A timestamp that jumps (the clock
caught up after a stall) writes the skipped ticks as silence.  The
timeline is therefore the bridge's clock: nothing is dropped or shifted.

Paused, the taps still close every tick but copy no samples into it: a
paused span is silence in the file, as long as it lasted.

The interleaved ticks collect in a one-second buffer that the clock thread
write()s to the file (one write per second per recording, into the page
cache).  Nothing else happens in the clock thread: the WAV header, fsync
and close come from `finish()`, in any thread, once `detach()` (in the
pjsua2 thread) has taken the taps off the bridge: pjsua_conf_remove_port
waits for a running tick, so after it no callback touches the record.  The
file is whatever path the caller names (a temporary one); publishing it
under its final name is call_recording.py's job.

A failed write is published like the other ports' news (a release store),
later samples are dropped, and `finish()` raises it.
"""

import os
import struct

from libc.errno cimport errno, EINTR
from libc.stdint cimport int16_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from posix.unistd cimport write

from sipagent.mediaports.pjmedia cimport *
from sipagent.mediaports.bridge_port cimport *

cdef extern from *:
    """
    #include <pjmedia/frame.h>
    static inline unsigned long long sipacd_frame_ts(const pjmedia_frame *f) { return f->timestamp.u64; }
    static inline void sipacd_set_frame_ts(pjmedia_frame *f, unsigned long long ts) { f->timestamp.u64 = ts; }
    """
    unsigned long long sipacd_frame_ts(const pjmedia_frame *f) nogil
    void sipacd_set_frame_ts(pjmedia_frame *f, unsigned long long ts) nogil

cdef enum:
    CHANNELS = 2
    TICK_SAMPLES = FRAME * CHANNELS
    TICK_BYTES = TICK_SAMPLES * 2
    BUFFER_TICKS = 50                  # one second of stereo audio per write()
    # A clock that jumps further than this is not a stall but a restart:
    # its gap is not filled (a minute of silence would hide the fault).
    MAX_GAP_TICKS = 250
    WAV_HEADER = 44

cdef struct StereoTrack:
    int fd
    int paused                         # Python writes, the bridge thread reads
    int failed                         # errno of the failed write (release store)
    bint started
    unsigned long long tick_ts         # bridge timestamp of the tick being assembled
    long long frames                   # stereo frames closed so far (relaxed atomic)
    int buffered                       # bytes in buf
    int16_t tick[TICK_SAMPLES]
    char buf[TICK_BYTES * BUFFER_TICKS]

cdef struct Tap:
    BridgePort bridge                  # first: the port on the bridge (bridge_port.pxd)
    StereoTrack *track
    int channel                        # 0 = left, 1 = right


# --- the bridge's clock thread (and finish(), once detached): no GIL ----------

cdef void _flush(StereoTrack *t) noexcept nogil:
    cdef int done = 0
    cdef Py_ssize_t n
    while done < t.buffered and not t.failed:
        n = write(t.fd, t.buf + done, t.buffered - done)
        if n < 0:
            if errno != EINTR:
                sipacd_store_release(&t.failed, errno)
        else:
            done += <int>n
    t.buffered = 0


cdef void _close_tick(StereoTrack *t) noexcept nogil:
    memcpy(t.buf + t.buffered, t.tick, TICK_BYTES)
    memset(t.tick, 0, TICK_BYTES)
    t.buffered += TICK_BYTES
    sipacd_add_relaxed(&t.frames, FRAME)
    if t.buffered == TICK_BYTES * BUFFER_TICKS:
        _flush(t)


cdef pj_status_t _tap_put_frame(pjmedia_port *port, pjmedia_frame *frame) noexcept nogil:
    cdef Tap *tap = <Tap *>port.port_data.pdata
    cdef StereoTrack *t = tap.track
    cdef unsigned long long ts = sipacd_frame_ts(frame)
    cdef unsigned long long gap
    cdef const int16_t *src
    cdef int i, n
    if not t.started:
        t.started = True
        t.tick_ts = ts
    elif ts != t.tick_ts:
        _close_tick(t)
        if ts > t.tick_ts:
            gap = (ts - t.tick_ts) // FRAME - 1
            if gap <= MAX_GAP_TICKS:
                while gap > 0:
                    _close_tick(t)
                    gap -= 1
        t.tick_ts = ts
    if (frame.type == PJMEDIA_FRAME_TYPE_AUDIO and not sipacd_load_acquire(&t.paused)
            and not sipacd_load_acquire(&t.failed)):
        src = <const int16_t *>frame.buf
        n = <int>(frame.size // 2)
        if n > FRAME:
            n = FRAME
        for i in range(n):
            t.tick[CHANNELS * i + tap.channel] = src[i]
    return PJ_SUCCESS


# --- Python ------------------------------------------------------------------

cdef class _ChannelTap(MediaPort):
    """One channel's listening port; its StereoRecorder owns the track."""

    cdef int setup(self, StereoTrack *track, int channel) except -1:
        cdef Tap *tap = <Tap *>calloc(1, sizeof(Tap))
        if tap == NULL:
            raise MemoryError()
        tap.track = track
        tap.channel = channel
        tap.bridge.port.port_data.pdata = tap   # attach sets it too; feed() needs it before
        self.own(&tap.bridge, "StereoRecorder tap")
        return 0

    cdef int attach(self, int call_slot) except -1:
        # No get_frame: nothing listens to a tap, so the bridge never reads
        # it (and pjmedia_port_get_frame answers "no frame" for a NULL one).
        return self.attach_port(b"stereo-rec", b'S', b'R', NULL, _tap_put_frame,
                                call_slot, False)


def wav_header(long long frames):
    """The 44-byte RIFF header of a stereo 8 kHz 16-bit PCM file of `frames`."""
    data = frames * TICK_BYTES // FRAME
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1,
                       CHANNELS, CLOCK_RATE, CLOCK_RATE * CHANNELS * 2, CHANNELS * 2, 16,
                       b"data", data)


cdef class StereoRecorder:
    """A conversation into one stereo WAV at `path` (created; it must not
    exist).  attach() and detach() run in the pjsua2 thread; finish() or
    close() after detach(), in any thread."""

    cdef StereoTrack *track
    cdef _ChannelTap left
    cdef _ChannelTap right
    cdef readonly object path

    def __cinit__(self, path):
        self.track = NULL
        self.path = os.fspath(path)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            # A placeholder until finish() knows the length.
            os.write(fd, wav_header(0))
            self.track = <StereoTrack *>calloc(1, sizeof(StereoTrack))
            if self.track == NULL:
                raise MemoryError()
        except BaseException:
            os.close(fd)
            raise
        self.track.fd = fd
        try:
            self.left = _ChannelTap()
            self.right = _ChannelTap()
            self.left.setup(self.track, 0)
            self.right.setup(self.track, 1)
        except BaseException:
            # Neither tap is on the bridge yet: nothing else can hold the track.
            os.close(fd)
            free(self.track)
            self.track = NULL
            raise

    def attach(self, int left_slot, int right_slot):
        """Start recording: `left_slot` (the caller's conference slot,
        ``AudioMedia.getPortId()``) into the left channel, `right_slot`
        (the agent's) into the right."""
        self._live()
        try:
            self.left.attach(left_slot)
            self.right.attach(right_slot)
        except BaseException:
            self.detach()
            raise

    def detach(self):
        """Take both taps off the bridge; from then on no callback runs."""
        self.left.detach()
        self.right.detach()

    def feed(self, int channel, unsigned long long timestamp, samples=None):
        """Hand channel 0 (left) or 1 (right) one frame stamped `timestamp`
        (in samples) as the bridge would: 16-bit native-endian samples (a
        buffer of int16, at most a frame's worth), or None for a heart-beat.
        Only while detached (tests of the timeline, with no SIP)."""
        cdef _ChannelTap tap
        cdef pjmedia_frame frame
        cdef const int16_t[::1] amp
        self._live()
        if channel not in (0, 1):
            raise ValueError("channel must be 0 (left) or 1 (right)")
        if self.left.slot is not None or self.right.slot is not None:
            raise RuntimeError("StereoRecorder.feed: the taps are on the bridge")
        tap = self.left if channel == 0 else self.right
        memset(&frame, 0, sizeof(frame))
        sipacd_set_frame_ts(&frame, timestamp)
        frame.type = PJMEDIA_FRAME_TYPE_NONE
        if samples is not None:
            amp = samples
            if amp.shape[0] > FRAME:
                raise ValueError(f"a frame is at most {FRAME} samples")
            frame.type = PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = <void *>&amp[0] if amp.shape[0] else NULL
            frame.size = 2 * amp.shape[0]
        _tap_put_frame(&tap.bridge.port, &frame)

    cdef StereoTrack *_live(self) except NULL:
        if self.track == NULL:
            raise RuntimeError("StereoRecorder is closed")
        return self.track

    def pause(self):
        """Silence from the next tick on (the file keeps its timeline)."""
        sipacd_store_release(&self._live().paused, 1)

    def resume(self):
        sipacd_store_release(&self._live().paused, 0)

    @property
    def paused(self):
        return self.track != NULL and sipacd_load_acquire(&self.track.paused) == 1

    @property
    def seconds(self):
        """Audio recorded so far (to the last whole tick)."""
        if self.track == NULL:
            return 0.0
        return sipacd_load_relaxed(&self.track.frames) / <double>CLOCK_RATE

    def finish(self):
        """Write the last tick, the real header, fsync and close the file
        (after detach()).  Returns the length in seconds.  A failed write
        raises OSError; the file is closed either way."""
        cdef StereoTrack *t = self._live()
        if self.left.slot is not None or self.right.slot is not None:
            raise RuntimeError("StereoRecorder.finish before detach")
        with nogil:
            if t.started:
                _close_tick(t)
                t.started = False
            _flush(t)
        try:
            if t.failed:
                raise OSError(t.failed, f"writing {self.path}: {os.strerror(t.failed)}")
            os.pwrite(t.fd, wav_header(t.frames), 0)
            os.fsync(t.fd)
            return t.frames / <double>CLOCK_RATE
        finally:
            self.close()

    def close(self):
        """Detach, close the file as it is (no header) and free the C state;
        again does nothing."""
        if self.track == NULL:
            return
        self.detach()
        self.left.close()
        self.right.close()
        os.close(self.track.fd)
        free(self.track)
        self.track = NULL

    def __dealloc__(self):
        if self.track == NULL:
            return
        if pj_thread_is_registered():
            self.left.close()
            self.right.close()
        if self.left.slot is not None or self.right.slot is not None:
            # Still on the bridge and we may not touch pjsua from this
            # thread: the taps leak, and the track they write into with them.
            return
        os.close(self.track.fd)
        free(self.track)
        self.track = NULL
