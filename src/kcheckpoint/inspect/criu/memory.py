"""Process memory: mappings from ``mm-<pid>.img``, pages through ``pagemap-<pid>.img``.

Attribution follows CRIU's own chain only: ``pstree.img`` names the processes,
``pagemap-<pid>.img`` names the ``pages_id`` of each, and ``pages-<pages_id>.img`` holds the
data of every PE_PRESENT entry, one after another in pagemap order (criu-images.md §3.2).
Entries with PE_PARENT or lazy-only pages take no room in the pages file. A pages file that no
live process points to is *stale*: it is reported, never blamed on a pid.

This module is the model (no page is read here, except by ``MemoryReader``);
``kcheckpoint.inspect.criu.walk`` streams the pages during the one pass. To read bytes
``[start, end)`` of a process's memory from a seekable (plain tar) archive::

    scan = scan_archive(path, read_images=True)
    reader = MemoryReader.from_scan(path, scan)
    data = reader.read(pid, start, end)   # bytes (absent pages read as zeros), or None
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kcheckpoint.errors import ImageError
from kcheckpoint.inspect.model import Problem, SecretsWarning, secrets_warning

from .images import read_image

PE_PARENT = 1 << 0
PE_LAZY = 1 << 1
PE_PRESENT = 1 << 2
AT_PAGESZ = 6

# vma_entry.status bits (criu/include/image.h)
VMA_AREA_REGULAR = 1 << 0
VMA_AREA_STACK = 1 << 1
VMA_AREA_VSYSCALL = 1 << 2
VMA_AREA_VDSO = 1 << 3
VMA_AREA_HEAP = 1 << 5
VMA_FILE_PRIVATE = 1 << 6
VMA_FILE_SHARED = 1 << 7
VMA_ANON_SHARED = 1 << 8
VMA_ANON_PRIVATE = 1 << 9
VMA_AREA_SYSVIPC = 1 << 10
VMA_AREA_SOCKET = 1 << 11
VMA_AREA_VVAR = 1 << 12
VMA_AREA_MEMFD = 1 << 14
VMA_AREA_GUARD = 1 << 16
MAP_SHARED = 0x1
MAP_GROWSDOWN = 0x100

PAGEMAP_RE = re.compile(r"^checkpoint/pagemap-(\d+)\.img$")
MM_RE = re.compile(r"^checkpoint/mm-(\d+)\.img$")
CORE_RE = re.compile(r"^checkpoint/core-(\d+)\.img$")
PAGES_RE = re.compile(r"^checkpoint/pages-(\d+)\.img$")
SHMEM_PAGEMAP_RE = re.compile(r"^checkpoint/pagemap-shmem-(\d+)\.img$")

#: The memory classes of the per-process table.
#: The end of a 64-bit address space: no mapping or page run reaches beyond it.
ADDRESS_LIMIT = 1 << 64

KINDS = ("heap", "stack", "anonymous", "file", "shared", "other")


@dataclass(frozen=True, slots=True)
class Vma:
    """One mapping of a process."""

    start: int
    end: int
    #: ``rwxp`` / ``rw-s`` as in /proc/pid/maps.
    perms: str
    #: heap, stack, anonymous, file, shared, vdso, vvar, vsyscall or other.
    kind: str
    #: A path, or ``[heap]``, ``[stack]``, ``[anonymous]``, ``[shared]``, ``[vdso]``...
    backing: str
    pgoff: int
    prot: int
    flags: int
    status: int


@dataclass(frozen=True, slots=True)
class PageRun:
    """One pagemap entry: ``length`` bytes at ``vaddr``; ``offset`` in the pages file if present."""

    vaddr: int
    length: int
    #: "present" (in pages-N.img), "parent" (in a parent image), "lazy" (not in the image).
    source: str
    offset: int | None


@dataclass(frozen=True, slots=True)
class Segment:
    """VA-contiguous present pages, stored contiguously in the pages file."""

    vaddr: int
    offset: int
    length: int


@dataclass
class ProcessMemory:
    """The memory of one process, as the archive records it."""

    pid: int
    pages_id: int | None
    page_size: int
    vmas: list[Vma]
    runs: list[PageRun]
    comm: str | None = None
    #: In pstree.img and alive or stopped: only then is its memory attributed to it.
    live: bool = True
    _starts: list[int] = field(default_factory=list, repr=False)
    _run_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts = [v.start for v in self.vmas]
        self._run_starts = [r.vaddr for r in self.runs]

    @property
    def pages_member(self) -> str | None:
        return None if self.pages_id is None else f"checkpoint/pages-{self.pages_id}.img"

    @property
    def present_bytes(self) -> int:
        return sum(r.length for r in self.runs if r.source == "present")

    def vma_at(self, address: int) -> Vma | None:
        """The mapping that holds ``address``, or None."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and self.vmas[i].start <= address < self.vmas[i].end:
            return self.vmas[i]
        return None

    def segments(self) -> list[Segment]:
        """Present runs merged where both the addresses and the file offsets are contiguous."""
        out: list[Segment] = []
        for r in self.runs:
            if r.source != "present" or r.offset is None or not r.length:
                continue
            if (
                out
                and out[-1].vaddr + out[-1].length == r.vaddr
                and (out[-1].offset + out[-1].length == r.offset)
            ):
                last = out[-1]
                out[-1] = Segment(last.vaddr, last.offset, last.length + r.length)
            else:
                out.append(Segment(r.vaddr, r.offset, r.length))
        return out

    def locate(self, start: int, end: int) -> list[tuple[int, int, int | None]]:
        """Cover ``[start, end)`` with ``(vaddr, length, file offset or None)`` pieces."""
        pieces: list[tuple[int, int, int | None]] = []
        pos = start
        i = max(0, bisect.bisect_right(self._run_starts, start) - 1)
        while pos < end:
            while i < len(self.runs) and self.runs[i].vaddr + self.runs[i].length <= pos:
                i += 1
            if i < len(self.runs) and self.runs[i].vaddr <= pos:
                r = self.runs[i]
                stop = min(end, r.vaddr + r.length)
                off = None if r.offset is None else r.offset + (pos - r.vaddr)
                pieces.append((pos, stop - pos, off))
            else:
                stop = end if i >= len(self.runs) else min(end, self.runs[i].vaddr)
                pieces.append((pos, stop - pos, None))
            pos = stop
        return pieces

    def split(self) -> dict[str, int]:
        """Present bytes by mapping kind (heap, stack, anonymous, file, shared, other)."""
        sizes = dict.fromkeys(KINDS, 0)
        for r in self.runs:
            if r.source != "present":
                continue
            pos, end = r.vaddr, r.vaddr + r.length
            i = max(0, bisect.bisect_right(self._starts, pos) - 1)
            while pos < end:
                vma = self.vmas[i] if i < len(self.vmas) else None
                if vma is not None and vma.start <= pos < vma.end:
                    stop = min(end, vma.end)
                    kind = vma.kind if vma.kind in sizes else "other"
                    sizes[kind] += stop - pos
                    pos = stop
                    i += 1
                elif vma is not None and pos < vma.start:
                    stop = min(end, vma.start)
                    sizes["other"] += stop - pos
                    pos = stop
                elif vma is not None:
                    i += 1
                else:
                    sizes["other"] += end - pos
                    pos = end
        return sizes


