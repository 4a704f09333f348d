"""Find the pages whose bytes differ between two checkpoints, in bounded memory.

Pages are compared between the two sides of one pid, at the same virtual addresses. Three
plans, by what can be read at an offset:

- both sides seekable plain tars (``compare_seekable``): the pages both hold are read side by
  side at their offsets, A's into a reused buffer and B's seen in place through a memory map,
  and compared (memcmp, bisected down to the page only where a chunk differs); no digest;
- one side (R) seekable: the other side (S) streams through ``MemoryWalk`` one chunk at a time,
  and each chunk is compared with R's bytes read at their offsets (``CompareReaderSink``);
- neither: both are read at once (``lockstep``), A's chunks handed to B's pass as they come,
  digested (a 16-byte SHA-256 prefix per page) only when they have to wait too long.

The result is, per pid, the merged ``[start, end)`` ranges of pages present on both sides whose
bytes differ. Pages present on one side only are not counted here: the pagemaps say which.
The streaming sinks also keep each process's argv and env ranges for the decoder.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import mmap
import os
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from kcheckpoint.inspect.criu.memory import MemoryModel, ProcessMemory
from kcheckpoint.inspect.criu.sinks import ArgvCapture
from kcheckpoint.inspect.criu.walk import MemoryWalk, SegmentInfo
from kcheckpoint.inspect.model import Problem
from kcheckpoint.inspect.reader.archive import Entry

DIGEST_BYTES = 16
#: pid -> merged [start, end) ranges of changed pages.
Changes = dict[int, list[list[int]]]


def add_range(ranges: list[list[int]], start: int, end: int) -> None:
    """Append ``[start, end)``, merging with the last range when they touch."""
    if ranges and ranges[-1][1] == start:
        ranges[-1][1] = end
    else:
        ranges.append([start, end])


def merged(changes: Changes) -> dict[int, list[tuple[int, int]]]:
    """Sorted, merged ranges per pid."""
    out: dict[int, list[tuple[int, int]]] = {}
    for pid, ranges in changes.items():
        acc: list[list[int]] = []
        for start, end in sorted(ranges):
            if acc and start <= acc[-1][1]:
                acc[-1][1] = max(acc[-1][1], end)
            else:
                acc.append([start, end])
        out[pid] = [(s, e) for s, e in acc]
    return out


def differing_pages(
    mine: bytes | bytearray, at: int, theirs: memoryview, psize: int
) -> Iterator[int]:
    """Offsets (in ``theirs``) of the pages where ``mine[at:]`` and ``theirs`` differ, in order.

    Halves are compared whole (memcmp) and split only where they differ, so a chunk with a few
    changed pages costs a few dozen comparisons, not one per page.
    """
    stack = [(0, len(theirs))]
    while stack:
        lo, hi = stack.pop()
        if mine.startswith(theirs[lo:hi], at + lo):
            continue
        if hi - lo <= psize:
            yield lo
            continue
        mid = lo + max(1, (hi - lo) // psize // 2) * psize
        stack.append((mid, hi))
        stack.append((lo, mid))


class _Sink(abc.ABC):
    """Feeds each chunk of a segment to the argv capture and to ``_chunk``.

    (Hashing on a worker thread was measured slower on two cores: the GIL is held between
    pages, and decompression already keeps one core busy.)
    """

    def __init__(self) -> None:
        self.capture: ArgvCapture = ArgvCapture({})
        self.changes: Changes = {}
        #: Pages whose bytes were compared (the rest of what both pagemaps hold was missing
        #: from a pages file that ends early, and cannot be said to be equal).
        self.seen: Changes = {}

    def segment(self, info: SegmentInfo, chunks: Iterator[bytes]) -> None:
        """Chunks are valid only until the next one is read (the walk may reuse a buffer)."""
        if info.pid is None or info.vaddr is None:
            return
        pid = info.pid
        psize = self.capture.prepare(pid)
        vaddr = info.vaddr
        carry = b""
        for chunk in chunks:
            data = carry + chunk if carry else chunk
            self.capture.feed(pid, vaddr, data)
            whole = len(data) - len(data) % psize
            if whole:
                self._chunk(pid, vaddr, data[:whole] if whole < len(data) else data, psize)
            carry = bytes(data[whole:])
            vaddr += whole
        if carry:  # a short last page (a truncated pages file): compare what is there
            self._chunk(pid, vaddr, carry, psize)

    @abc.abstractmethod
    def _chunk(self, pid: int, vaddr: int, data: bytes, psize: int) -> None:
        """Compare or hand on the whole pages of one chunk (each kind of sink its own way)."""


def page_digests(data: bytes, psize: int) -> bytes:
    """A 16-byte SHA-256 prefix per page, concatenated."""
    view = memoryview(data)
    sha = hashlib.sha256
    return b"".join(
        sha(view[i : i + psize]).digest()[:DIGEST_BYTES] for i in range(0, len(data), psize)
    )


class PageReader:
    """Reads a side's pages at their offsets in a seekable plain tar: copied into a buffer
    (``read_into``), or seen in place through a read-only memory map (``view``), which saves
    the copy from the page cache."""

    def __init__(
        self, path: str | os.PathLike[str], model: MemoryModel, offsets: Mapping[str, int]
    ):
        self.model = model
        self.offsets = dict(offsets)
        self._file: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self._buf = bytearray(1 << 20)
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view still held: freed with it
                self._map.close()
            self._map = None
        self._file.close()

    def view(self, offset: int, length: int) -> memoryview:
        """``length`` bytes at ``offset`` (fewer at the end of the file), without a copy."""
        if self._view is None:
            size = os.fstat(self._file.fileno()).st_size
            if not size:
                return memoryview(b"")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            if hasattr(mmap, "MADV_SEQUENTIAL"):
                self._map.madvise(mmap.MADV_SEQUENTIAL)
            self._view = memoryview(self._map)
        return self._view[offset : offset + length]

    def done(self, offset: int, length: int) -> None:
        """Unmap what ``view`` showed of ``[offset, offset + length)`` from this process: the
        page cache keeps it, and the resident set stays bounded."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = offset - offset % mmap.PAGESIZE
        end = min(offset + length, len(self._map))
        if end > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def process(self, pid: int) -> tuple[ProcessMemory, int] | None:
        pmem = self.model.processes.get(pid)
        if pmem is None or not pmem.live or pmem.pages_member not in self.offsets:
            return None
        return pmem, self.offsets[pmem.pages_member]

    @property
    def buffer(self) -> bytearray:
        """The buffer ``read_into`` fills (its view's base)."""
        return self._buf

    def read_into(self, offset: int, length: int) -> memoryview:
        if len(self._buf) < length:
            self._buf = bytearray(length)
        view = memoryview(self._buf)[:length]
        fd = self._file.fileno()
        got = 0
        while got < length:  # pread: one system call, no seek
            n = os.preadv(fd, [view[got:]], offset + got)
            if not n:
                break
            got += n
        return view[:got]


