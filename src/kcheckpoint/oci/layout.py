"""OCI image layouts: write a checkpoint image into a layout directory or an oci-archive (a tar
of one), and open the layer of an image held in either.

References: OCI image-spec v1.1 ``image-layout.md`` (``oci-layout``, ``index.json``,
``blobs/sha256/``, ``org.opencontainers.image.ref.name``); skopeo's ``oci-archive:`` transport
(a tar of a layout).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kcheckpoint.errors import ArchiveNotFound, FormatError, InputError, UnsafeOutput

from .build import Blob, CheckpointImage
from .content import find_layer, load_document, select_tag
from .spec import OCI_INDEX, REF_NAME, canonical

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


#: The full name ``ctr images import`` gives an image (containerd's own exports carry it too).
CONTAINERD_NAME = "io.containerd.image.name"


def _index_entry(image: CheckpointImage, tag: str, name: str | None) -> dict[str, Any]:
    annotations = {REF_NAME: tag}
    if name:
        annotations[CONTAINERD_NAME] = name
    return {**image.index.descriptor, "annotations": annotations}


def _copy_blob(blob: Blob, target: Path) -> None:
    """Move a staged blob into place, or write it; a blob already there is kept."""
    if target.exists() and target.stat().st_size == blob.size:
        return
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    if blob.path is not None:
        try:
            os.link(blob.path, tmp)  # the staged layer is on the same file system: no copy
        except OSError:
            shutil.copyfile(blob.path, tmp)
    else:
        tmp.write_bytes(blob.data or b"")
    os.replace(tmp, target)


def prepare_layout(directory: Path) -> None:
    """Create a layout directory, or check that an existing one is a layout (or empty)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if any(directory.iterdir()) and not (directory / "oci-layout").is_file():
            raise UnsafeOutput(f"{directory}: not empty and not an OCI layout")
    except OSError as exc:
        raise InputError(f"{directory}: cannot create ({exc.strerror or exc})") from exc


def write_layout(
    image: CheckpointImage, directory: Path, tag: str, name: str | None = None
) -> None:
    """Add the image to a layout directory (created if absent), tagged ``tag``.

    ``name``, a full reference, is recorded for ``ctr images import``. Blobs go in first;
    ``index.json`` is replaced last, atomically, so a reader sees the old
    layout or the new one, never half of it. Another image with the same tag loses the tag.
    """
    blobs = directory / "blobs" / "sha256"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        index_path = directory / "index.json"
        entries: list[Any] = []
        if index_path.exists():
            current = load_document(index_path.read_bytes(), str(index_path))
            entries = [
                e
                for e in current.get("manifests") or []
                if not (isinstance(e, dict) and (e.get("annotations") or {}).get(REF_NAME) == tag)
            ]
        for blob in image.blobs:
            _copy_blob(blob, blobs / blob.digest.removeprefix("sha256:"))
        (directory / "oci-layout").write_bytes(LAYOUT_FILE)
        entries.append(_index_entry(image, tag, name))
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        tmp = directory / ".index.json.tmp"
        tmp.write_bytes(canonical(document))
        os.replace(tmp, index_path)
    except OSError as exc:
        raise InputError(f"{directory}: cannot write the layout ({exc.strerror or exc})") from exc


def _add(tar: tarfile.TarFile, name: str, mtime: int, data: BinaryIO | None, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uname = info.gname = ""
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.mode, info.size = 0o644, size
        tar.addfile(info, data)


def write_archive(
    image: CheckpointImage, path: Path, tag: str, mtime: int, name: str | None = None
) -> None:
    """Write the image as an oci-archive: a tar of a one-image layout, reproducible byte for
    byte. The documents come first, so that a reader of a stream meets them before the layer.
    Written to a temporary name and renamed: there is never half an archive at ``path``."""
    if path.exists() and not path.is_file():
        raise UnsafeOutput(f"{path}: exists and is not a file")
    index = canonical(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [_index_entry(image, tag, name)]}
    )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, "oci-layout", mtime, io.BytesIO(LAYOUT_FILE), len(LAYOUT_FILE))
                _add(tar, "index.json", mtime, io.BytesIO(index), len(index))
                _add(tar, "blobs", mtime, None, 0)
                _add(tar, "blobs/sha256", mtime, None, 0)
                for blob in reversed(image.blobs):
                    with blob.open() as fh:
                        name = "blobs/sha256/" + blob.digest.removeprefix("sha256:")
                        _add(tar, name, mtime, fh, blob.size)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the archive ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- reading --------------------------------------------------------------------------------------
