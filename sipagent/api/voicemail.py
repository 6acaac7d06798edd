"""The voicemail part of the HTTP API (JSON, bearer tokens).

======  ===============================================  ==========================
GET     /api/voicemail                                   boxes you may see, counts
GET     /api/voicemail/{box}                             one box: settings, counts
PATCH   /api/voicemail/{box}                             change settings (admin)
PUT     /api/voicemail/{box}/pin                         ``{"pin": "4711"}``
GET     /api/voicemail/{box}/messages                    ``?folder=new&since=&until=
                                                         &caller=&urgent=&limit=``
GET     /api/voicemail/{box}/messages/{id}               one message
GET     /api/voicemail/{box}/messages/{id}/audio         the WAV
PATCH   /api/voicemail/{box}/messages/{id}               ``{"folder": "saved"}``
DELETE  /api/voicemail/{box}/messages/{id}               delete (file and index)
GET     /api/voicemail/{box}/greetings/{kind}            the WAV (404: default)
PUT     /api/voicemail/{box}/greetings/{kind}            upload a PCM WAV
DELETE  /api/voicemail/{box}/greetings/{kind}            back to the default
======  ===============================================  ==========================

``admin`` and ``supervisor`` tokens reach every box (only ``admin`` changes
settings); an ``agent`` token reaches only the boxes whose owner is
``agent:<its agent>``, and gets 404 for the others, as if they did not
exist.  ``since``/``until`` are ISO 8601 times or Unix seconds; ``limit`` is
at least 1 (500 when absent; more than 5000 gives 5000).  Bodies and query
parameters are checked as ``sipagent.api.request_input`` says: a 400 names
the field and the problem.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any, Callable, Literal

from aiohttp import web
from pydantic import AfterValidator, BeforeValidator, Field

from sipagent.api.files import attachment, read_upload
from sipagent.api.request_input import (JsonBody, QueryParameters, WallClock, blank_is_absent,
                                        read_body, read_query)
from sipagent.config.values import Email, Url, check_owner
from sipagent.voicemail.notify import message_json
from sipagent.voicemail.store import NoSuchMessage, UnknownMailbox, UnsafePath, VoicemailStore

READERS = {"admin", "supervisor", "agent"}
# A minute of 16-bit stereo 48 kHz is 11 MB: room for any sane greeting.
MAX_UPLOAD = 16 * 1024 * 1024
# A larger ?limit= lists this many (as it always has): a client pages with since/until.
MAX_LISTED = 5000

Authenticate = Callable[[web.Request, set[str]], Any]   # -> object with .role, .agent

# Bounds far above any real mailbox, so a typo (or 2**70) is refused rather
# than stored.
Seconds = Annotated[float, Field(ge=0, le=86400)]


class MailboxSettings(JsonBody):
    """``PATCH /api/voicemail/{box}``: the settings to change (others stay).
    A default of None means "not given": only the keys sent are passed on
    (``exclude_unset``), and a null is refused except for ``webhook``.
    VoicemailStore.update_box checks how they fit together."""
    owner: Annotated[str, AfterValidator(check_owner)] = None
    emails: list[Email] = None
    webhook: Url | None = None
    max_length: Seconds = None
    min_length: Seconds = None
    max_messages: Annotated[int, Field(ge=1, le=1_000_000)] = None
    retention_days: Annotated[int, Field(ge=0, le=36500)] = None


class PinChange(JsonBody):
    """``PUT /api/voicemail/{box}/pin``; the store checks the digits."""
    pin: str


class MessageMove(JsonBody):
    """``PATCH /api/voicemail/{box}/messages/{id}``."""
    folder: Literal["new", "saved"]


class MessageFilter(QueryParameters):
    """``GET /api/voicemail/{box}/messages?...``"""
    folder: Literal["new", "saved"] | None = None
    since: WallClock | None = None
    until: WallClock | None = None
    caller: str | None = None
    urgent: Annotated[bool | None, BeforeValidator(blank_is_absent)] = None
    limit: Annotated[int, Field(ge=1), AfterValidator(lambda n: min(n, MAX_LISTED))] = 500


def add_voicemail_routes(app: web.Application, store: VoicemailStore,
                         authenticate: Authenticate) -> None:
    def run(fn, *args, **kw):
        return asyncio.to_thread(fn, *args, **kw)

    def caller_box(request: web.Request, roles: set[str] = READERS) -> str:
        who = authenticate(request, roles)
        box = request.match_info["box"]
        try:
            mailbox = store.mailbox(box)
        except UnknownMailbox:
            raise web.HTTPNotFound(text=f"no mailbox {box!r}\n") from None
        if who.role == "agent" and mailbox.owner_agent != who.agent:
            raise web.HTTPNotFound(text=f"no mailbox {box!r}\n")
        return box

    def box_json(box: str) -> dict:
        mb = store.mailbox(box)
        new, saved = store.counts(box)
        return {"box": box, "owner": mb.owner, "new": new, "saved": saved,
                "emails": list(mb.emails), "webhook": mb.webhook,
                "max_length": mb.max_length, "min_length": mb.min_length,
                "max_messages": mb.max_messages, "retention_days": mb.retention_days,
                "greetings": sorted(store.info(box).greetings)}

    async def list_boxes(request: web.Request) -> web.Response:
        who = authenticate(request, READERS)
        boxes = [b.number for b in store.boxes()
                 if who.role != "agent" or b.owner_agent == who.agent]
        return web.json_response({"mailboxes": [await run(box_json, b) for b in boxes]})

    async def get_box(request: web.Request) -> web.Response:
        return web.json_response(await run(box_json, caller_box(request)))

    async def patch_box(request: web.Request) -> web.Response:
        box = caller_box(request, {"admin"})
        settings = (await read_body(request, MailboxSettings)).model_dump(exclude_unset=True)
        try:
            await run(store.update_box, box, **settings)
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response(await run(box_json, box))

    async def put_pin(request: web.Request) -> web.Response:
        box = caller_box(request, {"admin", "agent"})
        pin = (await read_body(request, PinChange)).pin
        try:
            await run(store.set_pin, box, pin)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"pin: {exc}\n") from None
        return web.json_response({"box": box, "pin": "changed"})

    async def list_messages(request: web.Request) -> web.Response:
        box = caller_box(request)
        q = read_query(request, MessageFilter)
        messages = await run(store.list, box, q.folder, since=q.since, until=q.until,
                             caller=q.caller, urgent=q.urgent, limit=q.limit)
        return web.json_response({"box": box, "messages": [message_json(m) for m in messages]})

    async def message(request: web.Request):
        box = caller_box(request)
        try:
            return await run(store.get, box, request.match_info["id"])
        except (NoSuchMessage, UnsafePath):
            raise web.HTTPNotFound(text="no such message\n") from None

    async def get_message(request: web.Request) -> web.Response:
        return web.json_response(message_json(await message(request)))

    async def get_audio(request: web.Request) -> web.StreamResponse:
        m = await message(request)
        return attachment(m.path, "audio/wav", f"voicemail-{m.box}-{m.id}.wav")

    async def patch_message(request: web.Request) -> web.Response:
        m = await message(request)
        folder = (await read_body(request, MessageMove)).folder
        try:
            await run(store.mark, m.box, m.id, folder)
        except NoSuchMessage:
            raise web.HTTPNotFound(text="no such message\n") from None
        return web.json_response(message_json(await run(store.get, m.box, m.id)))

    async def delete_message(request: web.Request) -> web.Response:
        m = await message(request)
        try:
            await run(store.delete, m.box, m.id)
        except NoSuchMessage:
            raise web.HTTPNotFound(text="no such message\n") from None
        return web.Response(status=204)

    def greeting_kind(request: web.Request) -> str:
        kind = request.match_info["kind"]
        if kind not in ("unavailable", "busy", "name", "temporary"):
            raise web.HTTPNotFound(text=f"no greeting kind {kind!r}\n")
        return kind

    async def get_greeting(request: web.Request) -> web.StreamResponse:
        box, kind = caller_box(request), greeting_kind(request)
        path = await run(store.greeting_path, box, kind)
        if path is None:
            raise web.HTTPNotFound(text=f"no {kind} greeting recorded: the default plays\n")
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    async def put_greeting(request: web.Request) -> web.Response:
        box, kind = caller_box(request, {"admin", "supervisor", "agent"}), greeting_kind(request)
        audio = await read_upload(request, MAX_UPLOAD)
        try:
            await run(store.set_greeting, box, kind, audio)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response({"box": box, "greeting": kind}, status=201)

    async def delete_greeting(request: web.Request) -> web.Response:
        box, kind = caller_box(request, {"admin", "supervisor", "agent"}), greeting_kind(request)
        if not await run(store.delete_greeting, box, kind):
            raise web.HTTPNotFound(text=f"no {kind} greeting recorded\n")
        return web.Response(status=204)

    r = app.router
    r.add_get("/api/voicemail", list_boxes)
    r.add_get("/api/voicemail/{box}", get_box)
    r.add_patch("/api/voicemail/{box}", patch_box)
    r.add_put("/api/voicemail/{box}/pin", put_pin)
    r.add_get("/api/voicemail/{box}/messages", list_messages)
    r.add_get("/api/voicemail/{box}/messages/{id}", get_message)
    r.add_get("/api/voicemail/{box}/messages/{id}/audio", get_audio)
    r.add_patch("/api/voicemail/{box}/messages/{id}", patch_message)
    r.add_delete("/api/voicemail/{box}/messages/{id}", delete_message)
    r.add_get("/api/voicemail/{box}/greetings/{kind}", get_greeting)
    r.add_put("/api/voicemail/{box}/greetings/{kind}", put_greeting)
    r.add_delete("/api/voicemail/{box}/greetings/{kind}", delete_greeting)

