"""Reading a JSON request body: one object, or a clear 400."""
from __future__ import annotations

from aiohttp import web


async def json_object(request: web.Request) -> dict:
    """The body as a JSON object ({} when there is none)."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body is not JSON\n") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object\n")
    return body
