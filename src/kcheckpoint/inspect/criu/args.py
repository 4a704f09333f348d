"""Read the argv and envp ranges of every process during the one pass over an archive.

A small, purpose-built reader: it keeps only the bytes of ``[mm_arg_start, mm_arg_end)`` and
``[mm_env_start, mm_env_end)`` of each process, found through ``pagemap-<pid>.img`` ->
``pages-<pages_id>.img`` as each pages member goes by. Page data is read forward in chunks (or
at offsets when the member is seekable) and never held whole. Its ``read`` method is the
``ReadMemory`` callable the decoder takes.

References:
    reference/criu-images.md §3.2 (entry -> offset in pages-N.img), §4.1 (argv and envp).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kcheckpoint.errors import ImageError, KCheckpointError
from kcheckpoint.inspect.archive import Entry
from kcheckpoint.inspect.model import Problem

from .decode import MAX_ARGS_BYTES, page_size
from .images import read_image
from .tables import PE_PARENT, PE_PRESENT

_PAGEMAP = re.compile(r"^checkpoint/pagemap-(\d+)\.img$")
_MM = re.compile(r"^checkpoint/mm-(\d+)\.img$")
_PAGES = re.compile(r"^checkpoint/pages-(\d+)\.img$")
_CHUNK = 1 << 20


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
        except ImageError:
            return  # the decoder reports damaged images

    def _add_pagemap(self, pid: int, head: Any, entries: list[Any]) -> None:
        if head is None or not head.HasField("pages_id"):
            return
        runs: list[tuple[int, int, int]] = []  # (vaddr, pages, file page offset)
        offset = 0
        for e in entries:
            count = e.nr_pages if e.HasField("nr_pages") else e.compat_nr_pages
            flags = (
                PE_PARENT
                if e.HasField("in_parent") and e.in_parent
                else (e.flags if e.HasField("flags") else PE_PRESENT)
            )
            if flags & PE_PRESENT:
                runs.append((e.vaddr, count, offset))
                offset += count
        self._runs[pid] = (head.pages_id, runs)

    def on_member(self, entry: Entry) -> None:
        m = _PAGES.match(entry.member.name)
        if not m:
            return
        pages_id = int(m.group(1))
        pids = [pid for pid, (pid_pages, _) in self._runs.items() if pid_pages == pages_id]
        pieces: list[tuple[int, int, _Want, int]] = []  # (file offset, length, want, want offset)
        for pid in pids:
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
            self._read_pieces(entry, sorted(pieces, key=lambda p: p[0]))

    def _read_pieces(self, entry: Entry, pieces: list[tuple[int, int, _Want, int]]) -> None:
        try:
            with entry.open() as fh:
                pos = 0
                for offset, length, want, at in pieces:
                    if fh.seekable():
                        fh.seek(offset)
                        pos = offset
                    while pos < offset:  # forward-only stream: skip in chunks
                        skipped = len(fh.read(min(_CHUNK, offset - pos)))
                        if not skipped:
                            raise EOFError
                        pos += skipped
                    data = fh.read(length)
                    pos += len(data)
                    want.data[at : at + len(data)] = data
                    want.covered += len(data)
        except (EOFError, OSError, KCheckpointError) as exc:
            self.problems.append(
                Problem(entry.member.name, "short-pages", f"page data ends early ({exc})")
            )

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of pid's memory; pages the dump left out read as zeros."""
        want = self._wants.get((pid, start, end))
        if want is None or want.covered == 0:
            return None
        return bytes(want.data)
