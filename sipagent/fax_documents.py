"""Fax documents on disk: PDF/PostScript to TIFF-F for sending, received
TIFF to PDF for people, and a pixel-level comparison.

TIFF-F is what every fax machine takes: 1728 pixels wide (A4/Letter at
204 dpi), 196 lines per inch ("fine"), bilevel, one TIFF directory per page.
Ghostscript renders it; libtiff's tools check and convert it.  All three are
Debian packages (ghostscript, libtiff-tools).

A file is complete only once renamed into place (DESIGN.md, Data): each
function writes a temporary name beside the target, fsyncs, then renames.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

FAX_WIDTH_PX = 1728

_GS_ARGS = ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4", "-r204x196",
            "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage"]


class DocumentError(Exception):
    """A document could not be converted or is not a valid fax TIFF."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DocumentError(f"'{name}' is missing (Debian package {package})")
    return path


def _publish(tmp: Path, dst: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def tiff_pages(path: Path) -> list[dict]:
    """Per page: width, length, x/y resolution and compression, from tiffinfo."""
    out = subprocess.run([_tool("tiffinfo", "libtiff-tools"), str(path)],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or "TIFF Directory" not in out.stdout:
        raise DocumentError(f"{path}: not a readable TIFF: {out.stderr.strip()[:200]}")
    pages = []
    for block in out.stdout.split("TIFF Directory")[1:]:
        size = re.search(r"Image Width: (\d+) Image Length: (\d+)", block)
        res = re.search(r"Resolution: ([\d.]+), ([\d.]+)", block)
        comp = re.search(r"Compression Scheme: (.+)", block)
        bits = re.search(r"Bits/Sample: (\d+)", block)
        pages.append({
            "width": int(size.group(1)) if size else 0,
            "length": int(size.group(2)) if size else 0,
            "x_res": float(res.group(1)) if res else 0.0,
            "y_res": float(res.group(2)) if res else 0.0,
            "compression": comp.group(1).strip() if comp else "",
            "bits": int(bits.group(1)) if bits else 0,
        })
    return pages


def check_fax_tiff(path: Path) -> int:
    """Page count of a TIFF that a fax machine can take; raises otherwise."""
    pages = tiff_pages(path)
    for n, p in enumerate(pages, 1):
        if p["width"] != FAX_WIDTH_PX or p["bits"] != 1:
            raise DocumentError(f"{path}: page {n} is {p['width']} px x {p['bits']} bit, "
                                f"a fax page is {FAX_WIDTH_PX} px x 1 bit")
    return len(pages)


def to_fax_tiff(src: Path, dst: Path, *, timeout: float = 120.0) -> int:
    """Render a PDF or PostScript file as TIFF-F (A4, fine, T.6); returns
    the page count.  -dSAFER: the document comes from outside."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        run = subprocess.run([_tool("gs", "ghostscript"), *_GS_ARGS, f"-sOutputFile={tmp}",
                              "--", str(src)],
                             capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0 or not tmp.exists():
            raise DocumentError(f"ghostscript could not render {src.name}: "
                                f"{(run.stderr or run.stdout).strip()[:300]}")
        pages = check_fax_tiff(tmp)
        _publish(tmp, dst)
        return pages
    finally:
        tmp.unlink(missing_ok=True)


def to_pdf(tiff: Path, pdf: Path, *, timeout: float = 60.0) -> None:
    """A received fax as PDF (tiff2pdf keeps the G4 data, no re-rendering)."""
    tiff, pdf = Path(tiff), Path(pdf)
    tmp = pdf.with_name(f".{pdf.name}.tmp")
    try:
        run = subprocess.run([_tool("tiff2pdf", "libtiff-tools"), "-o", str(tmp), str(tiff)],
                             capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0 or not tmp.exists():
            raise DocumentError(f"tiff2pdf failed on {tiff.name}: {run.stderr.strip()[:300]}")
        _publish(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)


def same_pixels(a: Path, b: Path) -> bool:
    """Every page of `a` and `b` has the same size, resolution and pixels
    (encodings may differ: spandsp re-encodes what it receives)."""
    from sipagent.mediaports.tiffpages import read_pages

    pa, pb = read_pages(a), read_pages(b)
    return len(pa) == len(pb) and all(x == y for x, y in zip(pa, pb))
