"""The FastAPI application: ``create_app(settings)``, with a lifespan that opens the CRI channel.

Run it with ``kcheckpoint serve``; tests use ``with TestClient(create_app(settings))`` so the
lifespan runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kcheckpoint import __version__

from .audit import AuditLog
from .auth import TokenAuthenticator
from .metrics import Metrics
from .routes import AppContext, HttpError, checkpoint_router, router
from .runtime import CriClient, resolve_endpoint
from .service import CaptureService
from .settings import Settings
from .store import ArchiveStore

DESCRIPTION = """\
The kubelet's Checkpoint API (`POST /checkpoint/{namespace}/{pod}/{container}`) over any CRI
runtime, with listing, download (SHA-256, Range), deletion, retention, audit and metrics.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Reading the token file and finding the runtime socket happen here, so a
    bad configuration fails before the server starts."""
    endpoint = resolve_endpoint(settings.runtime_endpoint)
    ctx = AppContext(
        settings=settings,
        auth=TokenAuthenticator.from_file(
            settings.token_auth_file, allow_anonymous=settings.allow_anonymous
        ),
        audit=AuditLog(settings.audit_log),
        metrics=Metrics(),
        store=ArchiveStore(settings.checkpoint_dir),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ctx.store.ensure_directory)
        ctx.runtime = CriClient(endpoint, request_timeout=settings.runtime_request_timeout)
        ctx.service = CaptureService(settings, ctx.runtime, ctx.store, ctx.metrics)
        await asyncio.to_thread(ctx.service.apply_retention)
        try:
            yield
        finally:
            await ctx.service.close()
            await ctx.runtime.close()
            ctx.audit.close()

    title = "kcheckpoint capture service" + (" (DEMO runtime)" if settings.demo else "")
    app = FastAPI(title=title, version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    if settings.checkpoint_enabled:
        app.include_router(checkpoint_router)
    app.include_router(router)

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> Response:
        return PlainTextResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The kubelet's texts: Go's ServeMux when the feature is off, go-restful otherwise.
        body = str(exc.detail)
        if exc.status_code == 404 and exc.detail == "Not Found":
            gated = request.url.path.startswith("/checkpoint/") and not settings.checkpoint_enabled
            body = "404 page not found\n" if gated else "404: Page Not Found"
        elif exc.status_code == 405:
            body = "405: Method Not Allowed"
        return PlainTextResponse(body, status_code=exc.status_code, headers=exc.headers)

    return app
