"""Sinks of ``criu.walk`` that keep bytes: one range of one process (``memory --address``,
``extract --memory``), and every process's argv and env for the decoder (``ArgvCapture``; the
``ArgsReader`` pages hook that ``summary``, ``inspect`` and ``diff`` scan with).

References:
    reference/criu-images.md §4.1 (argv and envp: ``mm_arg_start..mm_arg_end``,
    ``mm_env_start..mm_env_end``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from kcheckpoint.inspect.model import Problem
from kcheckpoint.inspect.reader.archive import Entry
from kcheckpoint.inspect.reader.scan import ArchiveScan
from kcheckpoint.inspect.reader.source import ProgressCallback

from .decode import MAX_ARGS_BYTES
from .memory import decode_image, page_size_of
from .walk import MemoryWalk, SegmentInfo, scan_with


class RangeCapture:
    """A sink that keeps ``[start, end)`` of one process's memory, in a buffer or a file."""

    def __init__(self, pid: int, start: int, end: int, out: IO[bytes] | None = None) -> None:
        self.pid, self.start, self.end = pid, start, end
        self.out = out
        self.buffer = bytearray(0 if out is not None else end - start)
        #: (start, end) virtual ranges that the archive holds.
        self.present: list[tuple[int, int]] = []

    def wants(self, info: SegmentInfo) -> bool:
        return (
            info.pid == self.pid
            and info.vaddr is not None
            and info.vaddr < self.end
            and self.start < info.vaddr + info.length
        )

    def segment(self, info: SegmentInfo, chunks: Iterator[bytes]) -> None:
        if not self.wants(info):
            return
        assert info.vaddr is not None
        pos = info.vaddr
        for chunk in chunks:
            lo, hi = max(pos, self.start), min(pos + len(chunk), self.end)
            if lo < hi:
                piece = chunk[lo - pos : hi - pos]
                if self.out is not None:
                    self.out.seek(lo - self.start)
                    self.out.write(piece)
                else:
                    self.buffer[lo - self.start : hi - self.start] = piece
                if self.present and self.present[-1][1] == lo:
                    self.present[-1] = (self.present[-1][0], hi)
                else:
                    self.present.append((lo, hi))
            pos += len(chunk)
            if pos >= self.end:
                return

    def holes(self) -> list[tuple[int, int]]:
        """The parts of the range the archive does not hold."""
        out, pos = [], self.start
        for lo, hi in self.present:
            if lo > pos:
                out.append((pos, lo))
            pos = max(pos, hi)
        if pos < self.end:
            out.append((pos, self.end))
        return out


@dataclass
class _Want:
    start: int
    end: int
    data: bytearray
    covered: int = 0


class ArgvCapture:
    """Keeps each process's argv and env bytes as its pages go by (a ``ReadMemory``).

    The ranges are ``[mm_arg_start, mm_arg_end)`` and ``[mm_env_start, mm_env_end)`` of
    ``mm-<pid>.img``, read from ``images`` (the walk's) when the pid's first segment comes.
    """

    def __init__(self, images: Mapping[str, bytes]) -> None:
        self.images = images
        self._wants: dict[int, list[_Want]] = {}
        self._page_size: dict[int, int] = {}

    def _mm(self, pid: int) -> Any | None:
        name = f"checkpoint/mm-{pid}.img"
        data = self.images.get(name)
        image = decode_image(name, data, []) if data else None
        return image.entries[0] if image is not None and image.entries else None

    def prepare(self, pid: int) -> int:
        """Read pid's mm image once: its argv/env ranges; returns its page size."""
        if pid not in self._wants:
            mm = self._mm(pid)
            wants = []
            if mm is not None:
                for start, end in (
                    (mm.mm_arg_start, mm.mm_arg_end),
                    (mm.mm_env_start, mm.mm_env_end),
                ):
                    if 0 < end - start <= MAX_ARGS_BYTES:
                        wants.append(_Want(start, end, bytearray(end - start)))
            self._wants[pid] = wants
            self._page_size[pid] = page_size_of(mm)
        return self._page_size[pid]

    def span(self, pid: int, vaddr: int, length: int) -> tuple[int, int] | None:
        """The part ``[lo, hi)`` of a segment (offsets in it) that holds argv or env, if any."""
        self.prepare(pid)
        lo, hi = length, 0
        for w in self._wants[pid]:
            a, b = max(vaddr, w.start), min(vaddr + length, w.end)
            if a < b:
                lo, hi = min(lo, a - vaddr), max(hi, b - vaddr)
        return (lo, hi) if lo < hi else None

    def feed(self, pid: int, vaddr: int, chunk: bytes) -> None:
        for w in self._wants.get(pid, ()):
            lo, hi = max(vaddr, w.start), min(vaddr + len(chunk), w.end)
            if lo < hi:
                w.data[lo - w.start : hi - w.start] = chunk[lo - vaddr : hi - vaddr]
                w.covered += hi - lo

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of pid's memory; pages the dump left out read as zeros."""
        for w in self._wants.get(pid, ()):
            if (w.start, w.end) == (start, end):
                return bytes(w.data) if w.covered else None
        return None


class _ArgvSink:
    """A sink that reads only the bytes of each segment that hold argv or env."""

    def __init__(self, capture: ArgvCapture) -> None:
        self.capture = capture

    def wants(self, info: SegmentInfo) -> bool:
        return self.clip(info) is not None

    def clip(self, info: SegmentInfo) -> tuple[int, int] | None:
        if info.pid is None or info.vaddr is None:
            return None
        return self.capture.span(info.pid, info.vaddr, info.length)

    def segment(self, info: SegmentInfo, chunks: Iterator[bytes]) -> None:
        if info.pid is None or info.vaddr is None:
            return
        vaddr = info.vaddr
        for chunk in chunks:
            self.capture.feed(info.pid, vaddr, chunk)
            vaddr += len(chunk)


class ArgsReader:
    """The argv and env of every process, read in the one pass of a scan.

    Hook ``on_image`` and ``on_member`` into ``scan_archive``, call ``close()`` after it (pages
    that came before their pagemap are read then, from their spool), and use ``read`` as the
    decoder's ``ReadMemory``.
    """

    def __init__(self) -> None:
        self.capture = ArgvCapture({})
        self.walk = MemoryWalk(_ArgvSink(self.capture))
        self.capture.images = self.walk.images
        self.problems: list[Problem] = []
        self._closed = False

    def on_image(self, name: str, data: bytes) -> None:
        self.walk.on_image(name, data)

    def on_member(self, entry: Entry) -> None:
        self.walk.on_member(entry)

    def close(self) -> None:
        """Read what was spooled; a pages file shorter than its pagemap is a problem."""
        if self._closed:
            return
        self._closed = True
        self.walk.finish()
        self.problems.extend(
            Problem(p.source, "short-pages", f"page data ends early ({p.message})")
            for p in self.walk.problems
        )

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        return self.capture.read(pid, start, end)


def scan_with_args(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[ArchiveScan, ArgsReader]:
    """Scan an archive once, keeping every CRIU image and the memory that holds argv and env."""
    args = ArgsReader()
    scan = scan_with(args, path, stdin=stdin, hash_input=hash_input, progress=progress)
    return scan, args
