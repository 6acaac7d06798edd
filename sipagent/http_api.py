"""The engine's HTTP server, on the same asyncio loop as pjsua2.

``/metrics`` for Prometheus (a bearer token is required only when the config
sets ``http.metrics_token``) and ``/healthz`` for liveness.
"""
from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def build_app(engine) -> web.Application:
    app = web.Application()
    token = engine.config.http.metrics_token

    async def metrics(request: web.Request) -> web.Response:
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return web.Response(status=401, text="bearer token required\n")
        body = generate_latest(engine.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "active_calls": len(engine.legs),
                                   "capacity": engine.capacity})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def start_http(engine) -> web.AppRunner:
    runner = web.AppRunner(build_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, str(engine.config.http.listen), engine.config.http.port)
    await site.start()
    return runner
