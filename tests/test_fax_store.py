"""The fax store on real files: ghostscript and libtiff convert, SQLite
indexes, and what a crash or a refusal leaves behind."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from faxkit import make_document
from sipagent.fax.documents import same_pixels, tiff_pages
from sipagent.fax.jobs import SHARED_SENDING_STALE
from sipagent.fax.store import (SHARED_STRAY_AGE, DocumentExists, DocumentRejected,
                                FaxAccessDenied, FaxStore, FaxStoreError, JobBusy,
                                NoSuchDocument, NoSuchFax, NoSuchJob)
from sipagent.mediaports.tiffpages import read_pages

pytest_plugins = ["storekit"]     # store_place: SQLite and PostgreSQL

# Each page says its number and the document's name and carries a bar whose
# length depends on both: a page lost, swapped or taken from the wrong
# document changes the pixels.
PAGES_PS = """%!PS
/Helvetica findfont 36 scalefont setfont
1 1 {pages} {{ /p exch def
  72 700 moveto ({name} page ) show p 3 string cvs show
  newpath 72 600 moveto 100 p 60 mul add {width} add 600 lineto 8 setlinewidth stroke
  showpage }} for
"""


def postscript(path: Path, pages: int, name: str = "doc", width: int = 0) -> Path:
    path.write_text(PAGES_PS.format(pages=pages, name=name, width=width))
    return path


def pdf(path: Path, pages: int, name: str = "doc", width: int = 0) -> Path:
    ps = postscript(path.with_suffix(".ps"), pages, name, width)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={path}", str(ps)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Source documents shared by the tests (never changed by them)."""
    d = tmp_path_factory.mktemp("sources")
    grey = d / "grey.tif"
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffgray", "-r72",
                    "-sPAPERSIZE=a4", f"-sOutputFile={grey}",
                    str(postscript(d / "grey.ps", 2, "grey"))], check=True, timeout=60)
    text = d / "notes.pdf"
    text.write_text("Just some notes, not a PDF at all.\n")
    empty = d / "empty.pdf"
    empty.write_bytes(b"")
    corrupt = d / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\n%%EOF\n")
    return {"pdf2": pdf(d / "two.pdf", 2, "two"), "pdf3": pdf(d / "three.pdf", 3, "three", 40),
            "pdf5": pdf(d / "five.pdf", 5, "five"), "ps": postscript(d / "one.ps", 1, "one"),
            "fax_tiff": make_document(d / "fax.tif", pages=2, lines=6), "grey": grey,
            "text": text, "empty": empty, "corrupt": corrupt}


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(clock, store_place):
    s = FaxStore(store_place, max_pages=4, clock=clock)
    yield s
    s.close()


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- the library ----------------------------------------------------------------------

def test_pdf_postscript_and_tiff_become_fax_documents(store, src):
    a = store.add_document("101", src["pdf2"], title="Price list")
    b = store.add_document("7", src["ps"])
    c = store.add_document("102", src["fax_tiff"])
    d = store.add_document("103", src["grey"], title="Scanned")
    assert [(x.number, x.title, x.pages, x.protected) for x in store.documents()] == [
        ("7", "", 1, False), ("101", "Price list", 2, False), ("102", "", 2, False),
        ("103", "Scanned", 2, False)]
    for doc in (a, b, c, d):
        assert doc.path.parent == store.documents_dir and doc.size == doc.path.stat().st_size
        assert {(p["width"], p["bits"], p["x_res"]) for p in tiff_pages(doc.path)} == {
            (1728, 1, 204.0)}
    assert {p["y_res"] for p in tiff_pages(a.path)} == {196.0}
    # A TIFF a fax machine takes already is kept as it is, byte for byte.
    assert c.path.read_bytes() == src["fax_tiff"].read_bytes()
    assert files(store.documents_dir) == sorted(x.path.name for x in (a, b, c, d))
    assert store.document("101") == a


