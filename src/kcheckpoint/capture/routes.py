"""HTTP routes: the kubelet's POST /checkpoint, and what operators miss around it.

Status codes and bodies of POST follow the kubelet (reference: kubelet-cri.md §1.4); the
deliberate divergences are listed in the README. Errors become responses in one place,
:func:`checkpoint_error`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from kcheckpoint.errors import (
    CaptureError,
    CheckpointTimeout,
    CheckpointUnsupported,
    ContainerNotFound,
    KCheckpointError,
    PodNotFound,
    ServiceBusy,
)

from .audit import AuditLog
from .auth import AuthenticationFailed, Identity, TokenAuthenticator
from .metrics import CONTENT_TYPE, Metrics
from .names import InvalidName, check_container, check_namespace, check_pod
from .ranges import SingleRangeFileResponse
from .runtime import CriClient, from_runtime
from .service import CaptureService
from .settings import Settings
from .store import ArchiveInfo, ArchiveMissing, ArchiveStore

INT64 = re.compile(r"[+-]?[0-9]+\Z")
#: The longest checkpoint deadline accepted (one day); longer is a 400 that names it.
MAX_TIMEOUT = 86_400
SHA256_HEADER = "X-Checkpoint-Sha256"


@dataclass
class AppContext:
    """What the routes need; the runtime and service are set by the lifespan."""

    settings: Settings
    auth: TokenAuthenticator
    audit: AuditLog
    metrics: Metrics
    store: ArchiveStore
    runtime: CriClient | None = None
    service: CaptureService | None = None


class HttpError(Exception):
    """A finished plain-text answer (turned into a response by the app's handler)."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


async def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(context)]


async def identity(request: Request, ctx: Ctx) -> Identity:
    """The caller (401 ``Unauthorized`` without a valid credential, as the kubelet answers)."""
    try:
        return ctx.auth.authenticate(request.headers.get("authorization"))
    except AuthenticationFailed as exc:
        ctx.audit.record(
            _action(request),
            status=401,
            remote=_remote(request),
            target=request.url.path,
            error=str(exc),
        )
        ctx.metrics.requests.labels(_route(request), request.method, "401").inc()
        challenge = {"WWW-Authenticate": 'Bearer realm="kcheckpoint"'}
        raise HttpError(401, "Unauthorized", challenge) from None


Caller = Annotated[Identity, Depends(identity)]

checkpoint_router = APIRouter(tags=["kubelet"])
router = APIRouter()


@checkpoint_router.post(
    "/checkpoint/{namespace}/{pod}/{container}",
    response_class=Response,
    responses={
        200: {"description": 'Exactly `{"items":["<absolute path>"]}`'},
        400: {"description": "Invalid name or unparsable timeout (the kubelet says 404)"},
        401: {"description": "Unauthorized"},
        403: {"description": "The token may not act on this namespace"},
        404: {"description": "Pod or container does not exist"},
        429: {"description": "Too many checkpoints in progress; see Retry-After"},
        500: {"description": "The runtime failed, or has no checkpoint support"},
    },
)
async def checkpoint(
    request: Request, namespace: str, pod: str, container: str, ctx: Ctx, caller: Caller
) -> Response:
    """Checkpoint a running container, as the kubelet's Checkpoint API does.

    `timeout` (seconds; the last value wins; 0 or absent means the runtime default) only ever
    lengthens the CRI deadline beyond the default, as in the kubelet.
    """
    start = time.monotonic()
    target = f"{namespace}/{pod}/{container}"
    audit = {"user": caller.user, "uid": caller.uid, "remote": _remote(request), "target": target}
    try:
        check_namespace(namespace)
        check_pod(pod)
        check_container(container)
        if not caller.may_access(namespace):
            raise HttpError(403, _forbidden(caller, "create", namespace))
        timeout = parse_timeout(request.query_params.getlist("timeout"))
        assert ctx.service is not None, "the lifespan did not run"
        result = await ctx.service.checkpoint(namespace, pod, container, timeout)
    except (InvalidName, HttpError, KCheckpointError) as exc:
        error = checkpoint_error(exc, target)
        ctx.metrics.checkpoints.labels(_result(exc)).inc()
        if from_runtime(exc):
            ctx.metrics.runtime_errors.labels(type(exc).__name__).inc()
        ctx.metrics.requests.labels("checkpoint", "POST", str(error.status)).inc()
        ctx.audit.record(
            "checkpoint", status=error.status, error=error.body.strip(), **audit, **_ms(start)
        )
        raise error from exc
    archive = result.archive
    ctx.metrics.checkpoints.labels("ok").inc()
    ctx.metrics.requests.labels("checkpoint", "POST", "200").inc()
    ctx.audit.record(
        "checkpoint",
        status=200,
        path=archive.path,
        size=archive.size,
        sha256=archive.sha256,
        removed=[r.info.name for r in result.removed] or None,
        **audit,
        **_ms(start),
    )
    body = '{"items":[' + json.dumps(archive.path, ensure_ascii=False) + "]}"
    return Response(
        body,
        media_type="application/json",
        headers={SHA256_HEADER: archive.sha256 or "", "X-Checkpoint-Size": str(archive.size)},
    )


