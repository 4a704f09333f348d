"""Read the argv and envp ranges of every process during the one pass over an archive.

A small, purpose-built reader: it keeps only the bytes of ``[mm_arg_start, mm_arg_end)`` and
``[mm_env_start, mm_env_end)`` of each process, found through ``pagemap-<pid>.img`` ->
``pages-<pages_id>.img`` as each pages member goes by. Page data is read forward in chunks (or
at offsets when the member is seekable) and never held whole in memory. Its ``read`` method is
the ``ReadMemory`` callable the decoder takes.

Member order: engines write ``mm-``/``pagemap-`` before ``pages-`` (lexical order), but nothing
requires it. A pages member that arrives before its pagemap and mm is read later: at its offset
while the walk is still on (seekable input), or from a private 0600 temporary spool file
(stream input). Call ``close()`` after the scan to drop the spools.

References:
    reference/criu-images.md §3.2 (entry -> offset in pages-N.img), §4.1 (argv and envp), §6.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from kcheckpoint.errors import ImageError, KCheckpointError
from kcheckpoint.inspect.model import Problem
from kcheckpoint.inspect.reader.archive import Entry
from kcheckpoint.inspect.reader.scan import ArchiveScan, scan_archive
from kcheckpoint.inspect.reader.source import ProgressCallback

from .decode import MAX_ARGS_BYTES
from .images import read_image
from .memory import entry_flags, entry_pages
from .memory import page_size_of as page_size
from .tables import PE_PRESENT

_PAGEMAP = re.compile(r"^checkpoint/pagemap-(\d+)\.img$")
_MM = re.compile(r"^checkpoint/mm-(\d+)\.img$")
_PAGES = re.compile(r"^checkpoint/pages-(\d+)\.img$")
_CHUNK = 1 << 20

#: Opens a pages member's bytes again (a seekable member, or a spool file).
Opener = Callable[[], IO[bytes]]


@dataclass
class _Want:
    pid: int
    start: int
    end: int
    data: bytearray = field(default_factory=bytearray)
    covered: int = 0


class ArgsReader:
    """Collects argv/env bytes per process; hook ``on_image`` and ``on_member`` into a scan."""

    def __init__(self) -> None:
        self._runs: dict[int, tuple[int, list[tuple[int, int, int]]]] = {}
        self._mm: dict[int, Any] = {}
        self._wants: dict[tuple[int, int, int], _Want] = {}
        #: pages members seen before their pagemap/mm: pages_id -> (member name, opener)
        self._deferred: dict[int, tuple[str, Opener]] = {}
        self._spools: list[IO[bytes]] = []
        self._done: set[int] = set()
        self.problems: list[Problem] = []

    def on_image(self, name: str, data: bytes) -> None:
        try:
            if m := _PAGEMAP.match(name):
                image = read_image(name.rsplit("/", 1)[1], data)
                self._add_pagemap(int(m.group(1)), image.head, image.entries)
            elif m := _MM.match(name):
                image = read_image(name.rsplit("/", 1)[1], data)
                if image.entries:
                    self._mm[int(m.group(1))] = image.entries[0]
            else:
                return
        except ImageError:
            return  # the decoder reports damaged images
        for pages_id in [p for p in self._deferred if self._ready(p)]:
            member, opener = self._deferred.pop(pages_id)
            self._resolve(pages_id, member, opener)

    def _add_pagemap(self, pid: int, head: Any, entries: list[Any]) -> None:
        if head is None or not head.HasField("pages_id"):
            return
        runs: list[tuple[int, int, int]] = []  # (vaddr, pages, file page offset)
        offset = 0
        for e in entries:
            count = entry_pages(e)
            if entry_flags(e) & PE_PRESENT:
                runs.append((e.vaddr, count, offset))
                offset += count
        self._runs[pid] = (head.pages_id, runs)

    def _pids(self, pages_id: int) -> list[int]:
        return [pid for pid, (pid_pages, _) in self._runs.items() if pid_pages == pages_id]

    def _ready(self, pages_id: int) -> bool:
        pids = self._pids(pages_id)
        return bool(pids) and all(pid in self._mm for pid in pids)

    def on_member(self, entry: Entry) -> None:
        m = _PAGES.match(entry.member.name)
        if not m:
            return
        pages_id = int(m.group(1))
        if self._ready(pages_id):
            self._resolve(pages_id, entry.member.name, entry.open)
            return
        # Its pagemap or mm has not been seen yet: keep a way to read it again.
        with entry.open() as fh:
            seekable = fh.seekable()
        if seekable:
            self._deferred[pages_id] = (entry.member.name, entry.open)
            return
        spool = tempfile.TemporaryFile(prefix="kcheckpoint-args-")  # noqa: SIM115  (mode 0600)
        self._spools.append(spool)
        try:
            with entry.open() as fh:
                shutil.copyfileobj(fh, spool, _CHUNK)
        except (OSError, KCheckpointError) as exc:
            self.problems.append(
                Problem(entry.member.name, "short-pages", f"page data ends early ({exc})")
            )
            return
        self._deferred[pages_id] = (entry.member.name, lambda: _reopen(spool))

    def _resolve(self, pages_id: int, member: str, opener: Opener) -> None:
        if pages_id in self._done:
            return
        self._done.add(pages_id)
        pieces: list[tuple[int, int, _Want, int]] = []  # (file offset, length, want, want offset)
        for pid in self._pids(pages_id):
            mm = self._mm.get(pid)
            if mm is None:
                continue
            psize = page_size(mm)
            for start, end in (
                (mm.mm_arg_start, mm.mm_arg_end),
                (mm.mm_env_start, mm.mm_env_end),
            ):
                if not 0 < end - start <= MAX_ARGS_BYTES:
                    continue
                want = _Want(pid, start, end, bytearray(end - start))
                self._wants[(pid, start, end)] = want
                for vaddr, count, page_off in self._runs[pid][1]:
                    lo = max(start, vaddr)
                    hi = min(end, vaddr + count * psize)
                    if lo < hi:
                        pieces.append((page_off * psize + lo - vaddr, hi - lo, want, lo - start))
        if pieces:
            self._read_pieces(member, opener, sorted(pieces, key=lambda p: p[0]))

    def _read_pieces(
        self, member: str, opener: Opener, pieces: list[tuple[int, int, _Want, int]]
    ) -> None:
        try:
            with opener() as fh:
                pos = 0
                scratch = memoryview(bytearray(_CHUNK))
                for offset, length, want, at in pieces:
                    if fh.seekable():
                        fh.seek(offset)
                        pos = offset
                    while pos < offset:  # forward-only stream: skip in chunks, no allocation
                        skipped = fh.readinto(scratch[: min(_CHUNK, offset - pos)])  # type: ignore[attr-defined]
                        if not skipped:
                            raise EOFError("end of data")
                        pos += skipped
                    data = fh.read(length)
                    pos += len(data)
                    want.data[at : at + len(data)] = data
                    want.covered += len(data)
        except (EOFError, OSError, KCheckpointError) as exc:
            self.problems.append(Problem(member, "short-pages", f"page data ends early ({exc})"))

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of pid's memory; pages the dump left out read as zeros."""
        want = self._wants.get((pid, start, end))
        if want is None or want.covered == 0:
            return None
        return bytes(want.data)

    def close(self) -> None:
        """Drop the spool files of pages members that arrived early."""
        for spool in self._spools:
            spool.close()
        self._spools.clear()
        self._deferred.clear()


class _Reopened:
    """A spool file seen as a fresh reader that does not close the spool."""

    def __init__(self, spool: IO[bytes]) -> None:
        self._spool = spool
        spool.seek(0)

    def __enter__(self) -> IO[bytes]:
        return self._spool

    def __exit__(self, *exc: object) -> None:
        return None


def _reopen(spool: IO[bytes]) -> Any:
    return _Reopened(spool)


def scan_with_args(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[ArchiveScan, ArgsReader]:
    """Scan an archive once, keeping every CRIU image and the memory that holds argv and env."""
    args = ArgsReader()
    try:
        scan = scan_archive(
            path,
            stdin=stdin,
            hash_input=hash_input,
            progress=progress,
            read_images=True,
            on_member=args.on_member,
            on_image=args.on_image,
        )
    finally:
        args.close()
    return scan, args
