"""``sipacd fax``: the library, jobs and log from the command line, on the
data folder of a real config file."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faxkit import make_document
from sipagent.cli.fax import main
from sipagent.fax.store import FaxStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """A 2-page PDF, a 5-page PostScript file (over the limit of 3) and a
    text file."""
    d = tmp_path_factory.mktemp("cli-docs")
    make_document(d / "two.tif", pages=2, lines=3)
    make_document(d / "five.tif", pages=5, lines=2)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={d / 'two.pdf'}", str(d / "two.ps")], check=True, timeout=60)
    (d / "readme.txt").write_text("not a document\n")
    return {"pdf": d / "two.pdf", "ps5": d / "five.ps", "tiff": d / "two.tif",
            "text": d / "readme.txt"}


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "sipacd.toml"
    path.write_text('[data]\ndir = "data"\n[fax]\nmax_pages = 3\npaper = "letter"\n')
    return path


def fax(config: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = main(["-c", str(config), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def open_store(config: Path) -> FaxStore:
    return FaxStore(config.parent / "data")


def test_documents_added_listed_replaced_protected_and_removed(config, docs, capsys,
                                                               monkeypatch):
    assert fax(config, "docs", "list", capsys=capsys) == (0, "(none)\n", "")
    code, out, _ = fax(config, "docs", "add", "101", docs["pdf"], "--title", "Price list",
                       capsys=capsys)
    assert (code, out) == (0, "document 101 added: 2 pages\n")
    code, out, _ = fax(config, "docs", "add", "7", docs["tiff"], "--pin", "4711", capsys=capsys)
    assert (code, out) == (0, "document 7 added: 2 pages, protected by a PIN\n")
    code, out, _ = fax(config, "docs", "list", capsys=capsys)
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["NUMBER", "TITLE", "PAGES", "PROTECTED"], ["7", "2", "yes"],
        ["101", "Price", "list", "2", "no"]]
    # -c after the subcommand works too.
    assert main(["docs", "list", "-c", str(config)]) == 0
    assert "Price list" in capsys.readouterr().out

    assert fax(config, "docs", "replace", "101", docs["tiff"], "--title", "New prices",
               capsys=capsys)[:2] == (0, "document 101 replaced: 2 pages\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    assert fax(config, "docs", "pin", "101", "-", capsys=capsys)[:2] == (
        0, "document 101: PIN set\n")
    assert fax(config, "docs", "pin", "7", "--clear", capsys=capsys)[:2] == (
        0, "document 7: public now\n")
    store = open_store(config)
    try:
        assert [(d.number, d.title, d.protected) for d in store.documents()] == [
            ("7", "", False), ("101", "New prices", True)]
        assert store.check_access("101", "2468").pages == 2
        assert {p for d in store.documents() for p in [d.path.name]} == set(
            os.listdir(store.documents_dir))
    finally:
        store.close()
    assert fax(config, "docs", "remove", "7", capsys=capsys)[:2] == (0, "document 7 removed\n")
    code, out, _ = fax(config, "docs", "list", capsys=capsys)
    assert [line.split()[0] for line in out.splitlines()] == ["NUMBER", "101"]


@pytest.mark.parametrize("args, message", [
    (("docs", "add", "5", "{text}"), "readme.txt is not a PDF, PostScript or TIFF file"),
    (("docs", "add", "5", "{ps5}"), "has more than 3 pages"),
    (("docs", "add", "5", "{pdf}", "--pin", "12"), "a PIN is 4 to 12 digits"),
    (("docs", "add", "x5", "{pdf}"), "a document number is 1 to 10 digits"),
    (("docs", "add", "101", "{pdf}"), "document 101 exists already"),
    (("docs", "replace", "9", "{pdf}"), "no document 9"),
    (("docs", "remove", "9"), "no document 9"),
    (("docs", "pin", "9", "1234"), "no document 9"),
    (("job", "0123"), "no fax job 0123"),
    (("jobs", "cancel", "f" * 32), f"no fax job {'f' * 32}"),
])
def test_errors_are_one_line_and_exit_2(config, docs, capsys, args, message):
    assert fax(config, "docs", "add", "101", docs["pdf"], capsys=capsys)[0] == 0
    code, out, err = fax(config, *[a.format(**docs) for a in args], capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("sipacd fax: ") and message in err and err.count("\n") == 1
    store = open_store(config)
    try:
        assert [d.number for d in store.documents()] == ["101"]
        assert len(os.listdir(store.documents_dir)) == 1     # nothing left behind
    finally:
        store.close()


def test_usage_and_config_errors_exit_2(tmp_path, config, capsys):
    assert main(["docs", "list"]) == 2
    assert "-c/--config is required" in capsys.readouterr().err
    assert main(["-c", str(tmp_path / "missing.toml"), "docs", "list"]) == 2
    assert capsys.readouterr().err.startswith("sipacd: ")
    bad = tmp_path / "bad.toml"
    bad.write_text("[fax]\nmax_pages = 0\n")
    assert main(["-c", str(bad), "docs", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sipacd: ") and "max_pages" in err
    assert main(["-c", str(config), "jobs", "--state", "lost"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["-c", str(config), "docs", "pin", "1"]) == 2
    assert main(["-c", str(config), "log", "--limit", "0"]) == 2
    assert main(["-c", str(config), "--help"]) == 0


def test_jobs_job_cancel_and_log(config, docs, capsys):
    # The store stays open, as the engine's would: the CLI beside it must not
    # put the job being sent back in the queue.
    store = open_store(config)
    store.add_document("1", docs["tiff"])
    first = store.create_job("+4930111", ["1"], call_id="call-1", not_before=4e9)
    second = store.create_job("0302222", ["1", "1"])
    assert store.claim_due_job(second.created + 1).id == second.id
    ids = [store.new_fax_id() for _ in range(2)]
    store.record_fax(ids[0], "send", {"ok": True, "pages": 2, "line_seconds": 30.2},
                     call_id="c1", remote="+4930111", started=1.7e9, documents=["1"])
    store.record_fax(ids[1], "receive", {"ok": False, "status_text": "No carrier"},
                     call_id="c2", remote="+4930999", started=1.7e9 + 60)
    try:
        code, out, _ = fax(config, "jobs", capsys=capsys)
        rows = [line.split() for line in out.splitlines()]
        assert code == 0 and rows[0][:4] == ["ID", "STATE", "NUMBER", "DOCUMENTS"]
        assert {(r[0], r[1], r[2], r[3], r[5]) for r in rows[1:]} == {
            (first.id, "queued", "+4930111", "1", "0/2"),
            (second.id, "sending", "0302222", "1,1", "0/4")}
        code, out, _ = fax(config, "jobs", "--state", "sending", capsys=capsys)
        assert [r.split()[0] for r in out.splitlines()[1:]] == [second.id]
        code, out, _ = fax(config, "job", first.id, capsys=capsys)
        assert code == 0 and f"id:           {first.id}" in out and "call-1" in out
        assert "pages:        0 of 2 confirmed" in out
        code, _, err = fax(config, "jobs", "cancel", second.id, capsys=capsys)
        assert code == 2 and "only a queued job can be cancelled" in err
        assert fax(config, "jobs", "cancel", first.id, capsys=capsys)[:2] == (
            0, f"job {first.id} cancelled\n")
        assert fax(config, "jobs", "--state", "queued", capsys=capsys)[1] == "(none)\n"
        assert store.job(first.id).state == "cancelled" and not first.path.exists()
        assert store.job(second.id).state == "sending" and second.path.exists()
    finally:
        store.close()

    code, out, _ = fax(config, "log", capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "DIRECTION", "RESULT"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [ids[1], "receive", "failed:"], [ids[0], "send", "ok"]]
    assert "No carrier" in lines[1]
    code, out, _ = fax(config, "log", "--direction", "send", "--limit", "5", capsys=capsys)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [ids[0]]
    code, out, _ = fax(config, "log", "--limit", "1", capsys=capsys)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [ids[1]]


def test_sipacd_fax_runs_as_a_subcommand(config, docs):
    def sipacd(*args):
        return subprocess.run([sys.executable, "-m", "sipagent", "fax", "-c", str(config),
                               *map(str, args)], cwd=REPO, capture_output=True, text=True,
                              timeout=60)
    added = sipacd("docs", "add", "42", docs["pdf"], "--title", "Menu")
    assert (added.returncode, added.stdout, added.stderr) == (0, "document 42 added: 2 pages\n",
                                                              "")
    listed = sipacd("docs", "list")
    assert listed.returncode == 0 and "Menu" in listed.stdout
    refused = sipacd("docs", "add", "43", docs["text"])
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == "sipacd fax: readme.txt is not a PDF, PostScript or TIFF file\n"
