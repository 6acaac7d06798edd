"""Files through the HTTP API: an upload read whole under a size cap, and a
download sent as an attachment (voicemail audio, fax documents and faxes)."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

_CHUNK = 1 << 16


async def read_upload(request: web.Request, max_size: int) -> bytes:
    """The request body, or 413 as soon as it is known to be over
    ``max_size``: from Content-Length before reading anything, else (a
    chunked body) while it streams in, so it is never held whole."""
    if (request.content_length or 0) > max_size:
        raise web.HTTPRequestEntityTooLarge(max_size=max_size,
                                            actual_size=request.content_length)
    data = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > max_size:
            raise web.HTTPRequestEntityTooLarge(max_size=max_size, actual_size=len(data))
    return bytes(data)


def attachment(path: Path | str, content_type: str, name: str) -> web.FileResponse:
    """``path`` sent for saving as ``name`` (never shown inline)."""
    return web.FileResponse(path, headers={
        "Content-Type": content_type, "Content-Disposition": f'attachment; filename="{name}"'})
