"""C media ports for pjsua2's conference bridge (Cython, linked against the
same shared pjproject libraries as pjsua2) and the C libraries they wrap.

pjsua2 2.12.1 has no AudioMediaPort, and per-frame work must not run Python:
each port here is a ``pjmedia_port`` whose callbacks are C, called by the
bridge's clock thread without the GIL.

    fax         FaxSession: spandsp's T.30 fax terminal on a call (fax.pxd:
                the C line record the bridge thread and Python share)
    cng         FaxToneListener: hears a fax machine's calling tone (CNG) on a
                call, listening only (the IVR switches the call to receive)
    bridge_port what both share: the bridge plumbing in C, and MediaPort,
                their base class (attach/detach, the eventfd, close, `with`)
    tiffpages   read_pages(): fax TIFF pages as bitmaps, for pixel comparison
    jitter      set_discard(): the jitter buffer's frame-discard policy, which
                pjsua2 2.12.1 cannot set (see sipagent/sip/fax_media.py)
    rtp_poller  start(): RTP received on our own thread, polled every 10 ms
                (pjmedia's own worker stalls all calls for 500 ms at a time)
    drain       install(): every call's audio read from answer on, so that
                no jitter buffer fills up while nobody listens to the call

A fax on a call, from the pjsua2 thread (the asyncio loop's):

    leg.use_fax_media(fax_media.JitterPolicy())   # a CallLeg, before its media exists
    session = FaxSession("send", "doc.tif", calling=True, ident="+1 555 0100")
    session.attach(fax_media.audio_slot(call))    # when the call's audio is active
    result = await session.wait(timeout=600)     # race it with the call's end
    session.close()                              # before the Call is released

wait() (or your own loop.add_reader on fileno()) must be finished before
close(), which closes that eventfd.

The compiled modules exist only when setup.py found pjproject, spandsp and
libtiff; importing them otherwise raises ImportError naming the module.
"""
