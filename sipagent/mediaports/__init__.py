"""C media ports for pjsua2's conference bridge (Cython, linked against the
same shared pjproject libraries as pjsua2) and the C libraries they wrap.

pjsua2 2.12.1 has no AudioMediaPort, and per-frame work must not run Python:
each port here is a ``pjmedia_port`` whose callbacks are C, called by the
bridge's clock thread without the GIL.

    fax        FaxSession: spandsp's T.30 fax terminal on a call, and
               transfer_in_memory() for two terminals back to back
    tiffpages  read_pages(): fax TIFF pages as bitmaps, for pixel comparison

The compiled modules exist only when setup.py found pjproject, spandsp and
libtiff; importing them otherwise raises ImportError naming the module.
"""
