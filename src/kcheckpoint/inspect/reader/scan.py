"""One pass over a checkpoint archive: every header, the small metadata members, nested listings.

The scan never holds a large member in memory. Memory pages and other large members are only
passed to an optional ``on_member`` hook, which reads them in chunks while the walk is on them.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from kcheckpoint.errors import FormatError, InputError, NotACheckpoint
from kcheckpoint.inspect.model import (
    DeletedPath,
    FileEntry,
    InputInfo,
    NestedArchive,
    Problem,
    RootfsDiff,
    Sizes,
)

from .archive import Entry, TarMember, buffer_size_for, walk_input, walk_nested
from .engines import iso_time, load_json
from .members import CORE_RE, PAGES_RE
from .source import ProgressCallback, open_input

#: Metadata members read whole into memory.
METADATA_MEMBERS = frozenset(
    {
        "config.dump",
        "spec.dump",
        "status",
        "status.dump",
        "bind.mounts",
        "network.status",
        "deleted.files",
        "pod.options",
        "stats-dump",
    }
)
#: The largest metadata member or CRIU image read into memory (Podman's config.dump is ~25 KiB).
SMALL_LIMIT = 64 << 20

_TMPFS_RE = re.compile(r"^checkpoint/tmpfs-(?:dev-)?(\d+)\.tar\.gz\.img$")
_IMAGE_RE = re.compile(r"^checkpoint/[^/]+\.img$")
_PAGES_RE = re.compile(r"^checkpoint/(?:amdgpu-)?pages-[^/]*\.img$")

SPARSE_MESSAGE = "a sparse member: checkpoints hold none, and it is not read"

#: Called for members the scan does not keep (pages, logs); may read the entry while called.
MemberHook = Callable[[Entry], None]
#: Called with (member name, bytes) for each CRIU image as it is read (read_images=True).
ImageHook = Callable[[str, bytes], None]
#: Called with (nested tar member name, inner entry) for each file inside rootfs-diff.tar and the
#: tmpfs and /dev/shm tars, while the inner entry can be read.
NestedHook = Callable[[str, Entry], None]


@dataclass
class ArchiveScan:
    """What one pass over an archive found."""

    input: InputInfo
    members: list[TarMember] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    rootfs: RootfsDiff = field(default_factory=lambda: RootfsDiff(compression=None))
    nested: list[NestedArchive] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: SHA-256 of each member but the pages files, when the scan was asked for them.
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {m.name for m in self.members}

    @property
    def dumped(self) -> str | None:
        """When CRIU wrote the images: the tar mtime of checkpoint/inventory.img."""
        for m in self.members:
            if m.name == "checkpoint/inventory.img":
                return iso_time(m.mtime)
        return None


def scan_archive(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
    read_images: bool = False,
    on_member: MemberHook | None = None,
    on_image: ImageHook | None = None,
    on_nested: NestedHook | None = None,
    digest_members: bool = False,
) -> ArchiveScan:
    """Scan an archive in one pass.

    ``hash_input`` None means: hash streamed input (it is read whole anyway) but not a seekable
    file, whose members are read only where needed. ``digest_members`` fills ``digests`` (every
    member but pages files, hashed as it is read, or after the hooks when they read it not).
    """
    want_hash = hash_input is not False
    with open_input(path, stdin=stdin, hash_input=want_hash, progress=progress) as src:
        scan = ArchiveScan(InputInfo(src.path, src.size, src.compression, "", None))
        for entry in walk_input(src, scan.problems):
            hashed: set[int] = set()
            if digest_members:
                entry = _digesting(entry, scan.digests, hashed)
            _visit(scan, entry, read_images, on_member, on_image, on_nested)
            if digest_members and not hashed:
                _digest_rest(entry)
        scan.input = src.info(hash_seekable=bool(hash_input))
    _check_checkpoint(scan)
    return scan


def _digesting(entry: Entry, digests: dict[str, str], hashed: set[int]) -> Entry:
    """The entry, hashing what is read of it; the digest is stored (and ``hashed`` marked) once
    it is read whole. A later member of the same name replaces it, as in an extraction."""
    member = entry.member
    if member.type != "file" or member.unsafe or PAGES_RE.match(member.name):
        hashed.add(1)
        return entry

    def opener() -> BinaryIO:
        raw = _HashingMember(entry.open(), member, digests, hashed)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=buffer_size_for(member.size)))

    return Entry(member, opener, entry.location)


def _digest_rest(entry: Entry) -> None:
    """Read (and so hash) a member the hooks did not read whole."""
    with entry.open() as fh:
        while fh.read(1 << 20):
            pass


class _HashingMember(io.RawIOBase):
    """Hashes a member as it is read; at its end, records the digest under its name."""

    def __init__(
        self, raw: BinaryIO, member: TarMember, digests: dict[str, str], hashed: set[int]
    ) -> None:
        super().__init__()
        self._raw = raw
        self._member = member
        self._digests = digests
        self._hashed = hashed
        self._sha = hashlib.sha256()
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if n:
            self._sha.update(view[:n])
            self._count += n
        if self._count == self._member.size and not self._hashed:
            self._hashed.add(1)
            self._digests[self._member.name] = self._sha.hexdigest()
        return int(n or 0)

    def close(self) -> None:
        if self._count < self._member.size and not self.closed:
            # read in part (a nested tar stops at its end marker): hash the rest
            scratch = bytearray(buffer_size_for(self._member.size - self._count))
            while self.readinto(scratch):
                pass
        super().close()


def _visit(
    scan: ArchiveScan,
    entry: Entry,
    read_images: bool,
    on_member: MemberHook | None,
    on_image: ImageHook | None = None,
    on_nested: NestedHook | None = None,
) -> None:
    member = entry.member
    scan.members.append(member)
    name = member.name
    if member.unsafe:
        scan.problems.append(Problem(member.raw_name, "unsafe-name", member.unsafe))
        return
    if member.sparse:
        scan.problems.append(Problem(member.name, "sparse-member", SPARSE_MESSAGE))
    if member.type != "file":
        return
    if name in METADATA_MEMBERS:
        scan.blobs[name] = entry.read_all(SMALL_LIMIT)
    elif name == "rootfs-diff.tar":
        scan.rootfs = _read_rootfs(entry, scan.problems, on_nested)
    elif name == "devshm-checkpoint.tar":
        scan.nested.append(_read_nested(entry, "devshm", None, scan.problems, on_nested))
    elif match := _TMPFS_RE.match(name):
        scan.nested.append(
            _read_nested(entry, "tmpfs", int(match.group(1)), scan.problems, on_nested)
        )
    elif read_images and _IMAGE_RE.match(name) and not _PAGES_RE.match(name):
        scan.images[name] = entry.read_all(SMALL_LIMIT)
        if on_image is not None:
            on_image(name, scan.images[name])
    elif on_member is not None:
        on_member(entry)


def _entries_of(
    entry: Entry, problems: list[Problem], on_nested: NestedHook | None = None
) -> tuple[str | None, list[FileEntry]]:
    """List a nested tar. A damaged one becomes a Problem and a partial list."""
    files: list[FileEntry] = []
    compression: str | None = None
    if entry.member.size == 0:
        return compression, files
    try:
        with entry.open() as fh:
            compression = "gzip" if fh.peek(2)[:2] == b"\x1f\x8b" else "none"  # type: ignore[attr-defined]
            for inner in walk_nested(fh, entry.member.name):
                m = inner.member
                if m.name == ".":
                    continue
                if on_nested is not None and m.type == "file":
                    on_nested(entry.member.name, inner)
                files.append(
                    FileEntry(
                        path=m.name,
                        type=m.type,
                        size=m.size,
                        mode=f"{m.mode & 0o7777:04o}",
                        mtime=iso_time(m.mtime),
                        linkname=m.linkname or None,
                    )
                )
    except (FormatError, InputError) as exc:  # a damaged nested tar: the rest still reads
        problems.append(Problem(entry.member.name, "bad-nested-tar", str(exc)))
    return compression, files


def _read_rootfs(
    entry: Entry, problems: list[Problem], on_nested: NestedHook | None = None
) -> RootfsDiff:
    compression, files = _entries_of(entry, problems, on_nested)
    changed: list[FileEntry] = []
    whiteouts: list[DeletedPath] = []
    for f in files:
        directory, _, base = f.path.rpartition("/")
        if base.startswith(".wh."):
            if base == ".wh..wh..opq":
                whiteouts.append(DeletedPath("/" + directory + "/*", "opaque-whiteout"))
            else:
                target = (directory + "/" if directory else "") + base[4:]
                whiteouts.append(DeletedPath("/" + target, "whiteout"))
        else:
            changed.append(f)
    return RootfsDiff(compression=compression, changed=changed, deleted=whiteouts)


def _read_nested(
    entry: Entry,
    kind: str,
    mount_id: int | None,
    problems: list[Problem],
    on_nested: NestedHook | None = None,
) -> NestedArchive:
    _, files = _entries_of(entry, problems, on_nested)
    return NestedArchive(member=entry.member.name, kind=kind, mount_id=mount_id, entries=files)


def _check_checkpoint(scan: ArchiveScan) -> None:
    names = scan.names
    has_images = any(n.startswith("checkpoint/") for n in names)
    if "config.dump" not in names and "spec.dump" not in names and not has_images:
        raise NotACheckpoint(f"{scan.input.path}: not a container checkpoint")
    for required in ("config.dump", "spec.dump"):
        if required not in names:
            scan.problems.append(Problem(required, "missing", f"the archive has no {required}"))
    if not has_images:
        scan.problems.append(
            Problem(
                "checkpoint/", "missing", "the archive has no CRIU images (checkpoint/ is absent)"
            )
        )
    elif not any(n.startswith("checkpoint/") and n.endswith(".img") for n in names):
        scan.problems.append(Problem("checkpoint/", "empty", "checkpoint/ holds no CRIU images"))
    deleted = _deleted_files(scan)
    if deleted:
        scan.rootfs = RootfsDiff(
            compression=scan.rootfs.compression,
            changed=scan.rootfs.changed,
            deleted=deleted + scan.rootfs.deleted,
        )


def _deleted_files(scan: ArchiveScan) -> list[DeletedPath]:
    data = scan.blobs.get("deleted.files")
    if data is None:
        return []
    try:
        value = load_json(data) if data.strip() else []
    except ValueError as exc:
        scan.problems.append(Problem("deleted.files", "bad-metadata", f"not valid JSON ({exc})"))
        return []
    if not isinstance(value, list):
        scan.problems.append(Problem("deleted.files", "bad-metadata", "not a JSON list"))
        return []
    return [DeletedPath(p, "deleted.files") for p in value if isinstance(p, str)]


def sizes_of(scan: ArchiveScan) -> Sizes:
    """Sizes summed from the tar headers."""
    files = [m for m in scan.members if m.type == "file"]
    return Sizes(
        total=sum(m.size for m in files),
        checkpoint=sum(m.size for m in files if m.name.startswith("checkpoint/")),
        memory_pages=sum(m.size for m in files if PAGES_RE.match(m.name)),
        rootfs_diff=sum(m.size for m in files if m.name == "rootfs-diff.tar"),
    )


def process_count(scan: ArchiveScan) -> int:
    """The number of ``core-*.img`` images: processes and their threads."""
    return sum(1 for m in scan.members if CORE_RE.match(m.name))
