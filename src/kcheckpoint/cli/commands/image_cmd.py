"""kcheckpoint image: build a checkpoint OCI image from an archive; write it or push it."""

from __future__ import annotations

import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from kcheckpoint.errors import InputError

from ..common import (
    ArchiveArgument,
    DocumentFormatOption,
    HashOption,
    InsecureOption,
    authfile_option,
    positional,
    push_reference,
    stdin_for,
    want_hash,
)
from ..output import OutputFormat, Progress, warn
from ..report import Report, emit


class LayerCompression(StrEnum):
    """Compression of the image's layer."""

    gzip = "gzip"
    zstd = "zstd"


class Upload(StrEnum):
    """How blobs go to a registry."""

    monolithic = "monolithic"
    chunked = "chunked"


def image(
    archive: ArchiveArgument,
    ref: Annotated[
        str,
        positional(
            "REF", "The image's name: HOST[:PORT]/REPO[:TAG] (NAME[:TAG] is enough without --push)."
        ),
    ],
    oci_layout: Annotated[
        Path | None,
        typer.Option("--oci-layout", metavar="DIR", help="Add the image to this OCI layout."),
    ] = None,
    oci_archive: Annotated[
        Path | None,
        typer.Option("--oci-archive", metavar="FILE", help="Write the image as an oci-archive."),
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the image to REF's registry.")] = False,
    compression: Annotated[
        LayerCompression,
        typer.Option(
            "--compression",
            case_sensitive=False,
            help="Layer compression. gzip is pulled by every runtime; zstd needs containerd "
            ">= 1.5 or CRI-O >= 1.21.",
        ),
    ] = LayerCompression.gzip,
    upload: Annotated[
        Upload, typer.Option("--upload", case_sensitive=False, help="monolithic or chunked.")
    ] = Upload.monolithic,
    chunk_mib: Annotated[
        int, typer.Option("--chunk-size", min=1, help="MiB per chunk with --upload chunked.")
    ] = 16,
    mount_from: Annotated[
        str | None,
        typer.Option(
            "--mount-from",
            metavar="REPO",
            help="Mount blobs from this repository of the same registry instead of sending "
            "them (a cross-repository mount); blobs it does not have are uploaded.",
        ),
    ] = None,
    insecure: InsecureOption = False,
    authfile: Annotated[
        Path | None,
        authfile_option(
            "Registry credentials in docker/podman login format. Default: "
            "$KCHECKPOINT_REGISTRY_USER and $KCHECKPOINT_REGISTRY_PASSWORD, then "
            "$REGISTRY_AUTH_FILE, the containers auth.json and ~/.docker/config.json."
        ),
    ] = None,
    arch: Annotated[
        str | None, typer.Option("--arch", help="The image's architecture. Default: this host's.")
    ] = None,
    fmt: DocumentFormatOption = OutputFormat.text,
    hash_input: HashOption = None,
) -> int:
    """Build a checkpoint OCI image from an archive (any compression, or '-' for stdin).

    One layer holds the archive's members at the top level, as CRI-O, containerd 2.x and Podman
    restore them; the index and the manifest carry every engine's checkpoint annotations. The
    same archive and options give the same digests. Exit 4 when the input is not a checkpoint;
    a failed push leaves no tag behind (exit 5).
    """
    from kcheckpoint.oci.build import build
    from kcheckpoint.oci.layout import describe, write_archive, write_layout
    from kcheckpoint.oci.spec import Reference

    if not (oci_layout or oci_archive or push):
        raise typer.BadParameter("give at least one of --oci-layout, --oci-archive, --push")
    target: Reference | None = None
    if push:
        target = push_reference(ref, insecure, "REF")
    tag = _tag_of(ref)
    full_name = str(target) if target is not None else _full_name(ref)
    credentials = None
    if push:
        from kcheckpoint.oci.registry import credentials_for

        assert target is not None
        credentials = credentials_for(target.host, authfile)
    if oci_archive is not None and not oci_archive.parent.resolve().is_dir():
        raise InputError(f"{oci_archive.parent}: no such directory")

    new_layout = oci_layout is not None and not oci_layout.exists()
    staging_parent = _staging_parent(oci_layout, oci_archive)
    staging = Path(tempfile.mkdtemp(prefix=".kcheckpoint-image-", dir=staging_parent))
    outputs: list[dict[str, Any]] = []
    progress = Progress(archive)
    written = False
    try:
        built = build(
            archive,
            staging,
            stdin=stdin_for(archive),
            compression=compression.value,
            arch=arch,
            progress=progress,
            hash_seekable=bool(want_hash(hash_input, fmt)),
        )
        progress.done()
        if oci_archive is not None:
            write_archive(built, oci_archive, tag, _epoch(built.created), full_name)
            outputs.append(
                {
                    "kind": "oci-archive",
                    "location": f"oci-archive:{oci_archive}:{tag}",
                    "blobs": None,
                }
            )
        if push:
            from kcheckpoint.oci.push import push as push_image

            assert target is not None
            pushed = push_image(
                built,
                target,
                insecure=insecure,
                credentials=credentials,
                chunk=chunk_mib << 20 if upload is Upload.chunked else None,
                mount_from=mount_from,
            )
            outputs.append(
                {
                    "kind": "registry",
                    "location": f"docker://{pushed.reference}",
                    "blobs": {
                        "uploaded": pushed.uploaded,
                        "present": pushed.skipped,
                        "mounted": pushed.mounted,
                    },
                }
            )
        if oci_layout is not None:
            write_layout(built, oci_layout, tag, full_name)
            outputs.append(
                {"kind": "oci-layout", "location": f"oci:{oci_layout}:{tag}", "blobs": None}
            )
        written = True
    finally:
        progress.done()
        shutil.rmtree(staging, ignore_errors=True)
        if new_layout and not written and oci_layout is not None:
            shutil.rmtree(oci_layout, ignore_errors=True)  # nothing half-written is left
    warn(
        "the image holds every memory page of the container; memory may hold passwords, keys "
        "and tokens: push it only where you would keep the archive"
    )
    record = {**describe(built), "outputs": outputs}
    emit(
        Report(
            document={"image": record},
            inputs=[built.input],
            text=lambda: "".join(f"{built.index.digest}  {o['location']}\n" for o in outputs),
            records=[record],
        ),
        fmt,
    )
    return 0


def _tag_of(ref: str) -> str:
    """The tag of NAME[:TAG] or HOST[:PORT]/REPO[:TAG] (latest when there is none)."""
    name = ref.removeprefix("docker://").split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else "latest"


def _full_name(ref: str) -> str | None:
    """REF as a full reference when it names a registry host (for ``ctr images import``)."""
    from kcheckpoint.oci.spec import Reference

    try:
        return str(Reference.parse(ref))
    except ValueError:
        return None


def _staging_parent(layout: Path | None, archive: Path | None) -> Path | None:
    """Stage the layer where it will end, so that writing the layout is a link, not a copy."""
    if layout is not None:
        from kcheckpoint.oci.layout import prepare_layout

        prepare_layout(layout)
        return layout
    if archive is not None:
        return archive.parent.resolve()
    return None


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
