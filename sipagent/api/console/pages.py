"""Serving the console: the app shell at ``/`` and its static files under
``/console/`` (package data in ``static/``).

Every answer carries a strict Content-Security-Policy: scripts, styles and
connections only from this origin, no inline script or style, no framing.
So even text that slipped into the page unescaped could not run.  The pages
never put data through ``innerHTML`` in the first place (``textContent`` and
DOM calls only); the policy is the second wall.

Files are revalidated on every load (``no-cache`` with Last-Modified/ETag):
an engine upgrade must never leave an old script talking to a new API.
A path that leaves ``static/`` (``..``, a symlink out) is a 404.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
# Types by suffix, not by the host's mimetypes database: a module script
# served as text/plain is refused by the browser (nosniff).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


def static_file(relative: str) -> Path | None:
    """The file under ``static/`` that ``relative`` names, or None when it
    names none (missing, a directory, an unknown type, or outside).  Only
    plain names separated by single slashes: no ``..``, ``.`` or empty part."""
    if any(part in ("", ".", "..") or "\\" in part or "\x00" in part
           for part in relative.split("/")):
        return None
    try:
        path = (STATIC / relative).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(STATIC) or not path.is_file():
        return None
    if path.suffix not in CONTENT_TYPES:
        return None
    return path


def _file_response(path: Path) -> web.FileResponse:
    response = web.FileResponse(path, headers=SECURITY_HEADERS)
    response.content_type = CONTENT_TYPES[path.suffix].split(";")[0]
    if "charset" in CONTENT_TYPES[path.suffix]:
        response.charset = "utf-8"
    return response


def add_console_routes(app: web.Application) -> None:
    async def shell(request: web.Request) -> web.StreamResponse:
        return _file_response(STATIC / "index.html")

    async def asset(request: web.Request) -> web.StreamResponse:
        path = static_file(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound(text="no such console file\n", headers=SECURITY_HEADERS)
        return _file_response(path)

    app.router.add_get("/", shell)
    app.router.add_get("/console/{path:.+}", asset)
