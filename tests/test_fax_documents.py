"""Documents for fax: PDF to TIFF-F, TIFF to PDF, pixel comparison."""

from __future__ import annotations

import subprocess

import pytest

from faxkit import make_document
from sipagent import fax_documents as fd


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
