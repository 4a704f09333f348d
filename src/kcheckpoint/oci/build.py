"""Build a checkpoint image from an archive: one layer holding the archive's members at the top
level, an image config, a manifest and an index, both annotated for every engine.

The layer is written in one forward pass over the input (any compression, or stdin) to a staging
directory, and hashed twice on the way (the tar for the config's ``diff_ids``, the compressed
blob for its digest). Nothing depends on the clock: headers keep the archive's own times, and
the image's creation time is the checkpoint's.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from kcheckpoint.errors import FormatError, NotACheckpoint
from kcheckpoint.inspect.model import InputInfo
from kcheckpoint.inspect.reader.archive import TarMember, walk_input
from kcheckpoint.inspect.reader.digest import BackgroundHash
from kcheckpoint.inspect.reader.engines import container_of, iso_time, parse_metadata
from kcheckpoint.inspect.reader.source import ProgressCallback, open_input

from .spec import (
    LAYER_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Identity,
    annotations_for,
    canonical,
    descriptor,
)

_METADATA = ("config.dump", "spec.dump", "status", "status.dump")
_SMALL = 64 << 20
_CHUNK = 1 << 20
_TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}
#: gzip level 6 is what gzip(1) and the engines' own image builders use.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
ZSTD_THREADS = 2


def host_arch() -> str:
    """The host's architecture in OCI terms."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