def page_size_of(mm: Any | None) -> int:
    """AT_PAGESZ from the saved auxv, else 4096 (criu-images.md §3.2)."""
    if mm is not None:
        auxv = list(mm.mm_saved_auxv)
        for i in range(0, len(auxv) - 1, 2):
            if auxv[i] == AT_PAGESZ and _plausible_page_size(int(auxv[i + 1])):
                return int(auxv[i + 1])
    return 4096


def _plausible_page_size(value: int) -> bool:
    """A power of two from 4 KiB to 1 GiB: anything else is damage, and 4096 is used."""
    return 4096 <= value <= 1 << 30 and value & (value - 1) == 0


def entry_flags(e: Any) -> int:
    """PE_* flags of a pagemap entry, normalised as CRIU does (legacy ``in_parent``, no flags)."""
    if e.HasField("in_parent") and e.in_parent:
        return PE_PARENT
    return int(e.flags) if e.HasField("flags") else PE_PRESENT


def entry_pages(e: Any) -> int:
    """Page count: ``nr_pages`` (CRIU 4.x) when set, else ``compat_nr_pages`` (CRIU 3.x)."""
    return int(e.nr_pages) if e.HasField("nr_pages") else int(e.compat_nr_pages)


def runs_of(
    entries: list[Any], page_size: int, problems: list[Problem] | None = None, label: str = ""
) -> list[PageRun]:
    """Pagemap entries as runs, with the offset of each present one in the pages file.

    An entry that leaves the 64-bit address space is damage: it is dropped (and reported in
    ``problems``), and so is every present entry after it, whose offsets it would shift.
    """
    runs: list[PageRun] = []
    offset = 0
    for e in entries:
        length = entry_pages(e) * page_size
        if int(e.vaddr) + length > ADDRESS_LIMIT:
            if problems is not None:
                problems.append(
                    Problem(
                        label or "pagemap",
                        "bad-range",
                        f"a pagemap entry at {int(e.vaddr):#x} of {entry_pages(e)} pages leaves "
                        "the address space; it and the entries after it are ignored",
                    )
                )
            break
        flags = entry_flags(e)
        if flags & PE_PRESENT:
            runs.append(PageRun(int(e.vaddr), length, "present", offset))
            offset += length
        elif flags & PE_PARENT:
            runs.append(PageRun(int(e.vaddr), length, "parent", None))
        else:
            runs.append(PageRun(int(e.vaddr), length, "lazy", None))
    runs.sort(key=lambda r: r.vaddr)
    return runs


