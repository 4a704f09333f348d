"""kcheckpoint capture: ask a capture service for a checkpoint, then download and verify it."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint.errors import InputError

from ..common import (
    DocumentFormatOption,
    InsecureOption,
    authfile_option,
    positional,
    push_reference,
)
from ..output import OutputFormat, out, warn


def capture(
    url: Annotated[str, typer.Argument(help="The capture service, e.g. https://node-1:10270.")],
    target: Annotated[
        str, positional("NS/POD/CONTAINER", "The container: namespace, pod and container name.")
    ],
    download: Annotated[
        Path | None,
        typer.Option(
            "--download",
            "-d",
            help="Download the archive into this directory and verify its SHA-256.",
            file_okay=False,
        ),
    ] = None,
    timeout: Annotated[
        int | None,
        typer.Option(help="Checkpoint timeout in seconds (only lengthens the runtime default)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the bearer token. Default: $KCHECKPOINT_TOKEN, if set.",
            dir_okay=False,
        ),
    ] = None,
    cacert: Annotated[
        Path | None, typer.Option(help="CA bundle that signed the service's certificate.")
    ] = None,
    cert: Annotated[Path | None, typer.Option(help="Client certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option(help="Client certificate's private key.")] = None,
    http_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the service (the checkpoint included).")
    ] = 900.0,
    fmt: DocumentFormatOption = OutputFormat.text,
    push: Annotated[
        str | None,
        typer.Option(
            "--push",
            metavar="REF",
            help="Also push the checkpoint as an OCI image to REF (HOST[:PORT]/REPO[:TAG]); the "
            "archive streams from the service into the image, its SHA-256 checked on the way.",
        ),
    ] = None,
    insecure: InsecureOption = False,
    authfile: Annotated[Path | None, authfile_option("Registry credentials (see `image`).")] = None,
) -> int:
    """Checkpoint a container through a capture service; optionally download the archive,
    or push it as a checkpoint image.

    Prints the archive's path on the node (and the local copy with --download, the image with
    --push). Any failure, including a SHA-256 mismatch, exits 5 and leaves no partial download
    and no image tag.
    """
    import httpx

    from kcheckpoint.capture.client import Target, checkpoint
    from kcheckpoint.capture.client import download as fetch
    from kcheckpoint.capture.names import InvalidName
    from kcheckpoint.render.jsonout import dumps, dumps_lines

    try:
        parsed = Target.parse(target)
    except InvalidName as exc:
        raise typer.BadParameter(str(exc), param_hint="TARGET") from exc
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("the URL must start with http:// or https://", param_hint="URL")
    if download is not None and not download.is_dir():
        raise InputError(f"{download}: no such directory")
    image_ref = None if push is None else push_reference(push, insecure, "--push")
    headers = {}
    token = _token(token_file)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        tls = ssl.create_default_context(cafile=str(cacert) if cacert else None)
        if cert is not None:
            tls.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"cannot load the TLS files: {exc}") from exc
    client = httpx.Client(
        base_url=url.rstrip("/"),
        headers=headers,
        verify=tls,
        timeout=httpx.Timeout(http_timeout, connect=10.0),
    )
    with client:
        outcome = checkpoint(client, parsed, timeout=timeout)
        local: Path | None = None
        digest = outcome.sha256
        if download is not None:
            local, digest = fetch(client, outcome.name, download, expected_sha256=outcome.sha256)
            warn(
                f"{local}: a checkpoint holds every memory page of the container; memory may "
                "hold passwords, keys and tokens: handle it as a secret"
            )
        pushed = None
        if image_ref is not None:
            from .capture_push import push_checkpoint

            pushed = push_checkpoint(
                client, outcome.name, digest, local, image_ref, insecure, authfile
            )
    row = {
        "path": outcome.path,
        "name": outcome.name,
        "sha256": digest,
        "size": outcome.size,
        "downloaded": str(local) if local else None,
        "image": pushed,
    }
    if fmt is OutputFormat.json:
        out(dumps(row))
    elif fmt is OutputFormat.jsonl:
        out(dumps_lines([row]))
    else:
        image_line = f"{pushed['digest']}  docker://{pushed['reference']}\n" if pushed else ""
        out(f"{outcome.path}\n" + (f"{local}\n" if local else "") + image_line)
    return 0


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            return token_file.read_text().strip() or None
        except OSError as exc:
            raise InputError(f"{token_file}: cannot read the token ({exc.strerror})") from exc
    return os.environ.get("KCHECKPOINT_TOKEN") or None
