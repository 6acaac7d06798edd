"""Fax through the engine over real SIP on 127.0.0.1, against fax terminals
in other processes (simphones/fax_machine.py: spandsp behind pjsua2, like a fax
machine behind an ATA):

- one-call fax-on-demand: the terminal keys a document number (RFC 4733),
  "presses Start", and receives the library's TIFF pixel for pixel;
- a protected document keyed without its PIN is refused, nothing is sent;
- two-call: a job waits out closed delivery hours across an engine restart,
  then goes out by the engine's own call;
- a receiver that hangs up mid-page: the attempt is filed with T.30's
  status, and the retry sends only the pages not confirmed;
- a fax number: a terminal sends, the engine files TIFF and PDF and mails
  the PDF (aiosmtpd).
"""
from __future__ import annotations

import json
import shutil
import time
import urllib.request
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from engine_proc import Engine, base_config
from faxkit import FaxUA, assert_pixel_identical, make_document, run_sipp_t38
from sipagent.fax.store import FaxStore
from sipagent.mediaports.tiffpages import read_pages

pytestmark = [pytest.mark.sip, pytest.mark.slow]

ADMIN = "fax-admin-token-0123456789"
FAX_TIMEOUT = 180            # one fax of 2-3 light pages takes 30-60 s of line time
OPEN = {"timezone": "UTC", "hours": {"daily": "00:00-24:00"}}
CLOSED = {"timezone": "UTC", "hours": {}}


def _config(ports, workdir, prompts_dir, *, routes=(), fax=None, **sections):
    cfg = base_config(ports, workdir, prompts_dir, **sections)
    cfg["routes"] = list(cfg["routes"]) + list(routes)
    cfg["http"]["tokens"] = {"admin": {"role": "admin", "token": ADMIN}}
    cfg["fax"] = {"ident": "SIPACD TEST", **(fax or {})}
    return cfg


def _library(workdir, documents: dict) -> dict:
    """Documents added before the engine starts: number -> library TIFF."""
    store = FaxStore(workdir / "data")
    try:
        return {number: store.add_document(number, source, pin=pin).path
                for number, (source, pin) in documents.items()}
    finally:
        store.close()