def test_paper_size_decides_the_page_length(tmp_path, src):
    lengths = {}
    for paper in ("a4", "letter"):
        with_paper = FaxStore(tmp_path / paper, paper=paper)
        doc = with_paper.add_document("1", src["pdf2"])
        lengths[paper] = {p["length"] for p in tiff_pages(doc.path)}
        with_paper.close()
    # 297 mm and 11 in at 196 lines per inch.
    assert lengths == {"a4": {2292}, "letter": {2156}}
    with pytest.raises(ValueError):
        FaxStore(tmp_path / "x", paper="legal")


@pytest.mark.parametrize("kind, message", [
    ("text", "is not a PDF, PostScript or TIFF file"),
    ("empty", "is not a PDF, PostScript or TIFF file"),
    ("corrupt", "ghostscript could not render corrupt.pdf"),
    ("pdf5", "has more than 4 pages"),
])
def test_a_refused_document_leaves_no_row_and_no_file(store, src, kind, message):
    with pytest.raises(DocumentRejected, match=message):
        store.add_document("200", src[kind], title="x")
    assert store.documents() == []
    assert files(store.documents_dir) == []
    with pytest.raises(NoSuchDocument):
        store.document("200")


def test_numbers_titles_and_pins_are_checked_before_any_work(store, src):
    store.add_document("5", src["ps"])
    with pytest.raises(DocumentExists):
        store.add_document("5", src["pdf2"])
    for bad in ("", "12a", "../5", "12345678901"):
        with pytest.raises(FaxStoreError, match="1 to 10 digits"):
            store.add_document(bad, src["ps"])
    with pytest.raises(FaxStoreError, match="PIN is 4 to 12 digits"):
        store.add_document("6", src["ps"], pin="12")
    with pytest.raises(FaxStoreError, match="title"):
        store.add_document("6", src["ps"], title="line\nbreak")
    with pytest.raises(DocumentRejected, match="cannot read"):
        store.add_document("6", src["ps"].with_name("missing.pdf"))
    assert [d.number for d in store.documents()] == ["5"]
    assert len(files(store.documents_dir)) == 1


def test_replace_keeps_number_title_and_pin_and_drops_the_old_file(store, src, clock):
    old = store.add_document("300", src["pdf2"], title="Menu", pin="4711")
    clock.now += 60
    new = store.replace_document("300", src["pdf3"])
    assert (new.pages, new.title, new.protected) == (3, "Menu", True)
    assert (new.added, new.updated) == (old.added, old.added + 60)
    assert new.path != old.path and not old.path.exists()
    assert files(store.documents_dir) == [new.path.name]
    assert store.check_access("300", "4711") == new
    assert store.replace_document("300", src["ps"], title="Short").title == "Short"
    # A refused replacement changes nothing.
    current = store.document("300")
    with pytest.raises(DocumentRejected):
        store.replace_document("300", src["text"])
    assert store.document("300") == current and files(store.documents_dir) == [
        current.path.name]
    with pytest.raises(NoSuchDocument):
        store.replace_document("301", src["ps"])


def test_remove_deletes_row_and_file(store, src):
    doc = store.add_document("400", src["ps"])
    store.remove_document("400")
    assert store.documents() == [] and not doc.path.exists()
    with pytest.raises(NoSuchDocument):
        store.remove_document("400")


def test_access_with_without_and_with_a_wrong_pin(src, clock, store_place):
    store = FaxStore(store_place, clock=clock, pin_attempts=3, lockout=600)
    store.add_document("1", src["ps"])
    store.add_document("2", src["ps"], pin="1234")
    assert store.check_access("1", None).number == "1"
    assert store.check_access("1", "9999").number == "1"   # a public document ignores it
    with pytest.raises(FaxAccessDenied, match="needs its PIN"):
        store.check_access("2", None)
    with pytest.raises(FaxAccessDenied, match="wrong PIN"):
        store.check_access("2", "4321")
    assert store.check_access("2", "1234").protected
    with pytest.raises(NoSuchDocument):
        store.check_access("3", "1234")
    # Three wrong in a row lock the document, even against the right PIN.
    for _ in range(3):
        with pytest.raises(FaxAccessDenied, match="wrong PIN"):
            store.check_access("2", "0000")
    with pytest.raises(FaxAccessDenied, match="locked"):
        store.check_access("2", "1234")
    clock.now += 601
    assert store.check_access("2", "1234").number == "2"
    # The PIN can be changed and taken away.
    assert store.set_document_pin("2", "5678").protected
    with pytest.raises(FaxAccessDenied):
        store.check_access("2", "1234")
    assert not store.set_document_pin("2", None).protected
    assert store.check_access("2", None).number == "2"
    with pytest.raises(NoSuchDocument):
        store.set_document_pin("9", "1234")
    store.close()


