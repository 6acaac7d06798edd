"""The fax part of the HTTP API (JSON, bearer tokens).

======  =================================  ============================================
GET     /api/fax/documents                 the document library
GET     /api/fax/documents/{number}        one document
GET     /api/fax/documents/{number}/tiff   its TIFF-F, as it is sent
POST    /api/fax/documents/{number}        add one: the body is the file (PDF,
                                           PostScript or TIFF), ``?title=&pin=``
PUT     /api/fax/documents/{number}        replace its content (``?title=``; PIN kept)
DELETE  /api/fax/documents/{number}        remove it
PUT     /api/fax/documents/{number}/pin    ``{"pin": "4711"}``, ``{"pin": null}``: public
GET     /api/fax/jobs                      two-call jobs, newest first, ``?state=&limit=``
GET     /api/fax/jobs/{id}                 one job
POST    /api/fax/jobs                      ``{"number": "+4930123", "documents":
                                           ["101"], "pins": {"102": "1234"}}``
DELETE  /api/fax/jobs/{id}                 cancel a queued job
GET     /api/fax/log                       faxes sent and received, newest first,
                                           ``?direction=send|receive&limit=``
GET     /api/fax/log/{id}                  one fax
GET     /api/fax/log/{id}/pdf              a received fax as PDF
GET     /api/fax/log/{id}/tiff             ... as the TIFF the modem wrote
======  =================================  ============================================

``admin`` tokens change things; ``admin`` and ``supervisor`` tokens read.
Errors are one line of text: 400 for a document or request the store
refuses (the message says why), 403 for a missing or wrong document PIN,
404 for an unknown document, job or fax, 409 for a number taken or a job
that is no longer queued, 413 for an upload over 50 MB.  Times are ISO 8601
in UTC.  Bodies and query parameters are checked as
``sipagent.api.request_input`` says: a 400 names the field or parameter
(an unknown parameter too) and the problem.
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Annotated, Any, Callable, Literal

from aiohttp import web
from pydantic import BeforeValidator, Field

from sipagent.fax.json_shapes import document_json, fax_json, job_json
from sipagent.fax.store import (JOB_STATES, DocumentExists, DocumentRejected, FaxAccessDenied,
                                FaxStore, FaxStoreError, JobBusy, NoSuchDocument, NoSuchFax,
                                NoSuchJob)
from sipagent.api.files import attachment, read_upload
from sipagent.api.request_input import (JsonBody, QueryParameters, blank_is_absent, read_body,
                                        read_query)

READERS = {"admin", "supervisor"}
WRITERS = {"admin"}
MAX_UPLOAD = 50 * 1024 * 1024

Authenticate = Callable[[web.Request, set[str]], Any]
Limit = Annotated[int, Field(ge=1, le=1000)]


class DocumentPin(JsonBody):
    """``PUT /api/fax/documents/{number}/pin``: a PIN, or null for public."""
    pin: Annotated[str, Field(min_length=1)] | None


class FaxJobRequest(JsonBody):
    """``POST /api/fax/jobs``; the store checks the number and documents."""
    number: str
    documents: Annotated[list[str], Field(min_length=1)]
    pins: dict[str, str] | None = None


class NewDocument(QueryParameters):
    """``POST /api/fax/documents/{number}?...`` (the body is the file)."""
    title: str = ""
    pin: Annotated[str | None, BeforeValidator(blank_is_absent)] = None


class NewContent(QueryParameters):
    """``PUT /api/fax/documents/{number}?...``: absent keeps the title."""
    title: str | None = None


class JobFilter(QueryParameters):
    """``GET /api/fax/jobs?...``"""
    state: Annotated[Literal[JOB_STATES] | None, BeforeValidator(blank_is_absent)] = None
    limit: Limit = 100


class FaxLogFilter(QueryParameters):
    """``GET /api/fax/log?...``"""
    direction: Annotated[Literal["send", "receive"] | None,
                         BeforeValidator(blank_is_absent)] = None
    limit: Limit = 100


def add_fax_routes(app: web.Application, store: FaxStore, authenticate: Authenticate, *,
                   on_job: Callable[[], Any] | None = None) -> None:
    """``on_job`` is called after a job is queued (the dialer's wake-up)."""

    async def run(fn, *args, **kw):
        """A blocking store call in a thread, its refusals as HTTP errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except (NoSuchDocument, NoSuchJob, NoSuchFax) as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
        except FaxAccessDenied as exc:
            raise web.HTTPForbidden(text=f"{exc}\n") from None
        except (DocumentExists, JobBusy) as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from None
        except FaxStoreError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None

    def from_upload(fn, number: str, data: bytes, **kw):
        # The body goes to a hidden file in the store (a crash leaves it to
        # the sweep at start), as add/replace_document read a path.
        path = store.upload_path()
        try:
            path.write_bytes(data)
            return fn(number, path, **kw)
        except DocumentRejected as exc:
            # The message names the file; the client knows no hidden name.
            raise DocumentRejected(str(exc).replace(path.name, "the uploaded file")) from None
        finally:
            path.unlink(missing_ok=True)

    async def list_documents(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        return web.json_response({"documents": [document_json(d)
                                                for d in await run(store.documents)]})

    async def get_document(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        return web.json_response(document_json(
            await run(store.document, request.match_info["number"])))

    async def get_document_tiff(request: web.Request) -> web.StreamResponse:
        authenticate(request, READERS)
        doc = await run(store.document, request.match_info["number"])
        return attachment(doc.path, "image/tiff", f"fax-document-{doc.number}.tif")

    async def post_document(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        q = read_query(request, NewDocument)
        data = await _upload(request)
        doc = await run(from_upload, store.add_document, request.match_info["number"], data,
                        title=q.title, pin=q.pin)
        return web.json_response(document_json(doc), status=201,
                                 headers={"Location": f"/api/fax/documents/{doc.number}"})

    async def put_document(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        number = request.match_info["number"]
        q = read_query(request, NewContent)
        await run(store.document, number)       # 404 before reading 50 MB
        data = await _upload(request)
        doc = await run(from_upload, store.replace_document, number, data, title=q.title)
        return web.json_response(document_json(doc))

    async def delete_document(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        await run(store.remove_document, request.match_info["number"])
        return web.Response(status=204)

    async def put_pin(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        pin = (await read_body(request, DocumentPin)).pin
        doc = await run(store.set_document_pin, request.match_info["number"], pin)
        return web.json_response(document_json(doc))

    async def list_jobs(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        q = read_query(request, JobFilter)
        jobs = await run(store.jobs, q.state, limit=q.limit)
        return web.json_response({"jobs": [job_json(j) for j in jobs]})

    async def get_job(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        return web.json_response(job_json(await run(store.job, request.match_info["id"])))

    async def post_job(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        body = await read_body(request, FaxJobRequest)
        job = await run(store.create_job, body.number, body.documents, pins=body.pins)
        if on_job is not None:
            await _wake(on_job)
        return web.json_response(job_json(job), status=201,
                                 headers={"Location": f"/api/fax/jobs/{job.id}"})

    async def delete_job(request: web.Request) -> web.Response:
        authenticate(request, WRITERS)
        return web.json_response(job_json(await run(store.cancel_job, request.match_info["id"])))

    async def list_log(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        q = read_query(request, FaxLogFilter)
        faxes = await run(store.faxes, q.direction, limit=q.limit)
        return web.json_response({"faxes": [fax_json(f) for f in faxes]})

    async def get_fax(request: web.Request) -> web.Response:
        authenticate(request, READERS)
        return web.json_response(fax_json(await run(store.fax, request.match_info["id"])))

    def fax_file(kind: str, content_type: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            authenticate(request, READERS)
            record = await run(store.fax, request.match_info["id"])
            path = getattr(record, kind)
            if path is None or not path.is_file():
                raise web.HTTPNotFound(text=f"fax {record.id} has no {kind} file (only "
                                            "received faxes do)\n")
            return attachment(path, content_type, f"fax-{record.id}.{kind}")
        return handler

    r = app.router
    r.add_get("/api/fax/documents", list_documents)
    r.add_get("/api/fax/documents/{number}", get_document)
    r.add_get("/api/fax/documents/{number}/tiff", get_document_tiff)
    r.add_post("/api/fax/documents/{number}", post_document)
    r.add_put("/api/fax/documents/{number}", put_document)
    r.add_delete("/api/fax/documents/{number}", delete_document)
    r.add_put("/api/fax/documents/{number}/pin", put_pin)
    r.add_get("/api/fax/jobs", list_jobs)
    r.add_get("/api/fax/jobs/{id}", get_job)
    r.add_post("/api/fax/jobs", post_job)
    r.add_delete("/api/fax/jobs/{id}", delete_job)
    r.add_get("/api/fax/log", list_log)
    r.add_get("/api/fax/log/{id}", get_fax)
    r.add_get("/api/fax/log/{id}/pdf", fax_file("pdf", "application/pdf"))
    r.add_get("/api/fax/log/{id}/tiff", fax_file("tiff", "image/tiff"))


async def _upload(request: web.Request) -> bytes:
    data = await read_upload(request, MAX_UPLOAD)
    if not data:
        raise web.HTTPBadRequest(text="the request body is the document (PDF, PostScript "
                                      "or TIFF), and it is empty\n")
    return data


async def _wake(on_job: Callable[[], Any]) -> None:
    # The job is queued already; a failing wake-up must not make the client
    # think otherwise and post it again (the dialer finds it at its next look).
    try:
        result = on_job()
        if inspect.isawaitable(result):
            await result
    except Exception:
        import structlog

        structlog.get_logger("sipagent.api.fax").exception("fax dialer wake-up failed")