def _perms(prot: int, flags: int) -> str:
    return (
        ("r" if prot & 1 else "-")
        + ("w" if prot & 2 else "-")
        + ("x" if prot & 4 else "-")
        + ("s" if flags & MAP_SHARED else "p")
    )


def vmas_of(mm: Any | None, file_names: Mapping[int, str]) -> list[Vma]:
    """The real mappings of an mm entry, sorted by start (GUARD pseudo-VMAs dropped)."""
    if mm is None:
        return []
    out: list[Vma] = []
    for v in mm.vmas:
        status = int(v.status)
        if status & VMA_AREA_GUARD:
            continue
        flags, prot = int(v.flags), int(v.prot)
        if status & VMA_AREA_HEAP:
            kind, backing = "heap", "[heap]"
        elif status & VMA_AREA_STACK or flags & MAP_GROWSDOWN:
            kind, backing = "stack", "[stack]"
        elif status & VMA_AREA_VDSO:
            kind, backing = "vdso", "[vdso]"
        elif status & VMA_AREA_VVAR:
            kind, backing = "vvar", "[vvar]"
        elif status & VMA_AREA_VSYSCALL:
            kind, backing = "vsyscall", "[vsyscall]"
        elif status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED):
            name = file_names.get(int(v.shmid), f"file id {int(v.shmid)}")
            kind = "shared" if status & VMA_FILE_SHARED else "file"
            backing = name + (f" +0x{int(v.pgoff):x}" if v.pgoff else "")
        elif status & (VMA_ANON_SHARED | VMA_AREA_MEMFD | VMA_AREA_SYSVIPC):
            kind, backing = "shared", f"[shared shmid={int(v.shmid)}]"
        elif status & VMA_ANON_PRIVATE:
            kind, backing = "anonymous", "[anonymous]"
        else:
            kind, backing = "other", "[other]"
        out.append(
            Vma(
                int(v.start),
                int(v.end),
                _perms(prot, flags),
                kind,
                backing,
                int(v.pgoff),
                prot,
                flags,
                status,
            )
        )
    out.sort(key=lambda x: x.start)
    return out


def file_names_of(files_img: list[Any]) -> dict[int, str]:
    """files.img ids of regular files and memfds, with their paths."""
    names: dict[int, str] = {}
    for e in files_img:
        if e.HasField("reg"):
            names[int(e.id)] = (
                e.reg.name.decode("utf-8", "replace")
                if isinstance(e.reg.name, bytes)
                else str(e.reg.name)
            )
        elif e.HasField("memfd"):
            names[int(e.id)] = "memfd"
    return names


@dataclass
class MemoryModel:
    """Every process's memory in one archive, plus pages files nothing live points to."""

    processes: dict[int, ProcessMemory]
    #: pages members that no live process's pagemap points to.
    stale_pages: list[str]
    #: pages member -> its size (every pages-*.img in the archive).
    pages_sizes: dict[str, int]
    problems: list[Problem]

    def by_pages_member(self) -> dict[str, ProcessMemory]:
        return {p.pages_member: p for p in self.processes.values() if p.live and p.pages_member}

    def warnings(self) -> list[SecretsWarning]:
        """The memory-may-hold-secrets warning: live processes, and every pages file's bytes."""
        live = sum(1 for p in self.processes.values() if p.live)
        return secrets_warning(live, sum(self.pages_sizes.values()))