def test_compose_joins_pages_pixel_identical_to_the_sources(store, src, tmp_path):
    a = store.add_document("1", src["pdf2"])
    b = store.add_document("2", src["pdf3"])
    out = tmp_path / "sent.tif"
    assert store.compose(["2", "1"], out) == 5
    assert read_pages(out) == read_pages(b.path) + read_pages(a.path)
    assert store.compose(["1"], tmp_path / "one.tif") == 2
    assert same_pixels(tmp_path / "one.tif", a.path)
    assert not same_pixels(tmp_path / "one.tif", b.path)
    with pytest.raises(NoSuchDocument):
        store.compose(["1", "3"], tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["one.tif", "sent.tif"]


# -- faxes ----------------------------------------------------------------------------

RESULT = {"ok": True, "status": 0, "status_text": "OK", "pages": 2, "bit_rate": 14400,
          "ecm": True, "resolution": "R8/fine", "remote_ident": "REMOTE 1",
          "line_seconds": 41.5}


def test_a_received_fax_is_filed_and_its_notifications_queued(store, src, clock):
    fax_id = store.new_fax_id()
    tmp, tiff, pdf_path = store.received_paths(fax_id)
    assert tmp.name.startswith(".") and tmp.parent == tiff.parent == store.received_dir
    shutil.copyfile(src["fax_tiff"], tmp)     # what the modem writes
    assert store.file_received(fax_id) == (tiff, pdf_path)
    assert not tmp.exists() and same_pixels(tiff, src["fax_tiff"])
    assert pdf_path.read_bytes().startswith(b"%PDF")
    clock.now += 50
    rec = store.record_fax(fax_id, "receive", RESULT, call_id="c1@pbx", remote="+4930111",
                           started=clock.now - 45, tiff=tiff, pdf=pdf_path,
                           emails=["faxes@example.com"], webhook="https://crm.example/h")
    assert (rec.ok, rec.pages, rec.bit_rate, rec.ecm, rec.seconds, rec.remote_ident) == (
        True, 2, 14400, True, 41.5, "REMOTE 1")
    assert (rec.tiff, rec.pdf, rec.ended, rec.documents, rec.job_id) == (
        tiff, pdf_path, clock.now, (), None)
    assert store.fax(fax_id) == rec
    due = store.outbox.due(clock.now)
    assert sorted((n.item_id, n.scope, n.channel, n.target) for n in due) == [
        (fax_id, "fax", "email", '["faxes@example.com"]'),
        (fax_id, "fax", "webhook", "https://crm.example/h")]
    with pytest.raises(FaxStoreError, match="recorded already"):
        store.record_fax(fax_id, "receive", RESULT, call_id="c1", remote="x", started=0)
    assert store.outbox.pending() == 2


def test_an_unreadable_received_fax_is_refused_and_removed(store):
    fax_id = store.new_fax_id()
    tmp, tiff, pdf_path = store.received_paths(fax_id)
    tmp.write_bytes(b"II*\0 half a header")
    with pytest.raises(DocumentRejected, match="unreadable"):
        store.file_received(fax_id)
    assert files(store.received_dir) == []
    with pytest.raises(DocumentRejected):
        store.file_received(store.new_fax_id())     # the modem wrote nothing
    with pytest.raises(FaxStoreError):
        store.received_paths("../../etc/passwd")


def test_fax_log_newest_first_by_direction_and_nothing_half_recorded(store, clock, tmp_path):
    ids = []
    for n, direction in enumerate(["send", "receive", "send"]):
        clock.now += 10
        ids.append(store.new_fax_id())
        store.record_fax(ids[-1], direction, {**RESULT, "ok": n != 2, "status": 3 * n},
                         call_id=f"c{n}", remote="+4930", started=clock.now - 5,
                         documents=["101", "102"] if direction == "send" else ())
    assert [f.id for f in store.faxes()] == ids[::-1]
    assert [f.id for f in store.faxes("send")] == [ids[2], ids[0]]
    assert [f.id for f in store.faxes(limit=1)] == [ids[2]]
    assert store.fax(ids[2]).ok is False and store.fax(ids[0]).documents == ("101", "102")
    # A file outside the received folder is refused, and with it the notifications.
    stray = tmp_path / "elsewhere.tif"
    with pytest.raises(FaxStoreError, match="not in"):
        store.record_fax(store.new_fax_id(), "receive", RESULT, call_id="c9", remote="x",
                         started=0, tiff=stray, emails=["a@example.com"])
    assert store.outbox.pending() == 0 and len(store.faxes()) == 3
    with pytest.raises(NoSuchFax):
        store.fax("0" * 32)
    with pytest.raises(FaxStoreError):
        store.faxes("sideways")


# -- two-call jobs --------------------------------------------------------------------

def test_job_lifecycle_claim_retry_done_and_cancel(store, src, clock):
    store.add_document("1", src["pdf2"])
    store.add_document("2", src["ps"], pin="1234")
    job = store.create_job("+4930123456", ["1", "2"], pins={"2": "1234"}, call_id="c7",
                           not_before=clock.now + 100)
    assert (job.state, job.attempts, job.pages_total, job.next_attempt, job.call_id) == (
        "queued", 0, 3, clock.now + 100, "c7")
    assert read_pages(job.path) == read_pages(store.document("1").path) + read_pages(
        store.document("2").path)
    assert store.next_due() == clock.now + 100
    assert store.claim_due_job(clock.now) is None
    claimed = store.claim_due_job(clock.now + 100)
    assert (claimed.id, claimed.state, claimed.attempts) == (job.id, "sending", 1)
    assert store.next_due() is None and store.claim_due_job(clock.now + 1000) is None
    with pytest.raises(JobBusy):
        store.cancel_job(job.id)
    retry = store.finish_attempt(job.id, pages_confirmed=1, state="queued",
                                 next_attempt=clock.now + 300, status="busy")
    assert (retry.state, retry.pages_confirmed, retry.last_status) == ("queued", 1, "busy")
    assert retry.path.exists()
    claimed = store.claim_due_job(clock.now + 300)
    assert claimed.attempts == 2
    done = store.finish_attempt(job.id, pages_confirmed=3, state="done", next_attempt=None,
                                status="OK")
    assert (done.state, done.pages_confirmed, done.next_attempt) == ("done", 3, None)
    assert not done.path.exists() and files(store.jobs_dir) == []
    with pytest.raises(JobBusy):
        store.cancel_job(job.id)
    with pytest.raises(JobBusy):
        store.finish_attempt(job.id, pages_confirmed=3, state="done", next_attempt=None,
                             status="again")
    other = store.create_job("0301234", ["1"])
    cancelled = store.cancel_job(other.id)
    assert cancelled.state == "cancelled" and not cancelled.path.exists()
    failing = store.create_job("0301234", ["1"])
    store.claim_due_job(clock.now)
    assert store.finish_attempt(failing.id, pages_confirmed=0, state="failed",
                                next_attempt=None, status="no answer").state == "failed"
    assert [j.state for j in store.jobs()] == ["failed", "cancelled", "done"]
    assert store.job_counts() == {"queued": 0, "sending": 0, "done": 1, "failed": 1,
                                  "cancelled": 1}
    assert [j.id for j in store.jobs("cancelled")] == [other.id]
    with pytest.raises(NoSuchJob):
        store.job("f" * 32)
    with pytest.raises(NoSuchJob):
        store.cancel_job("nope")


def test_a_refused_job_leaves_nothing(store, src):
    store.add_document("1", src["ps"])
    store.add_document("2", src["ps"], pin="1234")
    with pytest.raises(FaxStoreError, match="not a fax number"):
        store.create_job("sip:x@y", ["1"])
    with pytest.raises(FaxStoreError, match="at least one"):
        store.create_job("0301234", [])
    with pytest.raises(NoSuchDocument):
        store.create_job("0301234", ["1", "9"])
    with pytest.raises(FaxAccessDenied):
        store.create_job("0301234", ["1", "2"])
    with pytest.raises(FaxAccessDenied):
        store.create_job("0301234", ["2"], pins={"2": "0000"})
    assert store.jobs() == [] and files(store.jobs_dir) == []


def test_a_job_left_sending_by_a_crash_is_queued_again_at_restart(src, clock, store_place):
    store = FaxStore(store_place, clock=clock)
    store.add_document("1", src["ps"])
    job = store.create_job("0301234", ["1"])
    store.claim_due_job(clock.now)
    store.close()                      # the process dies mid-call
    clock.now += 500
    if store_place.database is not None:
        # Shared with other nodes: the claim may be another node's call for an hour.
        again = FaxStore(store_place, clock=clock)
        assert again.jobs_resumed == 0 and again.job(job.id).state == "sending"
        again.close()
        clock.now += SHARED_SENDING_STALE
    again = FaxStore(store_place, clock=clock)
    assert again.jobs_resumed == 1
    resumed = again.job(job.id)
    assert (resumed.state, resumed.next_attempt, resumed.attempts) == ("queued", clock.now, 1)
    assert resumed.path.exists()
    assert again.claim_due_job(clock.now).attempts == 2
    again.close()


def test_strays_are_swept_at_open_but_not_under_a_running_store(src, clock, store_place):
    store = FaxStore(store_place, clock=clock)
    doc = store.add_document("1", src["ps"])
    job = store.create_job("0301234", ["1"])
    fax_id = store.new_fax_id()
    tmp, tiff, pdf_path = store.received_paths(fax_id)
    shutil.copyfile(src["fax_tiff"], tmp)
    store.file_received(fax_id)
    store.record_fax(fax_id, "receive", RESULT, call_id="c", remote="r", started=0,
                     tiff=tiff, pdf=pdf_path)
    strays = [store.documents_dir / ".1-abc.tif.tmp", store.documents_dir / "9-old.tif",
              store.received_dir / f".{'a' * 32}.tmp.tif", store.received_dir / "lost.pdf",
              store.jobs_dir / f"{'b' * 32}.tif"]
    for path in strays:
        path.write_bytes(b"x")
    # Another store on the same folder (the CLI beside the engine) leaves them:
    # they could be the engine's unfinished files.
    beside = FaxStore(store_place, clock=clock)
    assert beside.strays_removed == 0 and beside.clean_strays() == 0
    assert all(p.exists() for p in strays)
    beside.close()
    store.close()
    reopened = FaxStore(store_place, clock=clock)
    if store_place.database is not None:
        # A shared folder: young files may be another node's work under way.
        assert reopened.strays_removed == 0 and all(p.exists() for p in strays)
        for path in strays:
            os.utime(path, (time.time() - SHARED_STRAY_AGE - 1,) * 2)
        reopened.strays_removed = reopened.clean_strays()
    assert reopened.strays_removed == len(strays)
    assert not any(p.exists() for p in strays)
    assert files(reopened.documents_dir) == [doc.path.name]
    assert files(reopened.jobs_dir) == [job.path.name]
    assert files(reopened.received_dir) == sorted([tiff.name, pdf_path.name])
    reopened.close()


@pytest.mark.postgres
def test_a_shared_store_takes_back_only_a_dead_nodes_claims(pg_place, src, clock):
    node_a, node_b = FaxStore(pg_place, clock=clock), FaxStore(pg_place, clock=clock)
    node_a.add_document("1", src["ps"])
    job = node_a.create_job("0301234", ["1"])
    assert node_a.claim_due_job(clock.now).id == job.id
    # Node b's passes leave a's call alone while it may be under way...
    clock.now += SHARED_SENDING_STALE - 1
    assert node_b.claim_due_job(clock.now) is None
    # ...and take it once the claim is too old to be a live call (a died).
    clock.now += 2
    again = node_b.claim_due_job(clock.now)
    assert (again.id, again.state, again.attempts) == (job.id, "sending", 2)
    node_a.close()
    node_b.close()