def split_tag(spec: str) -> tuple[str, str | None]:
    """``PATH[:TAG]`` as skopeo writes it; a path that exists whole keeps its colons."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, _, tag = spec.rpartition(":")
    return path, tag or None


@contextlib.contextmanager
def open_layout_layer(
    directory: Path, tag: str | None, label: str, arch: str
) -> Iterator[tuple[dict[str, Any], BinaryIO]]:
    """The layer descriptor and blob file of the image ``tag`` in a layout directory."""
    index_path = directory / "index.json"
    if not directory.is_dir():
        raise ArchiveNotFound(f"{label}: no such layout directory")
    try:
        index = index_path.read_bytes()
    except OSError as exc:
        raise InputError(f"{label}: not an OCI layout (no index.json)") from exc
    top = select_tag(load_document(index, label), tag, label)

    def fetch(desc: dict[str, Any]) -> bytes:
        return _read_blob(directory / "blobs", desc, label)

    layer, _ = find_layer(top, fetch, label, arch)
    blob = _blob_path(directory / "blobs", layer, label)
    with open(blob, "rb") as fh:
        yield layer, fh


def _blob_path(blobs: Path, desc: dict[str, Any], label: str) -> Path:
    algorithm, _, hexdigest = str(desc["digest"]).partition(":")
    path = blobs / algorithm / hexdigest
    if not path.is_file():
        raise FormatError(f"{label}: the layout has no blob {desc['digest']}")
    return path


def _read_blob(blobs: Path, desc: dict[str, Any], label: str) -> bytes:
    if desc["size"] > 4 << 20:
        raise FormatError(f"{label}: an image document of {desc['size']} bytes")
    return _blob_path(blobs, desc, label).read_bytes()


def looks_like_oci_archive(path: str) -> bool:
    """A plain tar on disk whose first member belongs to an OCI layout."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    if len(head) < 512 or head[257:262] != b"ustar":
        return False
    name = head[:100].split(b"\0", 1)[0].decode(errors="replace").removeprefix("./")
    return name in ("oci-layout", "index.json") or name == "blobs" or name.startswith("blobs/")


@contextlib.contextmanager
def open_archive_layer(
    path: Path, tag: str | None, label: str, arch: str
) -> Iterator[tuple[dict[str, Any], BinaryIO]]:
    """The layer descriptor and bytes of an image in an oci-archive on disk (read in place)."""
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115
    except FileNotFoundError as exc:
        raise ArchiveNotFound(f"{label}: no such file") from exc
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{label}: not an oci-archive ({exc})") from exc
    with tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

        def member(name: str) -> BinaryIO:
            info = members.get(name)
            fh = tar.extractfile(info) if info is not None else None
            if fh is None:
                raise FormatError(f"{label}: the archive has no {name}")
            return fh  # type: ignore[return-value]

        if "index.json" not in members:
            raise InputError(f"{label}: not an oci-archive (no index.json)")
        index = load_document(member("index.json").read(4 << 20), label)
        top = select_tag(index, tag, label)

        def fetch(desc: dict[str, Any]) -> bytes:
            if desc["size"] > 4 << 20:
                raise FormatError(f"{label}: an image document of {desc['size']} bytes")
            return member("blobs/" + desc["digest"].replace(":", "/", 1)).read()

        layer, _ = find_layer(top, fetch, label, arch)
        yield layer, member("blobs/" + layer["digest"].replace(":", "/", 1))


def describe(image: CheckpointImage) -> dict[str, Any]:
    """The image's digests and annotations, for a report."""
    return {
        "index": image.index.digest,
        "manifest": image.manifest.digest,
        "config": image.config.digest,
        "layer": {
            "digest": image.layer.digest,
            "size": image.layer.size,
            "media_type": image.layer.media_type,
            "diff_id": image.diff_id,
        },
        "annotations": dict(sorted(image.annotations.items())),
        "created": image.created,
        "platform": f"linux/{image.arch}",
    }
