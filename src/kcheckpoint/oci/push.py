"""Push a built checkpoint image: blobs first, then the manifest by digest, then the index
under its tag. The tag is the last write, so a failure anywhere leaves no tag pointing at half
an image (blobs already sent are unreferenced, and a registry's garbage collection drops them).
"""

from __future__ import annotations

from dataclasses import dataclass

from kcheckpoint.errors import RegistryError

from .build import CheckpointImage
from .registry import Registry
from .spec import OCI_INDEX, OCI_MANIFEST, Reference


@dataclass(frozen=True)
class Pushed:
    """Where the image went and what the registry said it stored."""

    reference: str
    digest: str
    uploaded: int
    #: Blobs the registry had already, or mounted from ``mount_from``.
    skipped: int
    mounted: int = 0


def push(
    image: CheckpointImage,
    ref: Reference,
    *,
    insecure: bool = False,
    credentials: tuple[str, str] | None = None,
    chunk: int | None = None,
    mount_from: str | None = None,
) -> Pushed:
    """Push ``image`` to ``ref``; ``chunk`` bytes per PATCH, or one PUT per blob when None;
    blobs are mounted from the repository ``mount_from`` (same registry) when it has them."""
    if ref.digest and ref.digest != image.index.digest:
        raise RegistryError(
            f"{ref}: the image's digest is {image.index.digest}, not the one in the reference"
        )
    try:
        return _push(image, ref, insecure, credentials, chunk, mount_from)
    except RegistryError as exc:
        if exc.hint is None:
            exc.hint = "no tag was written: the registry holds no half image under this name"
        raise


def _push(
    image: CheckpointImage,
    ref: Reference,
    insecure: bool,
    credentials: tuple[str, str] | None,
    chunk: int | None,
    mount_from: str | None,
) -> Pushed:
    uploaded = skipped = mounted = 0
    with Registry(ref, push=True, insecure=insecure, credentials=credentials) as registry:
        for blob in (image.layer, image.config):
            if registry.has_blob(blob.digest):
                skipped += 1
                continue
            with blob.open() as fh:
                if registry.upload(fh, blob.digest, blob.size, chunk, mount_from):
                    mounted += 1
                    continue
            uploaded += 1
        manifest = image.manifest.data or b""
        stored = registry.put_manifest(image.manifest.digest, manifest, OCI_MANIFEST)
        _check(stored, image.manifest.digest, ref)
        index = image.index.data or b""
        stored = registry.put_manifest(ref.tag or image.index.digest, index, OCI_INDEX)
        _check(stored, image.index.digest, ref)
    name = f"{ref.host}/{ref.repository}"
    shown = f"{name}:{ref.tag}" if ref.tag else f"{name}@{image.index.digest}"
    return Pushed(shown, image.index.digest, uploaded, skipped, mounted)


def _check(stored: str, expected: str, ref: Reference) -> None:
    if stored and stored != expected:
        raise RegistryError(f"{ref}: the registry stored {stored}, not {expected}")
