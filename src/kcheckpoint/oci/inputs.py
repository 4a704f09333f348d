"""Images as inputs of every reading command: ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]`` (or
a plain oci-archive path), ``docker://HOST/REPO:TAG`` and ``HOST/REPO@sha256:...``.

``register()`` hands the reader a resolver; the reader then streams the image's one layer like
any compressed archive, and the layer is checked against its digest as it streams.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kcheckpoint.errors import InputError
from kcheckpoint.inspect.reader.source import register_resolver

from .build import host_arch
from .content import VerifyingReader, find_layer, load_document, verified
from .layout import looks_like_oci_archive, open_archive_layer, open_layout_layer, split_tag
from .spec import Reference

Opened = tuple[str, BinaryIO, int | None]


def resolve(name: str) -> contextlib.AbstractContextManager[Opened] | None:
    """The reader's resolver: an opener for image names, None for anything else."""
    if name.startswith("oci:"):
        path, tag = split_tag(name.removeprefix("oci:"))
        return _verified(name, open_layout_layer(Path(path), tag, name, host_arch()))
    if name.startswith("oci-archive:"):
        path, tag = split_tag(name.removeprefix("oci-archive:"))
        return _verified(name, open_archive_layer(Path(path), tag, name, host_arch()))
    if name.startswith("docker://") or ("@sha256:" in name and not os.path.exists(name)):
        return _verified(name, open_registry_layer(name))
    if name != "-" and os.path.isfile(name) and looks_like_oci_archive(name):
        return _verified(name, open_archive_layer(Path(name), None, name, host_arch()))
    return None


@contextlib.contextmanager
def _verified(
    label: str, opener: contextlib.AbstractContextManager[tuple[dict[str, Any], BinaryIO]]
) -> Iterator[Opened]:
    with opener as (layer, raw):
        reader = VerifyingReader(raw, layer, label)
        try:
            yield label, reader, int(layer["size"])  # type: ignore[misc]
            # the consumer is done: whatever it left is read, so the digest covers every byte
            reader.finish()
        finally:
            reader.stop()


@contextlib.contextmanager
def open_registry_layer(name: str) -> Iterator[tuple[dict[str, Any], BinaryIO]]:
    """The layer of a registry image, streamed from the registry."""
    from .registry import Registry, credentials_for

    try:
        ref = Reference.parse(name)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    with Registry(ref, credentials=credentials_for(ref.host)) as registry:
        data, media_type = registry.manifest(ref.target)
        top: dict[str, Any] = {"digest": ref.digest, "size": len(data)}
        if ref.digest is not None:
            verified(top, data, name)
        else:
            import hashlib

            top["digest"] = "sha256:" + hashlib.sha256(data).hexdigest()
        top["mediaType"] = load_document(data, name).get("mediaType") or media_type
        first = {top["digest"]: data}

        def fetch(desc: dict[str, Any]) -> bytes:
            return first.pop(desc["digest"], None) or registry.fetch(desc)

        layer, _ = find_layer(top, fetch, name, host_arch())
        with registry.open_blob(layer["digest"]) as raw:
            yield layer, raw


def register() -> None:
    """Let every reading command open images (the CLI calls this once)."""
    register_resolver(resolve)
