"""Test documents and checks shared by the fax tests and benchmarks.

Pages are rendered by ghostscript from a small PostScript program, so each
test has a fresh multi-page TIFF-F (1728 px wide, 204x196 dpi, T.6) whose
pages differ from each other: a page swapped or lost shows up.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_PAGE_PS = """%!PS
/Helvetica findfont 28 scalefont setfont
1 1 {pages} {{ /p exch def
  72 760 moveto (sipacd fax test: page ) show p 3 string cvs show ( of {pages}) show
  0 1 {lines} {{ /i exch def
    72 720 i 22 mul sub moveto (Page ) show p 3 string cvs show (, line ) show
    i 3 string cvs show ( - the quick brown fox jumps over) show }} for
  newpath 80 60 moveto 520 60 p 40 mul add lineto 3 setlinewidth stroke
  showpage
}} for
"""


def make_document(path: Path, pages: int = 3, lines: int = 28) -> Path:
    """A `pages`-page TIFF-F at `path` (text lines, a diagonal that differs
    per page)."""
    gs = shutil.which("gs")
    assert gs, "ghostscript (Debian: ghostscript) is needed for fax test pages"
    ps = path.with_suffix(".ps")
    ps.write_text(_PAGE_PS.format(pages=pages, lines=lines))
    subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4",
                    "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage",
                    f"-sOutputFile={path}", str(ps)], check=True, timeout=60)
    return path


def assert_pixel_identical(sent: Path, received: Path) -> None:
    """Same page count, sizes, resolutions and every pixel."""
    from sipagent.mediaports.tiffpages import read_pages

    a, b = read_pages(sent), read_pages(received)
    assert len(b) == len(a), f"{len(a)} pages sent, {len(b)} received"
    for n, (pa, pb) in enumerate(zip(a, b), 1):
        assert (pb.width, pb.height) == (pa.width, pa.height), f"page {n} size differs"
        assert (pb.x_dpi, pb.y_dpi) == (pa.x_dpi, pa.y_dpi), f"page {n} resolution differs"
        if pb.bitmap != pa.bitmap:
            row = pa.width // 8 + (pa.width % 8 > 0)
            bad = sum(pa.bitmap[i:i + row] != pb.bitmap[i:i + row]
                      for i in range(0, len(pa.bitmap), row))
            raise AssertionError(f"page {n}: {bad} of {pa.height} rows differ")
