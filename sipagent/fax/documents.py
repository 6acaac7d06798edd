"""Fax documents on disk: PDF/PostScript/TIFF to TIFF-F for sending, several
TIFF-F files joined into one, received TIFF to PDF for people, and a
pixel-level comparison.

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

PAPER_SIZES = ("a4", "letter")
# Both papers come out 1728 px wide: the tiffg4 device snaps widths near a
# fax width to it (AdjustWidth), A4's 1687 and Letter's 1734 alike.
_GS_ARGS = ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4", "-r204x196",
            "-dFIXEDMEDIA", "-dPDFFitPage"]


class DocumentError(Exception):
    """A document could not be converted or is not a valid fax TIFF."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DocumentError(f"'{name}' is missing (Debian package {package})")
    return path


def _run(args: list[str], what: str, timeout: float) -> subprocess.CompletedProcess:
    # A document from outside may make a converter spin (a PostScript loop):
    # the timeout is a refusal like any other, not a crash.
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DocumentError(f"{what} took longer than {timeout:g} s") from None


def _one_line(text: str, limit: int = 300) -> str:
    """Tool output as one line: the message goes to an operator's terminal
    or an HTTP error body."""
    return " ".join(text.split())[:limit]


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
    out = _run([_tool("tiffinfo", "libtiff-tools"), str(path)], f"reading {Path(path).name}", 60)
    if out.returncode != 0 or "TIFF Directory" not in out.stdout:
        raise DocumentError(f"{path}: not a readable TIFF: {_one_line(out.stderr, 200)}")
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


def to_fax_tiff(src: Path, dst: Path, *, paper: str = "a4", max_pages: int | None = None,
                timeout: float = 120.0) -> int:
    """Render a PDF or PostScript file as TIFF-F (``paper``, fine, T.6);
    returns the page count.  -dSAFER: the document comes from outside.
    With ``max_pages``, rendering stops one page past it, so a caller can
    refuse a long document without waiting for all of it."""
    if paper not in PAPER_SIZES:
        raise ValueError(f"paper: one of {', '.join(PAPER_SIZES)}, not {paper!r}")
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    limit = [f"-dLastPage={max_pages + 1}"] if max_pages is not None else []
    try:
        run = _run([_tool("gs", "ghostscript"), *_GS_ARGS, f"-sPAPERSIZE={paper}", *limit,
                    f"-sOutputFile={tmp}", "--", str(src)], f"rendering {src.name}", timeout)
        if run.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            detail = _one_line(run.stderr or run.stdout) or "no pages"
            raise DocumentError(f"ghostscript could not render {src.name}: {detail}")
        pages = check_fax_tiff(tmp)
        _publish(tmp, dst)
        return pages
    finally:
        tmp.unlink(missing_ok=True)


def tiff_to_fax_tiff(src: Path, dst: Path, *, paper: str = "a4", max_pages: int | None = None,
                     timeout: float = 120.0) -> int:
    """Any TIFF libtiff reads (grey, colour, another width or resolution) as
    TIFF-F.  tiff2pdf wraps the pages in a PDF at their own size and
    ghostscript renders that like any document, so scaling and dithering
    are done once, by the tool that does them for PDFs."""
    src, dst = Path(src), Path(dst)
    pdf = dst.with_name(f".{dst.name}.src.tmp.pdf")
    try:
        run = _run([_tool("tiff2pdf", "libtiff-tools"), "-o", str(pdf), str(src)],
                   f"reading {src.name}", timeout)
        if run.returncode != 0 or not pdf.exists():
            raise DocumentError(f"{src.name} is not a TIFF that libtiff can read: "
                                f"{_one_line(run.stderr) or 'tiff2pdf failed'}")
        return to_fax_tiff(pdf, dst, paper=paper, max_pages=max_pages, timeout=timeout)
    finally:
        pdf.unlink(missing_ok=True)


