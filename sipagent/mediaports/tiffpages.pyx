# cython: language_level=3
"""Fax TIFF pages decoded to plain bitmaps, so that a sent and a received
document can be compared pixel by pixel whatever their encodings (a sender's
T.6 file and spandsp's re-encoded copy differ byte-wise even when every
pixel is the same)."""

import os
from collections import namedtuple

from libc.stdint cimport uint16_t, uint32_t
from libc.stdlib cimport malloc, free

from sipagent.mediaports.libtiff cimport *

Page = namedtuple("Page", "width height x_dpi y_dpi bitmap")
Page.__doc__ = """One page: 1 bit per pixel, rows MSB first, 1 = black."""


def read_pages(path):
    """Every page of a bilevel TIFF as a `Page`."""
    cdef TIFF *tif
    cdef uint32_t w = 0, h = 0, row
    cdef uint16_t bps = 1, spp = 1, photometric = PHOTOMETRIC_MINISWHITE, unit = 2
    cdef float xres = 0, yres = 0
    cdef tmsize_t line_bytes
    cdef unsigned char *buf
    cdef Py_ssize_t i
    tif = TIFFOpen(os.fsencode(path), b"r")
    if tif == NULL:
        raise OSError(f"cannot open TIFF {path}")
    pages = []
    try:
        while True:
            TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w)
            TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)
            TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps)
            TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp)
            TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric)
            TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit)
            if not TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres):
                xres = 0
            if not TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yres):
                yres = 0
            if bps != 1 or spp != 1:
                raise ValueError(f"{path}: page {len(pages) + 1} is not bilevel "
                                 f"({bps} bits x {spp} samples)")
            line_bytes = TIFFScanlineSize(tif)
            bitmap = bytearray(line_bytes * h)
            buf = <unsigned char *>malloc(line_bytes)
            if buf == NULL:
                raise MemoryError()
            try:
                for row in range(h):
                    if TIFFReadScanline(tif, buf, row, 0) < 0:
                        raise ValueError(f"{path}: page {len(pages) + 1} row {row} does not decode")
                    if photometric == PHOTOMETRIC_MINISBLACK:
                        for i in range(line_bytes):
                            buf[i] = ~buf[i]
                    bitmap[row * line_bytes:(row + 1) * line_bytes] = buf[:line_bytes]
            finally:
                free(buf)
            scale = 2.54 if unit == RESUNIT_CENTIMETER else 1.0
            pages.append(Page(w, h, round(xres * scale), round(yres * scale), bytes(bitmap)))
            if not TIFFReadDirectory(tif):
                break
    finally:
        TIFFClose(tif)
    return pages