@dataclass
class Blob:
    """A blob ready to be written or pushed: its bytes, or the staged file that holds them."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data or b"")

    @property
    def descriptor(self) -> dict[str, Any]:
        return descriptor(self.media_type, self.digest, self.size)


def blob_of(media_type: str, data: bytes) -> Blob:
    return Blob(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data), data=data)


@dataclass
class CheckpointImage:
    """A built checkpoint image: its four blobs and what went into them."""

    layer: Blob
    config: Blob
    manifest: Blob
    index: Blob
    diff_id: str
    annotations: dict[str, str]
    identity: Identity
    created: str
    #: The input archive as read (its SHA-256 included).
    input: InputInfo
    compression: str
    arch: str
    members: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def blobs(self) -> list[Blob]:
        """In the order a registry needs them: what a document points at goes first."""
        return [self.layer, self.config, self.manifest, self.index]


class _LayerSink:
    """What ``tarfile`` writes into: hash the tar, compress it, hash and store the blob."""

    def __init__(self, out: BinaryIO, compression: str) -> None:
        self._out = out
        self.diff = BackgroundHash()
        self.blob = BackgroundHash()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._compress: Callable[[bytes], bytes]
        self._flush: Callable[[], bytes]
        if compression == "gzip":
            # wbits 31: a gzip member with mtime 0 and no file name, so the bytes are reproducible
            gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            self._compress = gz.compress
            self._flush = gz.flush
        elif compression == "zstd":
            import zstandard

            # two worker threads, a fixed count: the output must not depend on the machine
            zc = zstandard.ZstdCompressor(
                level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True
            ).compressobj()
            self._compress = zc.compress
            self._flush = zc.flush
        else:
            raise ValueError(compression)

    def tell(self) -> int:
        """Bytes of tar written so far (``tarfile`` asks, to pad members)."""
        return self.diff.size + self._buffered

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        if len(chunk) >= _CHUNK and not self._buffer:
            self._take(chunk)
            return len(chunk)
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= _CHUNK:
            self._drain()
        return len(chunk)

    def _drain(self) -> None:
        if not self._buffer:
            return
        joined = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        self._take(joined)

    def _take(self, data: bytes) -> None:
        self.diff.update(data)
        self._emit(self._compress(data))

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self._out.write(data)

    def close(self) -> None:
        self._drain()
        self._emit(self._flush())


def _background_digest(path: str) -> Callable[[], str]:
    """SHA-256 of a file on disk, read in a thread beside the build; call the result to wait."""
    result: list[str] = []

    def run() -> None:
        with open(path, "rb") as fh:
            result.append(hashlib.file_digest(fh, "sha256").hexdigest())

    thread = threading.Thread(target=run, name="kcheckpoint-input-sha", daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        if not result:
            raise FormatError(f"{path}: the input could not be read again to hash it")
        return result[0]

    return wait


def _tarinfo(member: TarMember) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.name)
    info.type = _TAR_TYPES[member.type]
    info.mode = member.mode & 0o7777
    info.mtime = member.mtime
    info.uid, info.gid = member.uid, member.gid
    info.uname = info.gname = ""
    info.size = member.size if member.type == "file" else 0
    if member.type in ("symlink", "hardlink"):
        info.linkname = member.linkname
    return info


def build(
    path: str | os.PathLike[str],
    staging: Path,
    *,
    stdin: BinaryIO | None = None,
    compression: str = "gzip",
    arch: str | None = None,
    progress: ProgressCallback | None = None,
    hash_seekable: bool = True,
) -> CheckpointImage:
    """Build the checkpoint image of one archive; the layer is staged in ``staging``.

    A streamed input is always hashed as it goes by; a plain tar on disk only with
    ``hash_seekable`` (in a thread beside the build: it means reading the file once more).
    """
    if compression not in LAYER_TYPES:
        raise ValueError(compression)
    blobs: dict[str, bytes] = {}
    names: list[str] = []
    dumped: int | None = None
    fd, layer_name = tempfile.mkstemp(prefix=".layer-", dir=staging)
    layer_path = Path(layer_name)
    sink: _LayerSink | None = None
    try:
        with os.fdopen(fd, "wb") as layer_file:
            sink = _LayerSink(layer_file, compression)
            with open_input(path, stdin=stdin, hash_input=True, progress=progress) as src:
                label = src.path
                digest = _background_digest(src.path) if src.seekable and hash_seekable else None
                tar = tarfile.TarFile(
                    fileobj=sink,  # type: ignore[arg-type]
                    mode="w",
                    format=tarfile.PAX_FORMAT,
                    copybufsize=_CHUNK,
                )
                for entry in walk_input(src):
                    member = entry.member
                    if member.name == ".":
                        continue
                    if member.unsafe:
                        raise FormatError(
                            f"{label}: {member.raw_name}: {member.unsafe}; "
                            "no image is built from an archive with unsafe names"
                        )
                    if member.type not in _TAR_TYPES:
                        raise FormatError(
                            f"{label}: {member.name}: a {member.type} member has no place in a "
                            "checkpoint image"
                        )
                    names.append(member.name)
                    if member.name == "checkpoint/inventory.img":
                        dumped = member.mtime
                    info = _tarinfo(member)
                    if member.type != "file":
                        tar.addfile(info)
                    elif member.name in _METADATA:
                        data = entry.read_all(_SMALL)
                        blobs[member.name] = data
                        tar.addfile(info, io.BytesIO(data))
                    else:
                        with entry.open() as fh:
                            tar.addfile(info, fh)
                tar.close()
                input_info = src.info(hash_seekable=False)
                if digest is not None:
                    input_info = replace(input_info, sha256=digest())
            sink.close()
            diff_id = "sha256:" + sink.diff.hexdigest()
            layer_digest = "sha256:" + sink.blob.hexdigest()
            layer_size = sink.blob.size
    except BaseException:
        if sink is not None:
            sink.diff.stop()
            sink.blob.stop()
        layer_path.unlink(missing_ok=True)
        raise
    try:
        _check_checkpoint(label, names)
        meta = parse_metadata(blobs)
        container = container_of(meta, names, dumped=None if dumped is None else iso_time(dumped))
        if not container.name:
            raise NotACheckpoint(f"{label}: the archive does not name its container")
        config = meta.config
        identity = Identity(
            name=container.name,
            pod=container.pod,
            namespace=container.namespace,
            engine=container.engine,
            runtime=container.runtime,
            image_requested=_text(config.get("rootfsImage")) or container.image,
            image_name=_text(config.get("rootfsImageName")) or container.image,
            image_id=_text(config.get("rootfsImageRef")),
        )
        created = container.checkpointed or container.dumped or container.created or iso_time(0)
        return _assemble(
            Blob(LAYER_TYPES[compression], layer_digest, layer_size, path=layer_path),
            diff_id,
            identity,
            created,
            arch or host_arch(),
            compression,
            input_info,
            len(names),
        )
    except BaseException:
        layer_path.unlink(missing_ok=True)
        raise


def _assemble(
    layer: Blob,
    diff_id: str,
    identity: Identity,
    created: str,
    arch: str,
    compression: str,
    input_info: InputInfo,
    members: int,
) -> CheckpointImage:
    annotations = annotations_for(identity)
    config = blob_of(
        OCI_CONFIG,
        canonical(
            {
                "architecture": arch,
                "os": "linux",
                "created": created,
                "config": {"Labels": annotations},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created, "created_by": "kcheckpoint image"}],
            }
        ),
    )
    manifest = blob_of(
        OCI_MANIFEST,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor,
                "layers": [layer.descriptor],
                "annotations": annotations,
            }
        ),
    )
    platform_ = {"architecture": arch, "os": "linux"}
    index = blob_of(
        OCI_INDEX,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{**manifest.descriptor, "platform": platform_}],
                "annotations": annotations,
            }
        ),
    )
    return CheckpointImage(
        layer=layer,
        config=config,
        manifest=manifest,
        index=index,
        diff_id=diff_id,
        annotations=annotations,
        identity=identity,
        created=created,
        input=input_info,
        compression=compression,
        arch=arch,
        members=members,
    )


def _check_checkpoint(label: str, names: list[str]) -> None:
    """A runtime restores only what has its metadata and CRIU images: refuse anything less."""
    present = set(names)
    images = any(n.startswith("checkpoint/") and n.endswith(".img") for n in names)
    missing = [n for n in ("config.dump", "spec.dump") if n not in present]
    if not images:
        missing.append("checkpoint/*.img")
    if missing:
        raise NotACheckpoint(
            f"{label}: not a container checkpoint (no {', '.join(missing)}); no image was built"
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
