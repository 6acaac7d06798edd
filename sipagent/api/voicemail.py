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
exist.  ``since``/``until`` are ISO 8601 times or Unix seconds.
"""
from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any, Callable

from aiohttp import web

from sipagent.api.files import attachment, read_upload
from sipagent.api.json_body import json_object
from sipagent.config.values import check_email, check_owner, check_url
from sipagent.voicemail.notify import message_json
from sipagent.voicemail.store import NoSuchMessage, UnknownMailbox, UnsafePath, VoicemailStore

READERS = {"admin", "supervisor", "agent"}
# A minute of 16-bit stereo 48 kHz is 11 MB: room for any sane greeting.
MAX_UPLOAD = 16 * 1024 * 1024

Authenticate = Callable[[web.Request, set[str]], Any]   # -> object with .role, .agent


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
        body = await json_object(request)
        try:
            await run(store.update_box, box, **_settings(body))
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response(await run(box_json, box))

    async def put_pin(request: web.Request) -> web.Response:
        box = caller_box(request, {"admin", "agent"})
        pin = (await json_object(request)).get("pin")
        if not isinstance(pin, str):
            raise web.HTTPBadRequest(text="pin: a string of 4 to 12 digits\n")
        try:
            await run(store.set_pin, box, pin)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"pin: {exc}\n") from None
        return web.json_response({"box": box, "pin": "changed"})

    async def list_messages(request: web.Request) -> web.Response:
        box = caller_box(request)
        q = request.query
        folder = q.get("folder")
        if folder not in (None, "new", "saved"):
            raise web.HTTPBadRequest(text="folder: new or saved\n")
        urgent = {"true": True, "1": True, "false": False, "0": False}.get(q.get("urgent", ""))
        try:
            limit = min(int(q.get("limit", "500")), 5000)
        except ValueError:
            raise web.HTTPBadRequest(text="limit: an integer\n") from None
        messages = await run(store.list, box, folder, since=_time(q, "since"),
                             until=_time(q, "until"), caller=q.get("caller"), urgent=urgent,
                             limit=limit)
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
        folder = (await json_object(request)).get("folder")
        if folder not in ("new", "saved"):
            raise web.HTTPBadRequest(text="folder: new or saved\n")
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


_SETTINGS = {"owner": str, "webhook": (str, type(None)), "max_length": (int, float),
             "min_length": (int, float), "max_messages": int, "retention_days": int}


def _settings(body: dict) -> dict:
    """Checked types for VoicemailStore.update_box (which checks the rest)."""
    out: dict = {}
    for key, value in body.items():
        if key == "emails":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("emails: a list of e-mail addresses")
            value = [check_email(v) for v in value]
        elif key not in _SETTINGS:
            raise ValueError(f"unknown or read-only setting {key!r}")
        elif isinstance(value, bool) or not isinstance(value, _SETTINGS[key]):
            raise ValueError(f"{key}: wrong type")
        elif isinstance(value, (int, float)) and (not math.isfinite(value) or value < 0):
            raise ValueError(f"{key}: must be a finite number >= 0")
        elif key == "owner":
            check_owner(value)
        elif key == "webhook" and value is not None:
            value = check_url(value)
        out[key] = float(value) if key in ("max_length", "min_length") else value
    return out


def _time(query, key: str) -> float | None:
    value = query.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise web.HTTPBadRequest(text=f"{key}: an ISO 8601 time or Unix seconds\n") from None
