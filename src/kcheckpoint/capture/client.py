"""The client of the capture service: checkpoint, then download and verify the archive.

For capture-then-transfer scripts: every failure raises a ``CaptureError`` (the CLI exits 5),
and a download that fails, is cut short or does not match its SHA-256 leaves no file behind.
An interrupted download resumes with ``Range`` (and ``If-Range``, so a replaced archive is
never stitched onto an old one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from kcheckpoint.errors import (
    CaptureError,
    CheckpointFailed,
    ContainerNotFound,
    PodNotFound,
    ServiceBusy,
    TransferError,
    UnsafeOutput,
)

from .names import InvalidName, check_container, check_namespace, check_pod, parse_archive_name

SHA256_HEADER = "x-checkpoint-sha256"


@dataclass(frozen=True)
class Target:
    """NAMESPACE/POD/CONTAINER, validated."""

    namespace: str
    pod: str
    container: str

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = text.split("/")
        if len(parts) != 3:
            raise InvalidName(f"expected NAMESPACE/POD/CONTAINER, got {text!r}")
        return cls(check_namespace(parts[0]), check_pod(parts[1]), check_container(parts[2]))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"


@dataclass(frozen=True)
class CaptureOutcome:
    """What the service wrote, and where the verified copy is (when downloaded)."""

    path: str
    name: str
    sha256: str | None
    size: int | None
    downloaded: Path | None


def checkpoint(
    client: httpx.Client, target: Target, *, timeout: int | None = None
) -> CaptureOutcome:
    """POST /checkpoint/...; the archive's path on the node, and its digest when the server is
    kcheckpoint (a kubelet sends none)."""
    url = "/checkpoint/" + "/".join(
        quote(p, safe="") for p in (target.namespace, target.pod, target.container)
    )
    params = {"timeout": str(timeout)} if timeout is not None else None
    try:
        response = client.post(url, params=params)
    except httpx.HTTPError as exc:
        raise TransferError(f"cannot reach the capture service: {exc}") from exc
    if response.status_code != 200:
        raise _answer_error(response, target)
    try:
        (path,) = json.loads(response.text)["items"]
        name = parse_archive_name(os.path.basename(path)).name
    except (ValueError, KeyError, TypeError, InvalidName) as exc:
        raise TransferError(f"unexpected answer from the service: {response.text[:200]!r}") from exc
    size = response.headers.get("x-checkpoint-size")
    return CaptureOutcome(
        path=path,
        name=name,
        sha256=response.headers.get(SHA256_HEADER) or None,
        size=int(size) if size and size.isdigit() else None,
        downloaded=None,
    )


def _answer_error(response: httpx.Response, target: Target) -> CaptureError:
    body = response.text.strip()
    status = response.status_code
    if status == 404 and body == "pod does not exist":
        return PodNotFound(f"{target}: pod does not exist")
    if status == 404 and body.startswith("container "):
        return ContainerNotFound(f"{target}: {body}")
    if status == 429:
        retry = response.headers.get("retry-after", "")
        return ServiceBusy(
            f"{target}: the service is busy ({body})",
            retry_after=int(retry) if retry.isdigit() else 0,
            hint=f"retry in {retry} s" if retry else None,
        )
    hint = {
        401: "pass a token: --token-file FILE or KCHECKPOINT_TOKEN",
        403: "this token may not checkpoint in that namespace",
    }.get(status)
    return CheckpointFailed(f"{target}: HTTP {status}: {body[:500]}", code=str(status), hint=hint)


def download(
    client: httpx.Client,
    name: str,
    directory: Path,
    *,
    expected_sha256: str | None = None,
    attempts: int = 3,
) -> tuple[Path, str]:
    """Download archive ``name`` into ``directory``, verified; (final path, sha256)."""
    parse_archive_name(name)
    final = directory / name
    if os.path.lexists(final):
        raise UnsafeOutput(f"{final} already exists; not overwriting it")
    part = directory / f".{name}.part"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as exc:
        raise UnsafeOutput(f"{part} exists: another download of this archive is running") from exc
    except OSError as exc:
        raise TransferError(f"cannot write to {directory}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            digest, advertised = _fetch(client, name, out, attempts)
        if advertised is None:
            raise TransferError(f"the service sent no SHA-256 for {name}; cannot verify it")
        for expected in filter(None, (advertised, expected_sha256)):
            if digest != expected.lower():
                raise TransferError(
                    f"{name}: SHA-256 mismatch (got {digest}, expected {expected}); "
                    "the download was removed"
                )
        try:
            os.link(part, final)
        except FileExistsError as exc:
            raise UnsafeOutput(f"{final} appeared during the download; not overwriting it") from exc
        return final, digest
    finally:  # after success, only the second link goes; after a failure, the partial file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


def _fetch(client: httpx.Client, name: str, out: object, attempts: int) -> tuple[str, str | None]:
    """Stream the archive into ``out``, resuming with Range after a broken connection."""
    sha = hashlib.sha256()
    written = 0
    advertised: str | None = None
    validator: str | None = None
    write = out.write  # type: ignore[attr-defined]
    url = f"/checkpoints/{quote(name, safe='')}"
    for attempt in range(1, attempts + 1):
        headers = {}
        if written:
            headers["Range"] = f"bytes={written}-"
            if validator:
                headers["If-Range"] = validator
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code not in (200, 206):
                    response.read()
                    raise TransferError(
                        f"download of {name} failed: HTTP {response.status_code}: "
                        f"{response.text.strip()[:300]}"
                    )
                if response.status_code == 200 and written:
                    # the server ignored the range (or the archive changed): start over
                    out.seek(0)  # type: ignore[attr-defined]
                    out.truncate()  # type: ignore[attr-defined]
                    sha, written = hashlib.sha256(), 0
                advertised = response.headers.get(SHA256_HEADER) or advertised
                validator = response.headers.get("etag") or validator
                for chunk in response.iter_bytes():
                    write(chunk)
                    sha.update(chunk)
                    written += len(chunk)
                expected = response.headers.get("content-length")
                return_now = True
                if expected is not None and response.status_code == 200:
                    return_now = written == int(expected)
                if return_now:
                    return sha.hexdigest(), advertised
        except (httpx.TransportError, httpx.StreamError) as exc:
            if attempt == attempts:
                raise TransferError(
                    f"download of {name} failed after {attempts} attempts: {exc}"
                ) from exc
    raise TransferError(f"download of {name} was cut short")