def _api(engine, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{engine.http_port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _wait_job(engine, job_id, timeout, **want):
    deadline = time.monotonic() + timeout
    while True:
        job = _api(engine, "GET", f"/api/fax/jobs/{job_id}")
        if all(job.get(k) == v for k, v in want.items()):
            return job
        assert time.monotonic() < deadline, f"job never reached {want}: {job}"
        time.sleep(0.5)


def _terminal(name, workdir, ports, *args, sip_port=None):
    return FaxUA(name, workdir, "--port", str(sip_port or ports()), "--rtp-port",
                 str(ports.block(4)), "--timeout", str(FAX_TIMEOUT), *args)


@pytest.fixture(scope="module")
def two_pages(tmp_path_factory):
    return make_document(tmp_path_factory.mktemp("fod") / "two.tif", pages=2, lines=5)


@pytest.fixture(scope="module")
def three_pages(tmp_path_factory):
    return make_document(tmp_path_factory.mktemp("fod") / "three.tif", pages=3, lines=5)


def test_one_call_fax_on_demand_delivers_the_library_document(two_pages, workdir, ports,
                                                              prompts_dir):
    library = _library(workdir, {"101": (two_pages, None)})
    route = {"number": "300", "flow": "fax_on_demand", "fax": True,
             "vars": {"fax_mode": "one-call"}}
    received = workdir / "received.tif"
    with Engine(workdir, _config(ports, workdir, prompts_dir, routes=[route])) as engine:
        # The caller keys 101#, then 2 (no more documents), and presses
        # Start a few seconds later: their machine answers in T.30.
        with _terminal("caller", workdir, ports, "--dial", engine.number("300"),
                       "--mode", "receive", "--tiff", str(received), "--t30", "answering",
                       "--ident", "CALLER FAX", "--dtmf", "101#2", "--fax-after", "6") as fax:
            got = fax.wait_event("fax", FAX_TIMEOUT + 10)
            fax.wait_event("exit", 20)
        assert got["ok"], got
        assert got["pages"] == 2 and got["remote_ident"] == "SIPACD TEST"
        assert engine.wait_metric("sipacd_fax_total", 1, direction="send", result="ok") == 1
        assert engine.metric("sipacd_fax_pages_total", direction="send") == 2
        log = _api(engine, "GET", "/api/fax/log?direction=send")
    assert_pixel_identical(library["101"], received)
    (entry,) = log["faxes"]
    assert entry["ok"] and entry["pages"] == 2 and entry["documents"] == ["101"]
    assert entry["remote_ident"] == "CALLER FAX"


def test_a_protected_document_is_refused_without_its_pin(two_pages, workdir, ports,
                                                         prompts_dir):
    _library(workdir, {"102": (two_pages, "4711")})
    route = {"number": "300", "flow": "fax_on_demand", "fax": True,
             "vars": {"fax_mode": "one-call"}}
    with Engine(workdir, _config(ports, workdir, prompts_dir, routes=[route])) as engine:
        with _terminal("caller", workdir, ports, "--dial", engine.number("300"),
                       "--mode", "receive", "--tiff", str(workdir / "never.tif"),
                       "--t30", "answering", "--dtmf", "102#1111#2222#3333#",
                       "--fax-after", "3") as fax:
            got = fax.wait_event("fax", 90)     # the engine says goodbye and hangs up
        assert not got["ok"] and got.get("pages", 0) == 0
        refusals = [e for e in engine.log_events() if e.get("event") == "fax document PIN refused"]
        assert len(refusals) == 3 and {e["document"] for e in refusals} == {"102"}
        assert engine.metric("sipacd_fax_total", direction="send", result="ok") == 0
        assert engine.metric("sipacd_fax_total", direction="send", result="failed") == 0
        assert not any(e.get("event") == "fax sending" for e in engine.log_events())


def test_two_call_job_waits_for_delivery_hours_and_survives_a_restart(two_pages, workdir,
                                                                       ports, prompts_dir):
    library = _library(workdir, {"101": (two_pages, None)})
    machine_port = ports()
    route = {"number": "300", "flow": "fax_on_demand", "fax": True,
             "vars": {"fax_mode": "two-call"}}
    fax = {"dial": f"sip:{{number}}@127.0.0.1:{machine_port}", "delivery_schedule": "office",
           "retry_base": 5, "retry_max": 10}
    cfg = _config(ports, workdir, prompts_dir, routes=[route], fax=fax,
                  schedules={"office": CLOSED})
    with Engine(workdir, cfg) as engine:
        # Any phone: the caller keys the document and their fax number.
        with _terminal("phone", workdir, ports, "--dial", engine.number("300"), "--mode",
                       "receive", "--tiff", str(workdir / "unused.tif"), "--dtmf",
                       "101#25550123#", "--fax-after", "600") as phone:
            phone.wait_event("exit", 90)        # "your fax will be sent shortly", goodbye
        (job,) = _api(engine, "GET", "/api/fax/jobs")["jobs"]
        assert job["state"] == "queued" and job["number"] == "5550123"
        assert job["documents"] == ["101"] and job["attempts"] == 0
        time.sleep(3)                            # closed: nobody is dialled
        assert _api(engine, "GET", f"/api/fax/jobs/{job['id']}")["attempts"] == 0
        assert engine.metric("sipacd_fax_jobs", state="queued") == 1
        assert engine.metric("sipacd_fax_job_overdue_seconds") == 0     # held, not late
    # The office opens with the next start; the job is still there.
    received = workdir / "two-call.tif"
    with _terminal("machine", workdir, ports, "--mode", "receive", "--tiff", str(received),
                   "--ident", "FAX 5550123", sip_port=machine_port) as machine:
        machine.wait_event("ready", 10)
        cfg["schedules"] = {"office": OPEN}
        with Engine(workdir, cfg) as engine:
            got = machine.wait_event("fax", FAX_TIMEOUT + 10)
            done = _wait_job(engine, job["id"], 30, state="done")
            machine.wait_event("exit", 20)
    assert got["ok"] and got["pages"] == 2, got
    assert done["pages_confirmed"] == 2 and done["attempts"] == 1
    assert_pixel_identical(library["101"], received)


def test_a_receiver_hanging_up_mid_page_is_filed_and_the_retry_resumes(three_pages, workdir,
                                                                       ports, prompts_dir):
    _library(workdir, {"103": (three_pages, None)})
    machine_port = ports()
    fax = {"dial": f"sip:{{number}}@127.0.0.1:{machine_port}", "retry_base": 3,
           "retry_max": 10, "max_attempts": 3}
    first, second = workdir / "first.tif", workdir / "second.tif"
    with Engine(workdir, _config(ports, workdir, prompts_dir, fax=fax)) as engine:
        # A machine that hangs up a few seconds into page 2.
        with _terminal("cut", workdir, ports, "--mode", "receive", "--tiff", str(first),
                       "--hangup-after-pages", "1", "--hangup-delay", "4",
                       sip_port=machine_port) as cut:
            cut.wait_event("ready", 10)
            job = _api(engine, "POST", "/api/fax/jobs", {"number": "5550199",
                                                          "documents": ["103"]})
            cut.wait_event("cutting", FAX_TIMEOUT)
            cut.wait_event("exit", 30)
        failed = _wait_job(engine, job["id"], 30, attempts=1, state="queued")
        assert failed["pages_confirmed"] == 1, failed
        assert "dropped" in failed["last_status"].lower(), failed
        # The retry reaches a machine that takes the rest.
        with _terminal("whole", workdir, ports, "--mode", "receive", "--tiff", str(second),
                       sip_port=machine_port) as whole:
            got = whole.wait_event("fax", FAX_TIMEOUT + 10)
            done = _wait_job(engine, job["id"], 30, state="done")
            whole.wait_event("exit", 20)
        log = _api(engine, "GET", "/api/fax/log?direction=send")
        assert engine.metric("sipacd_fax_total", direction="send", result="failed") == 1
        assert engine.metric("sipacd_fax_total", direction="send", result="ok") == 1
    assert got["ok"] and got["pages"] == 2, got
    assert done["attempts"] == 2 and done["pages_confirmed"] == 3
    # Only pages 2 and 3 went out the second time.
    assert read_pages(second) == read_pages(three_pages)[1:]
    entries = sorted(log["faxes"], key=lambda e: e["started"])
    assert [(e["ok"], e["pages"], e["job_id"]) for e in entries] == \
        [(False, 1, job["id"]), (True, 2, job["id"])]
    assert "dropped" in entries[0]["status_text"].lower()


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_a_fax_number_files_tiff_and_pdf_and_mails_the_pdf(two_pages, workdir, ports,
                                                          prompts_dir):
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=ports())
    smtp.start()
    try:
        route = {"number": "350", "flow": "fax_receive", "fax": True}
        cfg = _config(ports, workdir, prompts_dir, routes=[route],
                      fax={"receive_email": ["faxes@example.com"]},
                      voicemail={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
        with Engine(workdir, cfg) as engine:
            with _terminal("sender", workdir, ports, "--dial", engine.number("350"), "--mode",
                           "send", "--tiff", str(two_pages), "--ident", "SENDER 42") as sender:
                got = sender.wait_event("fax", FAX_TIMEOUT + 10)
                sender.wait_event("exit", 20)
            assert got["ok"] and got["pages"] == 2, got
            assert engine.wait_metric("sipacd_fax_total", 1, direction="receive",
                                      result="ok") == 1
            assert engine.wait_metric("sipacd_fax_notifications_total", 1, channel="email",
                                      result="sent", timeout=20) == 1
            (entry,) = _api(engine, "GET", "/api/fax/log?direction=receive")["faxes"]
    finally:
        smtp.stop()
    store = FaxStore(workdir / "data")
    try:
        record = store.fax(entry["id"])
    finally:
        store.close()
    assert record.ok and record.pages == 2 and record.remote_ident == "SENDER 42"
    assert_pixel_identical(two_pages, record.tiff)
    pdf = record.pdf.read_bytes()
    assert pdf.startswith(b"%PDF")
    (mail,) = mailbox.messages
    msg = message_from_bytes(mail.content, policy=default_policy)
    attached = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(attached) == 1 and attached[0].get_content() == pdf
    assert mail.rcpt_tos == ["faxes@example.com"]


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian: sip-tester) is not installed")
def test_t38_reinvites_to_the_engine_get_488_and_the_call_stays_on_g711(workdir, ports,
                                                                       prompts_dir):
    route = {"number": "fax", "flow": "fax_receive", "fax": True}
    with Engine(workdir, _config(ports, workdir, prompts_dir, routes=[route])) as engine:
        run_sipp_t38(engine.sip_port, workdir, ports)      # 488 twice, then BYE on G.711
        assert engine.wait_metric("sipacd_fax_t38_rejected_total", 2) == 2
        # The BYE ended a receive that never heard a modem: filed as failed.
        assert engine.wait_metric("sipacd_fax_total", 1, direction="receive",
                                  result="failed") == 1


def test_an_engine_killed_mid_job_sends_it_again_after_the_restart(two_pages, workdir, ports,
                                                                   prompts_dir):
    library = _library(workdir, {"101": (two_pages, None)})
    machine_port = ports()
    cfg = _config(ports, workdir, prompts_dir,
                  fax={"dial": f"sip:{{number}}@127.0.0.1:{machine_port}"})
    with Engine(workdir, cfg) as engine:
        with _terminal("first", workdir, ports, "--mode", "receive", "--tiff",
                       str(workdir / "first.tif"), sip_port=machine_port) as first:
            first.wait_event("ready", 10)
            job = _api(engine, "POST", "/api/fax/jobs", {"number": "5550123",
                                                          "documents": ["101"]})
            first.wait_event("progress", 60, negotiated=True)
            engine.proc.kill()                   # no goodbye: the job row says "sending"
            engine.proc.wait(10)
    received = workdir / "second.tif"
    with _terminal("second", workdir, ports, "--mode", "receive", "--tiff", str(received),
                   sip_port=machine_port) as second:
        second.wait_event("ready", 10)
        with Engine(workdir, cfg) as engine:
            got = second.wait_event("fax", FAX_TIMEOUT + 10)
            done = _wait_job(engine, job["id"], 30, state="done")
            recovered = [e for e in engine.log_events()
                         if e.get("event") == "fax store recovered from a previous run"]
            second.wait_event("exit", 20)
    assert recovered and recovered[-1]["jobs_resumed"] == 1
    assert got["ok"] and done["attempts"] == 2 and done["pages_confirmed"] == 2
    assert_pixel_identical(library["101"], received)


def test_an_engine_killed_mid_receive_leaves_no_half_written_fax(two_pages, workdir, ports,
                                                                 prompts_dir):
    route = {"number": "350", "flow": "fax_receive", "fax": True}
    cfg = _config(ports, workdir, prompts_dir, routes=[route])
    received_dir = workdir / "data" / "fax" / "received"
    with Engine(workdir, cfg) as engine:
        with _terminal("sender", workdir, ports, "--dial", engine.number("350"), "--mode",
                       "send", "--tiff", str(two_pages)) as sender:
            sender.wait_event("progress", 60, pages=1)      # page 1 is in the modem's file
            engine.proc.kill()
            engine.proc.wait(10)
    partial = [p.name for p in received_dir.iterdir()]
    assert partial and all(name.startswith(".") for name in partial), partial
    with Engine(workdir, cfg) as engine:
        recovered = [e for e in engine.log_events()
                     if e.get("event") == "fax store recovered from a previous run"]
        (log,) = [_api(engine, "GET", "/api/fax/log")["faxes"]]
    assert recovered and recovered[-1]["strays_removed"] >= 1
    assert list(received_dir.iterdir()) == [] and log == []


def test_a_fax_calling_the_ivr_is_heard_and_received(two_pages, workdir, ports, prompts_dir):
    from sipua import UA

    # The main number's IVR listens for CNG; a fax machine dialling it is
    # switched to fax_receive, a caller holding a steady 1100 Hz tone is not.
    route = {"number": "400", "flow": "welcome", "queue": "support",
             "fax_detect": "fax_receive"}
    with Engine(workdir, _config(ports, workdir, prompts_dir, routes=[route])) as engine:
        with UA(ports(), log_dir=workdir, name="voice") as voice:
            voice.request("call", call="c1", to=engine.number("400"), tone=1100)
            voice.wait_state("c1", "CONFIRMED")
            time.sleep(6)
            voice.request("hangup", call="c1")
        assert not [e for e in engine.log_events()
                    if e.get("event") == "fax calling tone heard; the call continues as fax"]
        with _terminal("sender", workdir, ports, "--dial", engine.number("400"), "--mode",
                       "send", "--tiff", str(two_pages), "--ident", "MAIN NUMBER FAX") as sender:
            got = sender.wait_event("fax", FAX_TIMEOUT + 10)
            sender.wait_event("exit", 20)
        switched = [e for e in engine.log_events()
                    if e.get("event") == "fax calling tone heard; the call continues as fax"]
        assert engine.wait_metric("sipacd_fax_total", 1, direction="receive", result="ok") == 1
        (entry,) = _api(engine, "GET", "/api/fax/log?direction=receive")["faxes"]
    assert got["ok"] and got["pages"] == 2, got
    assert len(switched) == 1 and switched[0]["flow"] == "fax_receive"
    store = FaxStore(workdir / "data")
    try:
        assert_pixel_identical(two_pages, store.fax(entry["id"]).tiff)
    finally:
        store.close()
