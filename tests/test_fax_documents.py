"""Documents for fax: PDF to TIFF-F, TIFF to PDF, pixel comparison."""

from __future__ import annotations

import subprocess

import pytest

from faxkit import make_document
from sipagent.fax import documents as fd


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    tif = make_document(d / "src.tif", pages=2, lines=4)
    subprocess.run(["ps2pdf", str(tif.with_suffix(".ps")), str(d / "src.pdf")], check=True, timeout=60)
    return d / "src.pdf"


def test_pdf_becomes_fine_resolution_tiff_f(pdf, tmp_path):
    out = tmp_path / "fax.tif"
    assert fd.to_fax_tiff(pdf, out) == 2
    pages = fd.tiff_pages(out)
    assert [(p["width"], p["x_res"], p["y_res"], p["bits"]) for p in pages] == [(1728, 204.0, 196.0, 1)] * 2
    assert pages[0]["compression"] == "CCITT Group 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fax.tif"]  # no temp file left


def test_pixel_comparison_sees_a_different_page(pdf, tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    fd.to_fax_tiff(pdf, a)
    fd.to_fax_tiff(pdf, b)
    assert fd.same_pixels(a, b)
    other = make_document(tmp_path / "other.tif", pages=2, lines=5)
    assert not fd.same_pixels(a, other)


def test_received_tiff_becomes_pdf(pdf, tmp_path):
    tif = tmp_path / "fax.tif"
    fd.to_fax_tiff(pdf, tif)
    fd.to_pdf(tif, tmp_path / "fax.pdf")
    assert (tmp_path / "fax.pdf").read_bytes().startswith(b"%PDF")


def test_not_a_document_is_refused_and_leaves_nothing(tmp_path):
    junk = tmp_path / "junk.pdf"
    junk.write_text("this is not a PDF")
    with pytest.raises(fd.DocumentError):
        fd.to_fax_tiff(junk, tmp_path / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.pdf"]
    with pytest.raises(fd.DocumentError):
        fd.check_fax_tiff(junk)


def test_letter_paper_is_shorter_and_as_wide(pdf, tmp_path):
    fd.to_fax_tiff(pdf, tmp_path / "letter.tif", paper="letter")
    fd.to_fax_tiff(pdf, tmp_path / "a4.tif")
    letter, a4 = fd.tiff_pages(tmp_path / "letter.tif"), fd.tiff_pages(tmp_path / "a4.tif")
    assert {(p["width"], p["length"]) for p in letter} == {(1728, 2156)}    # 11 in x 196
    assert {(p["width"], p["length"]) for p in a4} == {(1728, 2292)}        # 297 mm x 196
    with pytest.raises(ValueError):
        fd.to_fax_tiff(pdf, tmp_path / "x.tif", paper="legal")


def test_rendering_stops_past_max_pages(tmp_path):
    make_document(tmp_path / "long.tif", pages=6, lines=1)
    assert fd.to_fax_tiff(tmp_path / "long.ps", tmp_path / "out.tif", max_pages=2) == 3
    with pytest.raises(fd.DocumentError, match="more than 2 pages"):
        fd.to_fax_document(tmp_path / "long.ps", tmp_path / "doc.tif", max_pages=2)
    assert not (tmp_path / "doc.tif").exists()


def test_join_keeps_every_page_and_pixel_in_order(tmp_path):
    a = make_document(tmp_path / "a.tif", pages=2, lines=3)
    b = make_document(tmp_path / "b.tif", pages=1, lines=7)
    from sipagent.mediaports.tiffpages import read_pages

    assert fd.join_tiffs([b, a, b], tmp_path / "joined.tif") == 4
    assert read_pages(tmp_path / "joined.tif") == read_pages(b) + read_pages(a) + read_pages(b)
    with pytest.raises(fd.DocumentError):
        fd.join_tiffs([a, tmp_path / "missing.tif"], tmp_path / "bad.tif")
    with pytest.raises(fd.DocumentError):
        fd.join_tiffs([], tmp_path / "bad.tif")
    assert sorted(p.name for p in tmp_path.glob("*.tif")) == ["a.tif", "b.tif", "joined.tif"]
    assert not list(tmp_path.glob(".*"))


def test_any_tiff_becomes_a_fax_tiff_and_kinds_come_from_the_bytes(tmp_path):
    make_document(tmp_path / "src.tif", pages=2, lines=2)
    grey = tmp_path / "grey.tif"
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffgray", "-r100",
                    f"-sOutputFile={grey}", str(tmp_path / "src.ps")], check=True, timeout=60)
    assert fd.tiff_pages(grey)[0]["bits"] == 8
    assert fd.tiff_to_fax_tiff(grey, tmp_path / "fax.tif") == 2
    assert {(p["width"], p["bits"]) for p in fd.tiff_pages(tmp_path / "fax.tif")} == {(1728, 1)}
    # A fax TIFF is taken as it is; a grey one is rendered.
    assert fd.to_fax_document(tmp_path / "src.tif", tmp_path / "kept.tif") == 2
    assert (tmp_path / "kept.tif").read_bytes() == (tmp_path / "src.tif").read_bytes()
    assert fd.to_fax_document(grey, tmp_path / "rendered.tif") == 2
    renamed = tmp_path / "really-a-tiff.pdf"
    renamed.write_bytes(grey.read_bytes())
    assert [fd.sniff_kind(p) for p in (grey, renamed, tmp_path / "src.ps", tmp_path / "fax.tif")
            ] == ["tiff", "tiff", "postscript", "tiff"]
    (tmp_path / "junk.tif").write_bytes(b"II*\0 but nothing more")
    with pytest.raises(fd.DocumentError, match="not a TIFF that libtiff can read"):
        fd.to_fax_document(tmp_path / "junk.tif", tmp_path / "junk-out.tif")
    assert not list(tmp_path.glob(".*")) and not (tmp_path / "junk-out.tif").exists()
