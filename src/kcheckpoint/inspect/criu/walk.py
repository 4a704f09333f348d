"""One pass over an archive that streams process memory, in segments, to a sink: the one reader
of process memory during a scan.

Every command that reads memory in its pass goes through ``MemoryWalk``: ``search`` and
``secrets`` (every segment), ``memory`` (one range), and ``summary``, ``inspect`` and ``diff``,
whose decoder reads each process's argv and env. The sinks that keep bytes for later (a range,
argv and env) are in ``criu.sinks``.

During the one pass of ``scan_archive``, ``MemoryWalk`` streams each pages member in chunks to a
``SegmentSink``, one VA-contiguous segment at a time (so a match can cross pagemap entries where
memory really is contiguous, and never crosses a hole). Attribution uses the pagemaps only:
``pagemap-<pid>.img`` -> ``pages_id``, confirmed against ``pstree.img`` at the end. A pages
member that arrives before its pagemap (or its owner's mm image, which holds the page size and
the argv/env ranges) is spooled to a private 0600 temporary file and read after the pass. Page
data is never held whole.

A sink may narrow each segment it wants to the bytes it needs (``clip``): the argv and env of a
process are a few KiB of a stack segment, read at their offset in a seekable archive.

References:
    reference/criu-images.md §3.2 (entry -> offset in pages-N.img), §4.1 (argv and envp), §6.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, Protocol

from kcheckpoint.inspect.model import Problem
from kcheckpoint.inspect.reader.archive import Entry
from kcheckpoint.inspect.reader.engines import parse_metadata
from kcheckpoint.inspect.reader.scan import ArchiveScan, scan_archive
from kcheckpoint.inspect.reader.source import CHUNK, ProgressCallback

from .memory import (
    PAGEMAP_RE,
    PAGES_RE,
    MemoryModel,
    ProcessMemory,
    build_model,
    decode_image,
    page_size_of,
    runs_of,
)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """Where the bytes given to a sink come from."""

    member: str
    #: The process whose pagemap describes this pages file, or None for a stale file.
    pid: int | None
    #: Virtual address of the first byte (None when the file is not attributed).
    vaddr: int | None
    #: Offset of the first byte in the member.
    offset: int
    length: int
    #: For a file inside a nested tar (rootfs-diff.tar...) or spec.dump, its path there.
    path: str | None = None

    @property
    def in_memory(self) -> bool:
        """Bytes of process memory (a pages file), not of another file (``--everywhere``)."""
        return self.path is None and self.member.startswith("checkpoint/pages-")

    @property
    def base(self) -> int:
        """Where the first byte is: its virtual address, or its offset in the file."""
        return self.vaddr if self.vaddr is not None else self.offset


class SegmentSink(Protocol):
    """Receives memory in segments and, with ``--everywhere``, other files."""

    def segment(self, info: SegmentInfo, chunks: Iterator[bytes]) -> None: ...


def read_chunks(fh: IO[bytes], length: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """``length`` bytes of ``fh`` in chunks.

    The chunks share one buffer: each is valid only until the next one is asked for, so a
    consumer copies what it keeps. This saves an allocation (and its page faults) per chunk.
    """
    buf = bytearray(min(chunk, max(length, 1)))
    view = memoryview(buf)
    left = length
    while left > 0:
        want = min(len(buf), left)
        got = fh.readinto(view[:want])  # type: ignore[attr-defined]
        if not got:
            return
        left -= got
        yield buf if got == len(buf) else bytes(view[:got])  # type: ignore[misc]


class MemoryWalk:
    """``on_image``/``on_member`` hooks for ``scan_archive`` that stream pages to a sink.

    ``wanted`` limits the walk to some pids (None: all). ``other`` receives the entries that are
    not pages files (logs...), for ``--everywhere``.
    """

    def __init__(
        self,
        sink: SegmentSink,
        *,
        wanted: set[int] | None = None,
        other: Callable[[Entry], None] | None = None,
    ) -> None:
        self.sink = sink
        self.wanted = wanted
        self.other = other
        self.images: dict[str, bytes] = {}
        self.pages_sizes: dict[str, int] = {}
        #: pages_id -> the pids whose pagemap names that pages file, as pagemaps arrive.
        self.pagemaps: dict[int, list[int]] = {}
        self._deferred: list[tuple[str, Callable[[], IO[bytes]], int]] = []
        self._spools: list[IO[bytes]] = []
        self.problems: list[Problem] = []
        see_images = getattr(sink, "see_images", None)
        if see_images is not None:  # a sink that names processes before the pass ends
            see_images(self.images)

    def on_image(self, name: str, data: bytes) -> None:
        self.images[name] = data
        if m := PAGEMAP_RE.match(name):
            image = decode_image(name, data, [])
            head = image.head if image is not None else None
            if head is not None and head.HasField("pages_id"):
                self.pagemaps.setdefault(int(head.pages_id), []).append(int(m.group(1)))

    def on_member(self, entry: Entry) -> None:
        name = entry.member.name
        m = PAGES_RE.match(name)
        if not m:
            if self.other is not None:
                self.other(entry)
            return
        self.pages_sizes[name] = entry.member.size
        pids = self.pagemaps.get(int(m.group(1)))
        owner = self._likely_owner(pids) if pids else None
        if owner is not None and f"checkpoint/mm-{owner}.img" in self.images:
            if entry.location is not None and hasattr(self.sink, "segment_buffer"):
                self._feed_mapped(name, owner, entry.location, entry.member.size)
                return
            with entry.open() as fh:
                self._feed(name, owner, fh, entry.member.size)
            return
        spool = tempfile.TemporaryFile(prefix="kcheckpoint-pages-")  # noqa: SIM115 (closed in finish)
        os.fchmod(spool.fileno(), 0o600)
        with entry.open() as fh:
            for chunk in read_chunks(fh, entry.member.size):
                spool.write(chunk)
        spool.seek(0)
        self._spools.append(spool)
        self._deferred.append((name, lambda s=spool: s, entry.member.size))  # type: ignore[misc]

    def _likely_owner(self, pids: list[int]) -> int:
        """Of the pagemaps naming one pages file, a live task's (core images come before pages
        in name order); ``finish`` checks it against pstree.img anyway."""
        for pid in sorted(pids):
            name = f"checkpoint/core-{pid}.img"
            core = self.images.get(name)
            image = decode_image(name, core, []) if core else None
            tc = image.entries[0].tc if image is not None and image.entries else None
            if tc is not None and int(tc.task_state) in (1, 3):  # alive, stopped
                return pid
        return min(pids)

    def _pmem(self, pid: int) -> ProcessMemory | None:
        name = f"checkpoint/pagemap-{pid}.img"
        image = decode_image(name, self.images.get(name, b""), []) if name in self.images else None
        if image is None:
            return None
        mm_name = f"checkpoint/mm-{pid}.img"
        mm_data = self.images.get(mm_name)
        mm_image = decode_image(mm_name, mm_data, []) if mm_data else None
        mm = mm_image.entries[0] if mm_image is not None and mm_image.entries else None
        psize = page_size_of(mm)
        head = image.head
        pid_pages = int(head.pages_id) if head is not None else None
        return ProcessMemory(pid, pid_pages, psize, [], runs_of(list(image.entries), psize))

    def _too_short(self, member: str) -> None:
        self.problems.append(
            Problem(
                member,
                "size-mismatch",
                "the pagemap describes more bytes than the pages file holds",
            )
        )

    def _feed(self, member: str, pid: int | None, fh: IO[bytes], size: int) -> None:
        if pid is not None and self.wanted is not None and pid not in self.wanted:
            return
        pmem = self._pmem(pid) if pid is not None else None
        if pmem is None:
            if self.wanted is None:
                self.sink.segment(SegmentInfo(member, None, None, 0, size), read_chunks(fh, size))
            return
        pos = 0
        wants = getattr(self.sink, "wants", None)
        clip = getattr(self.sink, "clip", None)
        for seg in pmem.segments():
            info = SegmentInfo(member, pid, seg.vaddr, seg.offset, seg.length)
            if wants is not None and not wants(info):
                continue
            if seg.offset > pos:
                _skip(fh, seg.offset - pos)
                pos = seg.offset
            if seg.offset + seg.length > size:
                self._too_short(member)
                break
            lo, hi = clip(info) if clip is not None else (0, seg.length)
            if lo:
                _skip(fh, lo)
                pos += lo
            info = SegmentInfo(member, pid, seg.vaddr + lo, seg.offset + lo, hi - lo)
            chunks = read_chunks(fh, hi - lo)
            self.sink.segment(info, chunks)
            for _ in chunks:  # whatever the sink did not read
                pass
            pos = seg.offset + hi

    def _feed_mapped(
        self, member: str, pid: int, location: tuple[IO[bytes], int], size: int
    ) -> None:
        """Hand each segment to the sink as a window of a read-only map of the archive file,
        so that a pages file on disk is searched without being copied."""
        if self.wanted is not None and pid not in self.wanted:
            return
        pmem = self._pmem(pid)
        if pmem is None:
            return
        file, base = location
        wants = getattr(self.sink, "wants", None)
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            for seg in pmem.segments():
                info = SegmentInfo(member, pid, seg.vaddr, seg.offset, seg.length)
                if wants is not None and not wants(info):
                    continue
                if seg.offset + seg.length > size:
                    self._too_short(member)
                    break
                lo = base + seg.offset
                self.sink.segment_buffer(info, mapped, lo, lo + seg.length)  # type: ignore[attr-defined]

    def finish(self) -> MemoryModel:
        """Process deferred and spooled pages files; return the memory model."""
        model = build_model(self.images, self.pages_sizes)
        live = model.by_pages_member()
        try:
            for name, opener, size in self._deferred:
                pmem = live.get(name)
                fh = opener()
                try:
                    fh.seek(0)
                    self._feed(name, pmem.pid if pmem else None, fh, size)
                finally:
                    if fh not in self._spools:
                        fh.close()
        finally:
            for s in self._spools:
                s.close()
        model.problems.extend(self.problems)
        return model


def _skip(fh: IO[bytes], n: int) -> None:
    if fh.seekable():
        fh.seek(n, os.SEEK_CUR)
        return
    for _ in read_chunks(fh, n):
        pass


def _metadata_env(blob: bytes) -> list[str]:
    """``process.env`` of an OCI spec (spec.dump), or nothing."""
    return parse_metadata({"spec.dump": blob}).env


def _feed_file(sink: SegmentSink, member: str, path: str | None, fh: IO[bytes], size: int) -> None:
    info = SegmentInfo(member, None, None, 0, size, path)
    chunks = read_chunks(fh, size)
    sink.segment(info, chunks)
    for _ in chunks:
        pass


def walk_memory(
    path: str | os.PathLike[str],
    sink: SegmentSink,
    *,
    stdin: IO[bytes] | None = None,
    pids: set[int] | None = None,
    everywhere: bool = False,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[ArchiveScan, MemoryModel]:
    """Stream every process's memory (or only ``pids``') to ``sink`` in one pass.

    With ``everywhere``, also the other members: logs and other files as they go by, the
    environment in spec.dump, and each file in rootfs-diff.tar and the tmpfs and /dev/shm tars.
    """
    other: Callable[[Entry], None] | None = None
    nested: Callable[[str, Entry], None] | None = None
    if everywhere:

        def other(entry: Entry) -> None:
            if entry.member.size:
                with entry.open() as fh:
                    _feed_file(sink, entry.member.name, None, fh, entry.member.size)

        def nested(outer: str, inner: Entry) -> None:
            if inner.member.type == "file" and inner.member.size:
                with inner.open() as fh:
                    _feed_file(sink, outer, inner.member.name, fh, inner.member.size)

    walk = MemoryWalk(sink, wanted=pids, other=other)
    scan = scan_with(
        walk,
        path,
        stdin=stdin,  # type: ignore[arg-type]
        hash_input=hash_input,
        progress=progress,
        on_nested=nested,
    )
    model = walk.finish()
    if everywhere and "spec.dump" in scan.blobs:
        for i, var in enumerate(_metadata_env(scan.blobs["spec.dump"])):
            data = var.encode("utf-8", "surrogateescape")
            sink.segment(
                SegmentInfo("spec.dump", None, None, 0, len(data), f"process.env[{i}]"),
                iter([data]),
            )
    return scan, model


def memory_model(
    path: str | os.PathLike[str],
    *,
    stdin: IO[bytes] | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[ArchiveScan, MemoryModel]:
    """The memory model of an archive without reading any page (sizes come from headers)."""
    scan = scan_archive(
        path,
        stdin=stdin,  # type: ignore[arg-type]
        hash_input=hash_input,
        progress=progress,
        read_images=True,
    )
    return scan, memory_of(scan)


def memory_of(scan: ArchiveScan) -> MemoryModel:
    """The memory model of a scan, from its images and the pages members' sizes."""
    sizes = {m.name: m.size for m in scan.members if PAGES_RE.match(m.name)}
    return build_model(scan.images, sizes)


class ScanHooks(Protocol):
    """What sees the CRIU images and the large members during a scan (``MemoryWalk``...)."""

    def on_image(self, name: str, data: bytes) -> None: ...

    def on_member(self, entry: Entry) -> None: ...


class PagesHook(ScanHooks, Protocol):
    """What reads process memory during a scan: hooks for scan_archive, then a reader."""

    problems: list[Problem]

    def read(self, pid: int, start: int, end: int) -> bytes | None: ...


def scan_with(
    hook: ScanHooks,
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
    on_nested: Callable[[str, Entry], None] | None = None,
    digest_members: bool = False,
) -> ArchiveScan:
    """Scan an archive once, keeping every CRIU image, with ``hook`` reading process memory."""
    try:
        return scan_archive(
            path,
            stdin=stdin,
            hash_input=hash_input,
            progress=progress,
            read_images=True,
            on_member=hook.on_member,
            on_image=hook.on_image,
            on_nested=on_nested,
            digest_members=digest_members,
        )
    finally:
        close = getattr(hook, "close", None)
        if close is not None:
            close()  # the argv/env reader reads the pages it had to spool
