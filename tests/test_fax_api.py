"""The fax HTTP API on a real store: roles, uploads converted by
ghostscript, jobs and the wake-up, the log and its files."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import textwrap
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from faxkit import make_document
from sipagent.api import fax as fax_api
from sipagent.config.load import parse_config
from sipagent.api.fax import add_fax_routes
from sipagent.fax.documents import same_pixels
from sipagent.fax.store import FaxStore

TOKENS = {"admin-token": "admin", "sup-token": "supervisor", "agent-token": "agent"}


def authenticate(request: web.Request, roles: set[str]):
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise web.HTTPUnauthorized()
    if TOKENS[token] not in roles:
        raise web.HTTPForbidden()
    return SimpleNamespace(role=TOKENS[token], agent=None)


ADMIN = {"Authorization": "Bearer admin-token"}
SUP = {"Authorization": "Bearer sup-token"}
AGENT = {"Authorization": "Bearer agent-token"}


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    d = tmp_path_factory.mktemp("api-docs")
    make_document(d / "two.tif", pages=2, lines=3)
    make_document(d / "three.tif", pages=3, lines=2)
    make_document(d / "six.tif", pages=6, lines=1)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={d / 'two.pdf'}", str(d / "two.ps")], check=True, timeout=60)
    return {"pdf": (d / "two.pdf").read_bytes(), "ps3": (d / "three.ps").read_bytes(),
            "tiff": (d / "two.tif").read_bytes(), "six": (d / "six.ps").read_bytes(),
            "tiff_path": d / "two.tif"}


@pytest.fixture
def store(tmp_path):
    s = FaxStore(tmp_path / "data", max_pages=5)
    yield s
    s.close()


def api(store, ports, scenario, on_job=None):
    async def go():
        app = web.Application()
        add_fax_routes(app, store, authenticate, on_job=on_job)
        async with TestClient(TestServer(app, host="127.0.0.1", port=ports())) as client:
            return await scenario(client)
    return asyncio.run(go())


async def answer(response) -> tuple[int, object]:
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.text()


def test_documents_uploaded_listed_downloaded_replaced_and_removed(store, ports, docs):
    async def scenario(c):
        out = {}
        out["add"] = await answer(await c.post("/api/fax/documents/101?title=Prices",
                                               data=docs["pdf"], headers=ADMIN))
        out["add_pin"] = await answer(await c.post("/api/fax/documents/7?pin=4711",
                                                   data=docs["tiff"], headers=ADMIN))
        out["again"] = await answer(await c.post("/api/fax/documents/101", data=docs["pdf"],
                                                 headers=ADMIN))
        out["list"] = await answer(await c.get("/api/fax/documents", headers=SUP))
        out["one"] = await answer(await c.get("/api/fax/documents/7", headers=SUP))
        tiff = await c.get("/api/fax/documents/7/tiff", headers=SUP)
        out["tiff"] = (tiff.status, tiff.content_type, await tiff.read())
        out["replace"] = await answer(await c.put("/api/fax/documents/101?title=New",
                                                  data=docs["ps3"], headers=ADMIN))
        out["replace_missing"] = (await c.put("/api/fax/documents/102", data=docs["ps3"],
                                              headers=ADMIN)).status
        out["pin"] = await answer(await c.put("/api/fax/documents/101/pin",
                                              json={"pin": "2468"}, headers=ADMIN))
        out["unpin"] = await answer(await c.put("/api/fax/documents/7/pin", json={"pin": None},
                                                headers=ADMIN))
        out["bad_pins"] = [(await c.put("/api/fax/documents/7/pin", json=body,
                                        headers=ADMIN)).status
                           for body in ({"pin": "12"}, {"pin": 1234}, {}, {"pin": ""})]
        out["delete"] = (await c.delete("/api/fax/documents/7", headers=ADMIN)).status
        out["gone"] = [(await c.get("/api/fax/documents/7", headers=SUP)).status,
                       (await c.get("/api/fax/documents/7/tiff", headers=SUP)).status,
                       (await c.delete("/api/fax/documents/7", headers=ADMIN)).status,
                       (await c.get("/api/fax/documents/..%2Ffax.sqlite3", headers=SUP)).status]
        return out

    out = api(store, ports, scenario)
    status, body = out["add"]
    assert status == 201 and {k: body[k] for k in ("number", "title", "pages", "protected")} == {
        "number": "101", "title": "Prices", "pages": 2, "protected": False}
    assert out["add_pin"][0] == 201 and out["add_pin"][1]["protected"] is True
    assert out["again"] == (409, "document 101 exists already\n")
    assert [(d["number"], d["pages"]) for d in out["list"][1]["documents"]] == [
        ("7", 2), ("101", 2)]
    assert out["one"][1]["added"].endswith("+00:00")
    assert out["tiff"] == (200, "image/tiff", docs["tiff"])
    assert out["replace"][0] == 200 and (out["replace"][1]["pages"],
                                         out["replace"][1]["title"]) == (3, "New")
    assert out["replace_missing"] == 404
    assert out["pin"][1]["protected"] is True and out["unpin"][1]["protected"] is False
    assert out["bad_pins"] == [400, 400, 400, 400]
    assert out["delete"] == 204 and out["gone"] == [404, 404, 404, 404]
    assert store.check_access("101", "2468").title == "New"
    assert [d.number for d in store.documents()] == ["101"]
    assert sorted(p.name for p in store.documents_dir.iterdir()) == [
        store.document("101").path.name]


def test_bad_uploads_are_refused_with_the_reason_and_leave_nothing(store, ports, docs,
                                                                   monkeypatch):
    async def scenario(c):
        out = [await answer(await c.post(f"/api/fax/documents/{n}", data=body, headers=ADMIN))
               for n, body in (("1", b"just text"), ("2", docs["six"]), ("3", b""),
                               ("x4", docs["pdf"]), ("5", b"%PDF-1.4\n%%EOF\n"))]
        monkeypatch.setattr(fax_api, "MAX_UPLOAD", 1000)
        out.append((await c.post("/api/fax/documents/6", data=docs["pdf"],
                                 headers=ADMIN)).status)

        async def chunked():       # no Content-Length: counted while read
            for _ in range(4):
                yield b"%" * 400
        out.append((await c.post("/api/fax/documents/7", data=chunked(),
                                 headers=ADMIN)).status)
        return out

    assert fax_api.MAX_UPLOAD == 50 * 1024 * 1024
    text, six, empty, number, corrupt, big, big_chunked = api(store, ports, scenario)
    assert text == (400, "the uploaded file is not a PDF, PostScript or TIFF file\n")
    assert six[0] == 400 and "has more than 5 pages" in six[1]
    assert empty[0] == 400 and "empty" in empty[1]
    assert number[0] == 400 and "1 to 10 digits" in number[1]
    assert corrupt[0] == 400 and "ghostscript could not render" in corrupt[1]
    assert (big, big_chunked) == (413, 413)
    assert store.documents() == [] and list(store.documents_dir.iterdir()) == []


def test_roles_read_and_change(store, ports, docs):
    store.add_document("1", docs["tiff_path"])

    async def scenario(c):
        return [(await c.get("/api/fax/documents", headers=SUP)).status,
                (await c.get("/api/fax/jobs", headers=SUP)).status,
                (await c.get("/api/fax/log", headers=SUP)).status,
                (await c.get("/api/fax/documents", headers=AGENT)).status,
                (await c.get("/api/fax/documents")).status,
                (await c.post("/api/fax/documents/2", data=docs["pdf"], headers=SUP)).status,
                (await c.delete("/api/fax/documents/1", headers=SUP)).status,
                (await c.put("/api/fax/documents/1/pin", json={"pin": "1234"},
                             headers=SUP)).status,
                (await c.post("/api/fax/jobs", json={"number": "0301234", "documents": ["1"]},
                              headers=SUP)).status]

    assert api(store, ports, scenario) == [200, 200, 200, 403, 401, 403, 403, 403, 403]
    assert [d.number for d in store.documents()] == ["1"] and store.jobs() == []


def test_jobs_queued_woken_listed_and_cancelled(store, ports, docs):
    store.add_document("101", docs["tiff_path"])
    store.add_document("102", docs["tiff_path"], pin="1234")
    wakes = []

    async def scenario(c):
        out = {}
        post = lambda body: c.post("/api/fax/jobs", json=body, headers=ADMIN)  # noqa: E731
        out["made"] = await answer(await post({"number": "+4930123", "documents": ["101", "102"],
                                               "pins": {"102": "1234"}}))
        out["wakes"] = len(wakes)
        out["refused"] = [await answer(await post(body)) for body in (
            {"number": "+4930123", "documents": ["102"]},
            {"number": "+4930123", "documents": ["102"], "pins": {"102": "9999"}},
            {"number": "+4930123", "documents": ["103"]},
            {"number": "call me", "documents": ["101"]},
            {"number": "+4930123", "documents": []},
            {"number": "+4930123", "documents": [101]},
            {"number": "+4930123", "documents": ["101"], "pins": {"101": 1}},
            {"documents": ["101"]})]
        job_id = out["made"][1]["id"]
        out["list"] = await answer(await c.get("/api/fax/jobs?state=queued", headers=SUP))
        out["none"] = await answer(await c.get("/api/fax/jobs?state=done", headers=SUP))
        out["bad_query"] = [(await c.get(f"/api/fax/jobs?{q}", headers=SUP)).status
                            for q in ("state=lost", "limit=0", "limit=x")]
        out["one"] = await answer(await c.get(f"/api/fax/jobs/{job_id}", headers=SUP))
        out["cancel"] = await answer(await c.delete(f"/api/fax/jobs/{job_id}", headers=ADMIN))
        out["again"] = await answer(await c.delete(f"/api/fax/jobs/{job_id}", headers=ADMIN))
        out["missing"] = [(await c.get(f"/api/fax/jobs/{'0' * 32}", headers=SUP)).status,
                          (await c.delete("/api/fax/jobs/nope", headers=ADMIN)).status]
        return out

    out = api(store, ports, scenario, on_job=lambda: wakes.append(1))
    status, job = out["made"]
    assert status == 201 and (job["state"], job["documents"], job["pages_total"]) == (
        "queued", ["101", "102"], 4)
    assert out["wakes"] == 1 and len(wakes) == 1          # refused jobs wake nobody
    assert [s for s, _ in out["refused"]] == [403, 403, 404, 400, 400, 400, 400, 400]
    assert "needs its PIN" in out["refused"][0][1] and "wrong PIN" in out["refused"][1][1]
    assert [j["id"] for j in out["list"][1]["jobs"]] == [job["id"]]
    assert out["none"] == (200, {"jobs": []})
    assert out["bad_query"] == [400, 400, 400]
    assert out["one"] == (200, job)
    assert out["cancel"][0] == 200 and out["cancel"][1]["state"] == "cancelled"
    assert out["again"][0] == 409 and "only a queued job" in out["again"][1]
    assert out["missing"] == [404, 404]
    assert len(store.jobs()) == 1 and list(store.jobs_dir.iterdir()) == []


def test_an_async_wake_up_is_awaited_and_a_failing_one_does_not_fail_the_job(store, ports,
                                                                          docs):
    store.add_document("1", docs["tiff_path"])
    woken = asyncio.Event()

    async def wake():
        woken.set()

    def broken():
        raise RuntimeError("dialer gone")

    async def scenario(c):
        made = await c.post("/api/fax/jobs", json={"number": "0301", "documents": ["1"]},
                            headers=ADMIN)
        return made.status, woken.is_set()

    assert api(store, ports, scenario, on_job=wake) == (201, True)
    assert api(store, ports, scenario, on_job=broken)[0] == 201
    assert len(store.jobs()) == 2


def test_fax_log_and_received_files(store, ports, docs):
    received = store.new_fax_id()
    tmp, tiff, pdf = store.received_paths(received)
    shutil.copyfile(docs["tiff_path"], tmp)
    store.file_received(received)
    store.record_fax(received, "receive", {"ok": True, "pages": 2, "bit_rate": 9600},
                     call_id="c1", remote="+4930999", started=1.7e9, tiff=tiff, pdf=pdf)
    sent = store.new_fax_id()
    store.record_fax(sent, "send", {"ok": False, "status": 48, "status_text": "No answer"},
                     call_id="c2", remote="+4930111", started=1.7e9 + 10, documents=["101"])

    async def scenario(c):
        out = {"all": await answer(await c.get("/api/fax/log", headers=SUP)),
               "send": await answer(await c.get("/api/fax/log?direction=send", headers=SUP)),
               "limit": await answer(await c.get("/api/fax/log?limit=1", headers=SUP)),
               "bad": (await c.get("/api/fax/log?direction=up", headers=SUP)).status,
               "one": await answer(await c.get(f"/api/fax/log/{received}", headers=SUP))}
        for kind in ("pdf", "tiff"):
            r = await c.get(f"/api/fax/log/{received}/{kind}", headers=SUP)
            out[kind] = (r.status, r.content_type, await r.read())
        out["no_files"] = [(await c.get(f"/api/fax/log/{sent}/{k}", headers=SUP)).status
                           for k in ("pdf", "tiff")]
        out["missing"] = (await c.get(f"/api/fax/log/{'0' * 32}", headers=SUP)).status
        return out

    out = api(store, ports, scenario)
    assert [f["id"] for f in out["all"][1]["faxes"]] == [sent, received]
    assert [f["id"] for f in out["send"][1]["faxes"]] == [sent]
    assert [f["id"] for f in out["limit"][1]["faxes"]] == [sent]
    assert out["bad"] == 400
    one = out["one"][1]
    assert (one["direction"], one["ok"], one["pages"], one["bit_rate"], one["remote"]) == (
        "receive", True, 2, 9600, "+4930999")
    assert one["pdf"] == f"/api/fax/log/{received}/pdf" and out["all"][1]["faxes"][0]["pdf"] is None
    assert out["pdf"][:2] == (200, "application/pdf") and out["pdf"][2].startswith(b"%PDF")
    assert out["tiff"][:2] == (200, "image/tiff")
    copy = tmp.with_name("downloaded.tif")
    copy.write_bytes(out["tiff"][2])
    assert same_pixels(copy, docs["tiff_path"])
    assert out["no_files"] == [404, 404] and out["missing"] == 404


def test_the_engine_http_server_serves_the_fax_api(store, ports, docs):
    """build_app adds the routes when the engine has a fax store, behind the
    config's tokens, with the engine's dialer wake-up."""
    from sipagent.api.server import build_app

    config = parse_config(textwrap.dedent("""
        [http.tokens.ops]
        role = "admin"
        token = "ops-secret-0123456789"
    """), source="test.toml")
    store.add_document("1", docs["tiff_path"])
    wakes = []
    engine = SimpleNamespace(config=config, voicemail=None, fax_store=store,
                             fax_dialer_wake=lambda: wakes.append(1))

    async def go():
        async with TestClient(TestServer(build_app(engine), host="127.0.0.1",
                                         port=ports())) as c:
            ok = await c.post("/api/fax/jobs", json={"number": "0301", "documents": ["1"]},
                              headers={"Authorization": "Bearer ops-secret-0123456789"})
            anon = await c.get("/api/fax/documents")
            return ok.status, anon.status

    assert asyncio.run(go()) == (201, 401) and wakes == [1]
    engine.fax_store = None
    assert all("/api/fax" not in getattr(r.resource, "canonical", "")
               for r in build_app(engine).router.routes())
