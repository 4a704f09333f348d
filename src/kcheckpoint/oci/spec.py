"""What a checkpoint image is made of: media types, annotation keys, canonical JSON, references.

References:
    OCI image-spec v1.1 (image layout, index, manifest, config, descriptors);
    OCI distribution-spec v1.1 (reference grammar);
    checkpointctl ``lib/metadata`` (``org.criu.checkpoint.*``: what containerd 2.x reads),
    CRI-O ``pkg/annotations`` (``io.kubernetes.cri-o.annotations.checkpoint.*``),
    Podman ``libpod/define`` (``io.podman.annotations.checkpoint.*``),
    containerd ``pkg/cri/annotations`` (``io.kubernetes.containerd.annotations.checkpoint.*``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
#: Layer media types a reader accepts (compression is detected from the bytes anyway).
READABLE_LAYERS = {
    *LAYER_TYPES.values(),
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "org.opencontainers.image.created"

#: containerd 2.x (and checkpointctl) restore when this key is on what the image record points at.
CRIU_NAME = "org.criu.checkpoint.container.name"
#: Keys that mark a checkpoint image, one per engine family that reads them.
MARKERS = (
    CRIU_NAME,
    "io.kubernetes.cri-o.annotations.checkpoint.name",
    "io.podman.annotations.checkpoint.name",
    "io.kubernetes.containerd.annotations.checkpoint.name",
)

_CRIU = "org.criu.checkpoint."
_ENGINE_PREFIXES = (
    "io.kubernetes.cri-o.annotations.checkpoint.",
    "io.podman.annotations.checkpoint.",
    "io.kubernetes.containerd.annotations.checkpoint.",
)


@dataclass(frozen=True)
class Identity:
    """Who was checkpointed, as the archive's metadata says."""

    name: str
    pod: str | None
    namespace: str | None
    engine: str
    runtime: str | None
    #: The image the user asked for, the resolved name, and its ID (``rootfsImageRef``).
    image_requested: str | None
    image_name: str | None
    image_id: str | None


def annotations_for(who: Identity) -> dict[str, str]:
    """Every checkpoint annotation the engines read, with the values the archive gives."""
    values: dict[str, str | None] = {
        _CRIU + "container.name": who.name,
        _CRIU + "pod.name": who.pod,
        _CRIU + "pod.namespace": who.namespace,
        _CRIU + "engine.name": who.engine,
        _CRIU + "runtime.name": who.runtime,
        _CRIU + "rootfsImageUserRequested": who.image_requested,
        _CRIU + "rootfsImageName": who.image_name,
        _CRIU + "rootfsImageID": who.image_id,
    }
    for prefix in _ENGINE_PREFIXES:
        values[prefix + "name"] = who.name
        values[prefix + "rawImageName"] = who.image_requested
        values[prefix + "rootfsImageName"] = who.image_name
        values[prefix + "rootfsImageID"] = who.image_id
    values["io.podman.annotations.checkpoint.runtime.name"] = who.runtime
    return {k: v for k, v in sorted(values.items()) if v}


def is_checkpoint(annotations: Mapping[str, Any] | None) -> bool:
    """True when any engine would take these annotations for a checkpoint image's."""
    return bool(annotations) and any(annotations.get(k) for k in MARKERS)  # type: ignore[union-attr]


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a document is stored as: sorted keys, no spaces, so digests are reproducible."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def descriptor(media_type: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    """An OCI content descriptor."""
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


def valid_digest(digest: str) -> bool:
    """A sha256 digest as descriptors carry it (the only algorithm written or read here)."""
    return bool(_DIGEST_RE.match(digest))


@dataclass(frozen=True)
class Reference:
    """A registry reference: ``HOST[:PORT]/REPO`` with a tag or a digest."""

    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def target(self) -> str:
        """What ``/v2/REPO/manifests/`` is asked for: the digest when there is one."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        at = f"@{self.digest}" if self.digest else ""
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.host}/{self.repository}{tag}{at}"

    @property
    def loopback(self) -> bool:
        if self.host.startswith("["):
            hostname = self.host[: self.host.find("]") + 1]
        else:
            hostname = self.host.rsplit(":", 1)[0]
        return hostname in ("127.0.0.1", "localhost", "[::1]") or hostname.startswith("127.")

    @classmethod
    def parse(cls, text: str) -> Reference:
        """``[docker://]HOST[:PORT]/REPO[:TAG][@sha256:HEX]``; the host must be named."""
        raw = text.removeprefix("docker://")
        digest = None
        if "@" in raw:
            raw, _, digest = raw.partition("@")
            if not valid_digest(digest):
                raise ValueError(f"{text}: not a sha256 digest ({digest})")
        host, slash, rest = raw.partition("/")
        if not slash or not rest or not ("." in host or ":" in host or host == "localhost"):
            raise ValueError(f"{text}: name the registry host (HOST[:PORT]/REPO[:TAG])")
        tag = None
        if ":" in rest.rsplit("/", 1)[-1]:
            rest, _, tag = rest.rpartition(":")
            if not _TAG_RE.match(tag):
                raise ValueError(f"{text}: not a valid tag ({tag})")
        if not _REPO_RE.match(rest):
            raise ValueError(f"{text}: not a valid repository name ({rest})")
        if tag is None and digest is None:
            tag = "latest"
        return cls(host, rest, tag, digest)
