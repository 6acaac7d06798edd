# The parts of libtiff that sipacd uses to read fax pages back as bitmaps.

from libc.stdint cimport uint16_t, uint32_t


cdef extern from "tiffio.h" nogil:
    ctypedef struct TIFF:
        pass
    ctypedef int tdir_t
    ctypedef long tmsize_t
    enum:
        TIFFTAG_IMAGEWIDTH
        TIFFTAG_IMAGELENGTH
        TIFFTAG_BITSPERSAMPLE
        TIFFTAG_SAMPLESPERPIXEL
        TIFFTAG_PHOTOMETRIC
        TIFFTAG_XRESOLUTION
        TIFFTAG_YRESOLUTION
        TIFFTAG_RESOLUTIONUNIT
        TIFFTAG_COMPRESSION
        PHOTOMETRIC_MINISWHITE
        PHOTOMETRIC_MINISBLACK
        RESUNIT_CENTIMETER

    TIFF *TIFFOpen(const char *path, const char *mode)
    void TIFFClose(TIFF *tif)
    int TIFFReadDirectory(TIFF *tif)
    int TIFFGetField(TIFF *tif, uint32_t tag, ...)
    int TIFFGetFieldDefaulted(TIFF *tif, uint32_t tag, ...)
    tmsize_t TIFFScanlineSize(TIFF *tif)
    int TIFFReadScanline(TIFF *tif, void *buf, uint32_t row, uint16_t sample)
    ctypedef void (*TIFFErrorHandler)(const char *module, const char *fmt, ...)
    TIFFErrorHandler TIFFSetWarningHandler(TIFFErrorHandler handler)