def decode_image(name: str, data: bytes, problems: list[Problem]) -> Any | None:
    try:
        return read_image(name.rsplit("/", 1)[-1], data)
    except ImageError as exc:
        problems.append(Problem(name, "bad-image", exc.message))
        return None


def _tree(
    images: Mapping[str, bytes], problems: list[Problem], provisional: bool = False
) -> dict[int, tuple[str, str]]:
    """pid -> (state, comm) of every task in pstree.img (state from core-<pid>.img).

    ``provisional``: before pstree.img has been read, every pid that has a core image."""
    out: dict[int, tuple[str, str]] = {}
    pstree = images.get("checkpoint/pstree.img")
    if pstree is not None:
        image = decode_image("checkpoint/pstree.img", pstree, problems)
        pids = [int(e.pid) for e in image.entries] if image is not None else []
    elif provisional:
        pids = sorted(int(m.group(1)) for n in images if (m := CORE_RE.match(n)))
    else:
        return out
    for pid in pids:
        state, comm = "alive", ""
        core_data = images.get(f"checkpoint/core-{pid}.img")
        core_name = f"checkpoint/core-{pid}.img"
        core = decode_image(core_name, core_data, problems) if core_data else None
        if core is not None and core.entries and core.entries[0].HasField("tc"):
            tc = core.entries[0].tc
            state = {1: "alive", 2: "zombie", 3: "stopped", 6: "zombie"}.get(
                int(tc.task_state), "unknown"
            )
            comm = tc.comm if isinstance(tc.comm, str) else tc.comm.decode("utf-8", "replace")
        out[pid] = (state, comm)
    return out


def _shmem_pages(images: Mapping[str, bytes]) -> set[str | None]:
    """The pages members of shared segments (``pagemap-shmem-<shmid>.img`` heads)."""
    out: set[str | None] = set()
    for name, data in images.items():
        if SHMEM_PAGEMAP_RE.match(name):
            image = decode_image(name, data, [])
            head = image.head if image is not None else None
            if head is not None and head.HasField("pages_id"):
                out.add(f"checkpoint/pages-{int(head.pages_id)}.img")
    return out


def build_model(
    images: Mapping[str, bytes], pages_sizes: Mapping[str, int], *, provisional: bool = False
) -> MemoryModel:
    """The memory model from the small images of a scan (``scan.images``) and pages sizes.

    ``provisional``: the model of the images read so far, during a scan; until pstree.img
    arrives, the tasks are the pids with a core image."""
    problems: list[Problem] = []
    tree = _tree(images, problems, provisional)
    have_tree = provisional or "checkpoint/pstree.img" in images
    files = (
        decode_image("checkpoint/files.img", images["checkpoint/files.img"], problems)
        if ("checkpoint/files.img" in images)
        else None
    )
    names = file_names_of(files.entries if files is not None else [])
    procs: dict[int, ProcessMemory] = {}
    for name, data in sorted(images.items()):
        m = PAGEMAP_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        pagemap = decode_image(name, data, problems)
        mm_data = images.get(f"checkpoint/mm-{pid}.img")
        mm_image = decode_image(f"checkpoint/mm-{pid}.img", mm_data, problems) if mm_data else None
        mm = mm_image.entries[0] if mm_image is not None and mm_image.entries else None
        if pagemap is None:
            continue
        head = pagemap.head
        pages_id = int(head.pages_id) if head is not None and head.HasField("pages_id") else None
        psize = page_size_of(mm)
        state, comm = tree.get(pid, ("absent", ""))
        live = state in ("alive", "stopped") if have_tree else True
        procs[pid] = ProcessMemory(
            pid,
            pages_id,
            psize,
            vmas_of(mm, names),
            runs_of(list(pagemap.entries), psize, problems, name),
            comm=comm or None,
            live=live,
        )
    referenced = {p.pages_member for p in procs.values() if p.live} | _shmem_pages(images)
    stale = sorted(n for n in pages_sizes if n not in referenced)
    for n in stale:
        problems.append(
            Problem(n, "stale-pages", "no live process's pagemap points to this pages file")
        )
    for p in procs.values():
        if not p.live:
            problems.append(
                Problem(
                    f"checkpoint/pagemap-{p.pid}.img",
                    "stale-pagemap",
                    f"pid {p.pid} is not a live task in pstree.img; its memory is not "
                    "attributed to it",
                )
            )
            continue
        member = p.pages_member
        want = p.present_bytes
        if member is not None and member in pages_sizes and pages_sizes[member] != want:
            problems.append(
                Problem(
                    member,
                    "size-mismatch",
                    f"pagemap-{p.pid}.img describes {want} bytes, the file holds "
                    f"{pages_sizes[member]}",
                )
            )
        elif member is not None and member not in pages_sizes and want:
            problems.append(Problem(member, "missing", f"pid {p.pid}'s pages file is absent"))
    return MemoryModel(procs, stale, dict(pages_sizes), problems)