def join_tiffs(paths: list[Path], dst: Path, *, timeout: float = 60.0) -> int:
    """The pages of ``paths``, in order, as one TIFF at ``dst``; returns the
    page count.  tiffcp copies each page's coded data as it is, so the
    pixels are exactly the sources'."""
    if not paths:
        raise DocumentError("nothing to join")
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        run = _run([_tool("tiffcp", "libtiff-tools"), *map(str, paths), str(tmp)],
                   "joining documents", timeout)
        if run.returncode != 0 or not tmp.exists():
            raise DocumentError(f"tiffcp could not join the documents: {_one_line(run.stderr)}")
        pages = check_fax_tiff(tmp)
        _publish(tmp, dst)
        return pages
    finally:
        tmp.unlink(missing_ok=True)


def sniff_kind(path: Path) -> str | None:
    """"pdf", "postscript" or "tiff" from the file's first bytes (never its
    name: an upload's name says what its sender hoped), else None."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if head.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):
        return "tiff"
    if head.startswith(b"%!") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return "postscript"
    # PDF readers accept the header anywhere in the first kilobyte.
    if b"%PDF-" in head:
        return "pdf"
    return None


def to_fax_document(src: Path, dst: Path, *, paper: str = "a4", max_pages: int = 50) -> int:
    """Any document a library takes (PDF, PostScript or TIFF, told apart by
    their first bytes) as TIFF-F at ``dst``; the page count.  A TIFF that a
    fax machine takes already is copied as it is, every pixel kept.
    Raises DocumentError, leaving nothing at ``dst``, for anything else or
    for more than ``max_pages`` pages."""
    src, dst = Path(src), Path(dst)
    try:
        kind = sniff_kind(src)
    except OSError as exc:
        raise DocumentError(f"cannot read {src.name}: {exc.strerror}") from None
    if kind is None:
        raise DocumentError(f"{src.name} is not a PDF, PostScript or TIFF file")
    try:
        if kind == "tiff" and (pages := _fax_ready_pages(src)):
            tmp = dst.with_name(f".{dst.name}.tmp")
            try:
                shutil.copyfile(src, tmp)
                _publish(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
        elif kind == "tiff":
            pages = tiff_to_fax_tiff(src, dst, paper=paper, max_pages=max_pages)
        else:
            pages = to_fax_tiff(src, dst, paper=paper, max_pages=max_pages)
        if pages > max_pages:
            raise DocumentError(f"{src.name} has more than {max_pages} pages, the most a "
                                "fax document may have (fax.max_pages)")
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    return pages


def _fax_ready_pages(path: Path) -> int:
    """Pages of a TIFF a fax machine takes as it is (fax width, bilevel, a
    T.30 resolution); 0 if it needs rendering."""
    try:
        pages = tiff_pages(path)
        check_fax_tiff(path)
    except DocumentError:
        return 0
    ok = all(round(p["x_res"]) == 204 and round(p["y_res"]) in (98, 196, 391) for p in pages)
    return len(pages) if ok else 0


def to_pdf(tiff: Path, pdf: Path, *, timeout: float = 60.0) -> None:
    """A received fax as PDF (tiff2pdf keeps the G4 data, no re-rendering)."""
    tiff, pdf = Path(tiff), Path(pdf)
    tmp = pdf.with_name(f".{pdf.name}.tmp")
    try:
        run = _run([_tool("tiff2pdf", "libtiff-tools"), "-o", str(tmp), str(tiff)],
                   f"converting {tiff.name}", timeout)
        if run.returncode != 0 or not tmp.exists():
            raise DocumentError(f"tiff2pdf failed on {tiff.name}: {_one_line(run.stderr)}")
        _publish(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)


def same_pixels(a: Path, b: Path) -> bool:
    """Every page of `a` and `b` has the same size, resolution and pixels
    (encodings may differ: spandsp re-encodes what it receives)."""
    from sipagent.mediaports.tiffpages import read_pages

    pa, pb = read_pages(a), read_pages(b)
    return len(pa) == len(pb) and all(x == y for x, y in zip(pa, pb))
