"""Read one side of a diff in one pass: the decoded checkpoint, the rootfs diff with a SHA-256
per file, and (through a pages hook) the process memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import BinaryIO

from kcheckpoint.inspect.criu.checkpoint import inspect_scan
from kcheckpoint.inspect.criu.decode import ReadMemory
from kcheckpoint.inspect.criu.memory import PAGES_RE, MemoryModel
from kcheckpoint.inspect.criu.model import Inspection
from kcheckpoint.inspect.criu.sinks import ArgsReader
from kcheckpoint.inspect.criu.walk import PagesHook, memory_of, scan_with
from kcheckpoint.inspect.model import RootfsDiff
from kcheckpoint.inspect.reader.archive import Entry
from kcheckpoint.inspect.reader.engines import parse_metadata
from kcheckpoint.inspect.reader.scan import ArchiveScan
from kcheckpoint.inspect.reader.source import CHUNK, ProgressCallback

from .model import FsState

ROOTFS_MEMBER = "rootfs-diff.tar"
#: Files up to this size are kept for --content (a unified diff of changed text files)...
CONTENT_LIMIT = 256 << 10
#: ... up to this much in all, per archive: memory stays bounded whatever the rootfs diff holds.
CONTENT_TOTAL = 32 << 20


@dataclass
class RootfsFiles:
    """``on_nested`` hook: the size and SHA-256 of every file in rootfs-diff.tar, and (for
    --content) the bytes of the small ones."""

    keep_content: bool = False
    digests: dict[str, tuple[int, str]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    kept_bytes: int = 0

    def __call__(self, outer: str, inner: Entry) -> None:
        if outer != ROOTFS_MEMBER:
            return
        m = inner.member
        if m.unsafe or m.name.rsplit("/", 1)[-1].startswith(".wh."):
            return
        sha = hashlib.sha256()
        keep = (
            self.keep_content
            and m.size <= CONTENT_LIMIT
            and self.kept_bytes + m.size <= CONTENT_TOTAL
        )
        kept = bytearray()
        size = 0
        with inner.open() as fh:
            while chunk := fh.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
                if keep:
                    kept += chunk
        path = "/" + m.name
        self.digests[path] = (size, sha.hexdigest())
        if keep:
            self.contents[path] = bytes(kept)
            self.kept_bytes += len(kept)


def fs_states(rootfs: RootfsDiff, digests: dict[str, tuple[int, str]]) -> dict[str, FsState]:
    """Every path the rootfs diff mentions, by absolute path (deletions win over entries)."""
    out: dict[str, FsState] = {}
    for f in rootfs.changed:
        path = "/" + f.path
        size, sha = digests.get(path, (f.size, None)) if f.type == "file" else (None, None)
        out[path] = FsState(f.type, size, sha, f.mode, f.linkname, None)
    for d in rootfs.deleted:
        out[d.path] = FsState("deleted", None, None, None, None, d.source)
    return out


@dataclass
class Side:
    """One archive, read and decoded."""

    label: str
    scan: ArchiveScan
    inspection: Inspection
    #: ``NAME=VALUE`` of spec.dump (stays inside the diff; only names and redacted values leave).
    env: list[str]
    fs: dict[str, FsState]
    contents: dict[str, bytes]
    memory: MemoryModel


def read_side(
    label: str,
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
    keep_content: bool = False,
    pages: PagesHook | None = None,
) -> Side:
    """Scan ``path`` once and decode it. ``pages`` reads memory (default: argv and env only)."""
    hook: PagesHook = pages if pages is not None else ArgsReader()
    rootfs = RootfsFiles(keep_content)
    scan = scan_with(
        hook,
        path,
        stdin=stdin,
        hash_input=hash_input,
        progress=progress,
        on_nested=rootfs,
        digest_members=True,
    )
    finish = getattr(hook, "finish", None)
    memory = finish() if finish is not None else memory_of(scan)
    read: ReadMemory = hook.read
    # values are decoded so that changes can be told; only the diff model decides what to show
    inspection = inspect_scan(scan, read, show_secrets=True, extra_problems=hook.problems)
    meta = parse_metadata(scan.blobs)
    return Side(
        label=label,
        scan=scan,
        inspection=inspection,
        env=meta.env,
        fs=fs_states(scan.rootfs, rootfs.digests),
        contents=rootfs.contents,
        memory=memory,
    )


def pages_offsets(scan: ArchiveScan) -> dict[str, int]:
    """Where each pages member's data starts in a seekable archive."""
    return {m.name: m.offset_data for m in scan.members if PAGES_RE.match(m.name)}