class MemoryReader:
    """Reads a process's memory from a seekable (plain tar) archive, at member offsets."""

    def __init__(
        self, path: str | os.PathLike[str], model: MemoryModel, offsets: Mapping[str, int]
    ) -> None:
        self.path = os.fspath(path)
        self.model = model
        self.offsets = dict(offsets)

    @classmethod
    def from_scan(cls, path: str | os.PathLike[str], scan: Any) -> MemoryReader:
        """A reader for an archive scanned with ``read_images=True`` in seekable mode."""
        sizes = {m.name: m.size for m in scan.members if PAGES_RE.match(m.name)}
        offsets = {m.name: m.offset_data for m in scan.members if PAGES_RE.match(m.name)}
        return cls(path, build_model(scan.images, sizes), offsets)

    def read(self, pid: int, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of ``pid``'s memory; pages not in the archive read as zeros.

        None when the pid has no memory in the archive or no byte of the range is present.
        """
        pmem = self.model.processes.get(pid)
        if pmem is None or not pmem.live or pmem.pages_member not in self.offsets or end <= start:
            return None
        base = self.offsets[pmem.pages_member]
        size = self.model.pages_sizes.get(pmem.pages_member, 0)
        out = bytearray(end - start)
        found = False
        with open(self.path, "rb") as fh:
            for vaddr, length, off in pmem.locate(start, end):
                if off is None or off >= size:  # a pages file cut short reads as zeros
                    continue
                fh.seek(base + off)
                data = fh.read(min(length, size - off))
                out[vaddr - start : vaddr - start + len(data)] = data
                found = True
        return bytes(out) if found else None


# ---------------------------------------------------------------------------------------------
# The `memory` command's model: per-process sizes, mappings, a range of bytes


@dataclass(frozen=True, slots=True)
class ProcessMemoryRow:
    """Present memory of one live process, split by mapping kind (bytes)."""

    pid: int
    comm: str | None
    pages_member: str | None
    page_size: int
    present: int
    heap: int
    stack: int
    anonymous: int
    file: int
    shared: int
    other: int
    #: Pages in a parent (pre-dump) image, and lazy pages not in the archive.
    parent: int
    lazy: int
    mappings: int


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One mapping and how much of it the archive holds."""

    start: str
    end: str
    size: int
    perms: str
    kind: str
    backing: str
    present: int
    #: Offset of the mapping's first present byte in the pages member, or None.
    first_offset: int | None


def process_row(p: ProcessMemory) -> ProcessMemoryRow:
    split = p.split()
    return ProcessMemoryRow(
        pid=p.pid,
        comm=p.comm,
        pages_member=p.pages_member,
        page_size=p.page_size,
        present=p.present_bytes,
        parent=sum(r.length for r in p.runs if r.source == "parent"),
        lazy=sum(r.length for r in p.runs if r.source == "lazy"),
        mappings=len(p.vmas),
        **split,
    )


def mapping_rows(p: ProcessMemory) -> list[MappingRow]:
    rows = []
    for v in p.vmas:
        pieces = [x for x in p.locate(v.start, v.end) if x[2] is not None]
        rows.append(
            MappingRow(
                f"0x{v.start:x}",
                f"0x{v.end:x}",
                v.end - v.start,
                v.perms,
                v.kind,
                v.backing,
                sum(length for _, length, _ in pieces),
                pieces[0][2] if pieces else None,
            )
        )
    return rows
