"""capture --push: stream a captured archive from the service into a checkpoint image, check its
SHA-256 against the service's, then push the image."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx

from kcheckpoint.errors import KCheckpointError, TransferError


def _body(response: httpx.Response) -> Iterator[bytes]:
    """A streamed response body in chunks; a broken download is a TransferError."""
    try:
        yield from response.iter_bytes(1 << 20)
    except httpx.HTTPError as exc:
        raise TransferError(f"the download broke off ({exc})") from exc


def push_checkpoint(
    client: httpx.Client,
    name: str,
    sha256: str | None,
    local: Path | None,
    ref: object,
    insecure: bool,
    authfile: Path | None,
) -> dict[str, Any]:
    """Build the checkpoint image of archive ``name`` and push it to ``ref``."""
    from typing import BinaryIO

    from kcheckpoint.inspect.reader.source import ChunkReader
    from kcheckpoint.oci.build import build
    from kcheckpoint.oci.push import push
    from kcheckpoint.oci.registry import credentials_for
    from kcheckpoint.oci.spec import Reference

    target = cast(Reference, ref)
    credentials = credentials_for(target.host, authfile)
    staging = Path(tempfile.mkdtemp(prefix=".kcheckpoint-image-"))
    try:
        if local is not None:  # already downloaded and verified
            image = build(local, staging)
        else:
            url = f"/checkpoints/{quote(name, safe='')}"
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    raise TransferError(
                        f"download of {name} failed: HTTP {response.status_code}: "
                        f"{response.text.strip()[:300]}"
                    )
                body = cast(BinaryIO, ChunkReader(_body(response)))
                try:
                    image = build("-", staging, stdin=body)
                except KCheckpointError as exc:
                    raise TransferError(f"{name}: {exc.message}") from exc
        if sha256 and image.input.sha256 != sha256.lower():
            raise TransferError(
                f"{name}: SHA-256 mismatch (got {image.input.sha256}, expected {sha256}); "
                "nothing was pushed"
            )
        pushed = push(image, target, insecure=insecure, credentials=credentials)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"reference": pushed.reference, "digest": pushed.digest}