def parse_timeout(values: list[str]) -> int | None:
    """The kubelet's rule: the last value, base-10 int64 (``+30``, ``030`` allowed)."""
    if not values:
        return None
    text = values[-1]
    if not INT64.match(text) or not -(2**63) <= int(text) < 2**63:
        raise HttpError(400, "cannot parse value of timeout parameter")
    if int(text) > MAX_TIMEOUT:  # a deadline that far away overflows the deadline arithmetic
        raise HttpError(400, f"timeout must be at most {MAX_TIMEOUT} seconds")
    return int(text)


def checkpoint_error(exc: BaseException, target: str) -> HttpError:
    """The one table from errors to POST /checkpoint answers."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, InvalidName):
        return HttpError(400, str(exc))
    if isinstance(exc, ServiceBusy):
        return HttpError(
            429,
            f"too many checkpoints in progress ({exc.message}); retry later",
            {"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, PodNotFound | ContainerNotFound) and not from_runtime(exc):
        return HttpError(404, exc.message)
    message = exc.message if isinstance(exc, KCheckpointError) else str(exc)
    return HttpError(500, f"checkpointing of {target} failed ({message})")


def _result(exc: BaseException) -> str:
    if isinstance(exc, HttpError):
        return {400: "invalid", 403: "forbidden"}.get(exc.status, "error")
    if isinstance(exc, InvalidName):
        return "invalid"
    if isinstance(exc, ServiceBusy):
        return "busy"
    if isinstance(exc, PodNotFound | ContainerNotFound) and not from_runtime(exc):
        return "not_found"
    if isinstance(exc, CheckpointTimeout):
        return "timeout"
    if isinstance(exc, CheckpointUnsupported):
        return "unsupported"
    if isinstance(exc, CaptureError) and from_runtime(exc):
        return "runtime_error"
    return "error"


@router.get("/checkpoints", tags=["archives"])
async def list_archives(request: Request, ctx: Ctx, caller: Caller) -> JSONResponse:
    """Archives in the checkpoint directory that the caller's namespaces allow, oldest first."""
    archives = await asyncio.to_thread(ctx.store.archives)
    items = [a.public() for a in archives if caller.may_access(a.namespace)]
    ctx.metrics.requests.labels("checkpoints", "GET", "200").inc()
    return JSONResponse({"items": items})


@router.get(
    "/checkpoints/{name}",
    tags=["archives"],
    response_class=FileResponse,
    responses={200: {"content": {"application/x-tar": {}}}, 206: {"description": "A range"}},
)
async def download(request: Request, name: str, ctx: Ctx, caller: Caller) -> Response:
    """Stream an archive, with its SHA-256 in `X-Checkpoint-Sha256` and `Repr-Digest`.

    One `Range` per request is answered with 206, for resumable transfers; an invalid Range,
    or several ranges, are ignored (200 with the whole archive), as RFC 9110 allows.
    """
    info = await _archive(ctx, caller, request, name, "get", hashed=True)
    assert info.sha256 is not None
    digest = base64.b64encode(bytes.fromhex(info.sha256)).decode()
    _archive_request(
        ctx,
        caller,
        request,
        "download",
        200,
        name,
        path=info.path,
        size=info.size,
        sha256=info.sha256,
        range=request.headers.get("range"),
    )
    return SingleRangeFileResponse(
        info.path,
        media_type="application/x-tar",
        headers={SHA256_HEADER: info.sha256, "Repr-Digest": f"sha-256=:{digest}:"},
    )