class CompareReaderSink(_Sink):
    """One pass over S: each chunk against R's bytes, read at their offsets in R's file."""

    def __init__(self, reader: PageReader) -> None:
        super().__init__()
        self.reader = reader
        self.problems: list[Problem] = []

    def _chunk(self, pid: int, vaddr: int, data: bytes, psize: int) -> None:
        found = self.reader.process(pid)
        if found is None:
            return
        pmem, base = found
        ranges = self.changes.setdefault(pid, [])
        seen = self.seen.setdefault(pid, [])
        for addr, length, off in pmem.locate(vaddr, vaddr + len(data)):
            if off is None:
                continue
            add_range(seen, addr, addr + length)
            theirs = self.reader.view(base + off, length)
            for k in differing_pages(data, addr - vaddr, theirs, psize):
                add_range(ranges, addr + k, addr + min(k + psize, length))
            if len(theirs) < length:  # R's pages file ends early: the rest cannot be equal
                add_range(ranges, addr + len(theirs), addr + length)
            del theirs
            self.reader.done(base + off, length)


def _pieces(a: ProcessMemory, b: ProcessMemory, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """``(vaddr, length, offset in A's file, offset in B's file)`` of the pages present on both
    sides, in address order, at most ``chunk`` bytes each."""
    sa, sb = a.segments(), b.segments()
    i = j = 0
    while i < len(sa) and j < len(sb):
        x, y = sa[i], sb[j]
        lo = max(x.vaddr, y.vaddr)
        hi = min(x.vaddr + x.length, y.vaddr + y.length)
        while lo < hi:
            n = min(chunk, hi - lo)
            yield lo, n, x.offset + lo - x.vaddr, y.offset + lo - y.vaddr
            lo += n
        if x.vaddr + x.length <= y.vaddr + y.length:
            i += 1
        else:
            j += 1


def compare_seekable(a: PageReader, b: PageReader, chunk: int = 1 << 20) -> Changes:
    """Both sides seekable: read the pages both hold, at their offsets, and compare them."""
    changes: Changes = {}
    for pid in sorted(a.model.processes.keys() & b.model.processes.keys()):
        fa, fb = a.process(pid), b.process(pid)
        if fa is None or fb is None:
            continue
        (pa, base_a), (pb, base_b) = fa, fb
        psize = pa.page_size
        ranges = changes.setdefault(pid, [])
        for vaddr, length, off_a, off_b in _pieces(pa, pb, chunk):
            mine = a.read_into(base_a + off_a, length)
            theirs = b.view(base_b + off_b, length)
            short = min(len(mine), len(theirs))
            for k in differing_pages(a.buffer, 0, theirs[:short], psize):
                add_range(ranges, vaddr + k, vaddr + min(k + psize, short))
            if short < length:  # a pages file ends early: the rest cannot be compared
                add_range(ranges, vaddr + short, vaddr + length)
            del theirs
            b.done(base_b + off_b, length)
    return changes


class StreamPages:
    """A pages hook for ``read_side``: MemoryWalk streaming into one of the sinks above."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.walk = MemoryWalk(sink)
        sink.capture = ArgvCapture(self.walk.images)
        self.problems: list[Problem] = self.walk.problems
        self.model: MemoryModel | None = None

    def on_image(self, name: str, data: bytes) -> None:
        self.walk.on_image(name, data)

    def on_member(self, entry: Entry) -> None:
        self.walk.on_member(entry)

    def finish(self) -> MemoryModel:
        self.model = self.walk.finish()
        return self.model

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        return self.sink.capture.read(pid, start, end)
