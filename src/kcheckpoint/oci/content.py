"""Read a checkpoint image: from an index or manifest down to its one layer, every document and
the layer checked against the digest that names it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

from kcheckpoint.errors import ArchiveNotFound, DigestMismatch, FormatError
from kcheckpoint.inspect.reader.digest import BackgroundHash

from .spec import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, REF_NAME, valid_digest

#: Returns the bytes a descriptor names (checked by the caller with ``verified``).
Fetch = Callable[[dict[str, Any]], bytes]
_INDEXES = (OCI_INDEX, DOCKER_LIST)
_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
_MAX_DOCUMENT = 4 << 20


def verified(desc: dict[str, Any], data: bytes, label: str) -> bytes:
    """``data`` when it has the descriptor's size and digest; else DigestMismatch."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if desc.get("size") is not None and desc["size"] != len(data):
        raise DigestMismatch(
            f"{label}: {desc['digest']} is {len(data)} bytes, the descriptor says {desc['size']}"
        )
    if digest != desc["digest"]:
        raise DigestMismatch(f"{label}: content of {desc['digest']} hashes to {digest}")
    return data


def load_document(data: bytes, label: str) -> dict[str, Any]:
    """An index or manifest as JSON; FormatError when it is not one."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{label}: an image document is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise FormatError(f"{label}: an image document is not a JSON object")
    return doc


def check_descriptor(desc: Any, label: str) -> dict[str, Any]:
    """A descriptor with a sha256 digest and a size, or FormatError."""
    if (
        not isinstance(desc, dict)
        or not isinstance(desc.get("digest"), str)
        or not valid_digest(desc["digest"])
        or not isinstance(desc.get("size"), int)
        or desc["size"] < 0
    ):
        raise FormatError(f"{label}: a descriptor has no valid sha256 digest and size")
    return desc


def select_tag(index: dict[str, Any], tag: str | None, label: str) -> dict[str, Any]:
    """The entry of an image layout's ``index.json`` named ``tag`` (or its only entry)."""
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"{label}: the image index lists no images")
    if tag is None:
        if len(entries) > 1:
            names = sorted(
                str((e.get("annotations") or {}).get(REF_NAME))
                for e in entries
                if isinstance(e, dict)
            )
            raise FormatError(
                f"{label}: the layout holds {len(entries)} images; name one",
                hint=f"add :TAG, one of {', '.join(names)}",
            )
        return check_descriptor(entries[0], label)
    for entry in entries:
        if isinstance(entry, dict) and (entry.get("annotations") or {}).get(REF_NAME) == tag:
            return check_descriptor(entry, label)
    raise ArchiveNotFound(f"{label}: no image tagged {tag!r}")


def find_layer(
    top: dict[str, Any], fetch: Fetch, label: str, arch: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Follow ``top`` (an index or a manifest) to the image's one layer.

    Returns the layer's descriptor and the annotations met on the way (the manifest's win).
    An index with several images is narrowed to linux/``arch``.
    """
    desc = top
    annotations: dict[str, str] = {}
    for _ in range(4):
        doc = load_document(verified(desc, fetch(desc), label), label)
        if isinstance(doc.get("annotations"), dict):
            annotations.update(doc["annotations"])
        media = doc.get("mediaType") or desc.get("mediaType")
        if "manifests" in doc or media in _INDEXES:
            desc = _pick(doc.get("manifests"), label, arch)
            continue
        if "layers" in doc or media in _MANIFESTS:
            layers = doc.get("layers")
            if not isinstance(layers, list) or len(layers) != 1:
                count = len(layers) if isinstance(layers, list) else 0
                raise FormatError(
                    f"{label}: a checkpoint image has one layer; this image has {count}"
                )
            return check_descriptor(layers[0], label), annotations
        raise FormatError(f"{label}: not an image index or manifest ({media})")
    raise FormatError(f"{label}: image indexes nest too deep")


def _pick(entries: Any, label: str, arch: str) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"{label}: the image index lists no images")
    if len(entries) == 1:
        return check_descriptor(entries[0], label)
    for entry in entries:
        plat = entry.get("platform") if isinstance(entry, dict) else None
        if (
            isinstance(plat, dict)
            and plat.get("os") == "linux"
            and plat.get("architecture") == arch
        ):
            return check_descriptor(entry, label)
    raise FormatError(f"{label}: the image index has no linux/{arch} image")


class VerifyingReader(io.RawIOBase):
    """A layer's bytes, hashed as they stream by and checked at their end.

    At the end of the stream (or on ``finish``) a size or digest that differs from the
    descriptor's raises DigestMismatch: the consumer never gets an end-of-file from bad bytes.
    """

    def __init__(self, raw: BinaryIO, desc: dict[str, Any], label: str) -> None:
        super().__init__()
        self._raw = raw
        self._desc = desc
        self._label = label
        self._sha = BackgroundHash()
        self.count = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if not n:
            self._check()
            return 0
        self._sha.update(bytes(view[:n]))
        self.count += n
        if self.count > self._desc["size"]:
            self._sha.stop()
            raise DigestMismatch(
                f"{self._label}: layer {self._desc['digest']} is longer than the "
                f"{self._desc['size']} bytes its descriptor gives"
            )
        return int(n)

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self.count != self._desc["size"]:
            self._sha.stop()
            raise DigestMismatch(
                f"{self._label}: layer {self._desc['digest']} ended after {self.count} of "
                f"{self._desc['size']} bytes"
            )
        digest = "sha256:" + self._sha.hexdigest()
        if digest != self._desc["digest"]:
            raise DigestMismatch(
                f"{self._label}: the layer hashes to {digest}, not {self._desc['digest']}",
                hint="the registry or the copy holds damaged bytes; nothing was reported",
            )

    def stop(self) -> None:
        """End the hashing thread, whether or not the stream was read to its end."""
        self._sha.stop()

    def finish(self) -> None:
        """Read what the consumer left and check the whole."""
        scratch = bytearray(1 << 20)
        while self.readinto(scratch):
            pass