@router.delete("/checkpoints/{name}", tags=["archives"], status_code=204)
async def delete(request: Request, name: str, ctx: Ctx, caller: Caller) -> Response:
    """Delete an archive."""
    await _archive(ctx, caller, request, name, "delete", hashed=False)
    try:
        info = await asyncio.to_thread(ctx.store.delete, name)
    except ArchiveMissing as exc:
        raise HttpError(404, f"archive {name} not found") from exc
    _archive_request(ctx, caller, request, "delete", 204, name, path=info.path, sha256=info.sha256)
    return Response(status_code=204)


async def _archive(
    ctx: AppContext, caller: Identity, request: Request, name: str, verb: str, *, hashed: bool
) -> ArchiveInfo:
    """The archive ``name`` if it exists and the caller may see it; else an HttpError."""
    try:
        info = await asyncio.to_thread(ctx.store.get if hashed else ctx.store.describe, name)
        if not caller.may_access(info.namespace):
            raise HttpError(403, _forbidden(caller, verb, info.namespace or "<unknown>"))
    except (InvalidName, ArchiveMissing, HttpError) as exc:
        if isinstance(exc, HttpError):
            error = exc
        elif isinstance(exc, InvalidName):
            error = HttpError(400, str(exc))
        else:
            error = HttpError(404, f"archive {name} not found")
        action = "download" if verb == "get" else "delete"
        _archive_request(
            ctx, caller, request, action, error.status, name[:300], error=error.body.strip()
        )
        raise error from exc
    return info


def _archive_request(
    ctx: AppContext,
    caller: Identity,
    request: Request,
    action: str,
    status: int,
    target: str,
    **fields: object,
) -> None:
    """The audit record and the request count of a download or a delete."""
    ctx.metrics.requests.labels("checkpoints", request.method, str(status)).inc()
    ctx.audit.record(
        action,
        status=status,
        user=caller.user,
        uid=caller.uid,
        remote=_remote(request),
        target=target,
        **fields,
    )


@router.get("/healthz", tags=["service"])
async def healthz(ctx: Ctx) -> JSONResponse:
    """Whether the CRI runtime answers (200) or not (503)."""
    assert ctx.runtime is not None, "the lifespan did not run"
    try:
        version = await ctx.runtime.version(timeout=2.0)
    except CaptureError as exc:
        body = {"status": "unavailable", "runtime_endpoint": ctx.runtime.endpoint}
        body["error"] = exc.message
        return JSONResponse(body, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "demo": ctx.settings.demo,
            "runtime_endpoint": ctx.runtime.endpoint,
            "runtime": {
                "name": version.runtime_name,
                "version": version.runtime_version,
                "api_version": version.runtime_api_version,
            },
            "checkpoint_dir": str(ctx.store.directory),
        }
    )


@router.get("/metrics", tags=["service"], response_class=PlainTextResponse)
async def metrics(ctx: Ctx) -> Response:
    """Prometheus metrics."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


def _forbidden(caller: Identity, verb: str, namespace: str) -> str:
    return (
        f"Forbidden (user={caller.user}, verb={verb}, resource=nodes, "
        f"subresource(s)=[checkpoint], namespace={namespace})\n"
    )


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def _route(request: Request) -> str:
    path = request.url.path
    if path.startswith("/checkpoints"):
        return "checkpoints"
    return "checkpoint" if path.startswith("/checkpoint/") else "other"


def _action(request: Request) -> str:
    if request.url.path.startswith("/checkpoint/"):
        return "checkpoint"
    return {"DELETE": "delete"}.get(request.method, "download")


def _ms(start: float) -> dict[str, float]:
    return {"duration_ms": round((time.monotonic() - start) * 1000, 3)}
