"""Write one process's memory as one file per mapping, with a JSON index beside them.

Each file holds the mapping's bytes from its start address: the pages the archive holds at their
offsets, and zeros where it holds none (untouched anonymous memory reads as zeros; for a
file-backed mapping the unchanged pages are in the file, not in the archive: the index says how
many bytes are present). Files are 0600 in a 0700 directory, written under temporary names and
renamed only when the pass is complete. Mappings without any page in the archive get no file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from kcheckpoint.errors import InputError, MemberNotFound
from kcheckpoint.inspect.criu.memory import ProcessMemory, Vma
from kcheckpoint.inspect.criu.walk import SegmentInfo, memory_model, walk_memory
from kcheckpoint.inspect.model import InputInfo, Problem
from kcheckpoint.inspect.reader.source import ProgressCallback


@dataclass(frozen=True, slots=True)
class MappingFile:
    """One mapping of the process and the file its bytes went to (None: no page in the archive)."""

    start: str
    end: str
    perms: str
    kind: str
    backing: str
    size: int
    present_bytes: int
    file: str | None
    sha256: str | None


@dataclass
class MemoryExtract:
    """What ``extract --memory`` wrote."""

    input: InputInfo
    pid: int
    comm: str | None
    directory: str
    index: str
    mappings: list[MappingFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def mapping_file_name(vma: Vma) -> str:
    """``<start>-<end>.bin`` in hex, as /proc/pid/maps writes ranges."""
    return f"{vma.start:016x}-{vma.end:016x}.bin"


class _MappingWriter:
    """A walk sink that writes each segment of one pid into the files of its mappings."""

    def __init__(self, pid: int, targets: dict[int, tuple[Vma, IO[bytes]]]) -> None:
        self.pid = pid
        self._targets = targets
        self._starts = sorted(targets)
        self.present: dict[int, int] = dict.fromkeys(targets, 0)

    def segment(self, info: SegmentInfo, chunks: Iterator[bytes]) -> None:
        if info.pid != self.pid or info.vaddr is None:
            return
        pos = info.vaddr
        for chunk in chunks:
            self._write(pos, chunk)
            pos += len(chunk)

    def _write(self, address: int, data: bytes) -> None:
        end = address + len(data)
        for start in self._starts:
            vma, fh = self._targets[start]
            lo, hi = max(address, vma.start), min(end, vma.end)
            if lo >= hi:
                continue
            fh.seek(lo - vma.start)
            fh.write(data[lo - address : hi - address])
            self.present[start] += hi - lo


def extract_memory(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    pid: int,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> MemoryExtract:
    """Write pid's mappings into ``output/memory-<pid>/`` and an index beside them.

    Needs a file (not stdin): the first pass reads the mappings, the second the pages.
    """
    scan, model = memory_model(path, hash_input=True, progress=progress)
    pmem = model.processes.get(pid)
    if pmem is None or not pmem.live:
        raise MemberNotFound(
            f"{scan.input.path}: no live process {pid} with memory in this archive",
            hint="`kcheckpoint memory ARCHIVE` lists the processes",
        )
    os.makedirs(output, mode=0o700, exist_ok=True)
    directory = os.path.join(os.fspath(output), f"memory-{pid}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.path.islink(directory) or not os.path.isdir(directory):
        raise InputError(f"{directory}: not a directory")
    index_name = os.path.join(directory, "index.json")
    with_pages = [v for v in pmem.vmas if _has_pages(pmem, v)]
    finals = [os.path.join(directory, mapping_file_name(v)) for v in with_pages]
    if not force:
        existing = [f for f in [*finals, index_name] if os.path.lexists(f)]
        if existing:
            raise InputError(
                f"{existing[0]}: already exists", hint="--force overwrites existing files"
            )
    result = MemoryExtract(scan.input, pid, pmem.comm, directory, index_name)
    with contextlib.ExitStack() as stack:
        temps: dict[int, tuple[Vma, IO[bytes]]] = {}
        paths: dict[int, str] = {}
        for vma in with_pages:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kcheckpoint-")
            stack.callback(_unlink_quietly, tmp)
            fh = stack.enter_context(os.fdopen(fd, "w+b"))
            fh.truncate(vma.end - vma.start)
            temps[vma.start] = (vma, fh)
            paths[vma.start] = tmp
        sink = _MappingWriter(pid, temps)
        walk_scan, _ = walk_memory(path, sink, pids={pid}, hash_input=False, progress=progress)
        result.problems = [*scan.problems, *model.problems]
        for vma in pmem.vmas:
            entry = temps.get(vma.start)
            digest = name = None
            if entry is not None:
                written = entry[1]
                written.flush()
                written.seek(0)
                digest = hashlib.file_digest(written, "sha256").hexdigest()  # type: ignore[arg-type]
                name = mapping_file_name(vma)
                os.replace(paths[vma.start], os.path.join(directory, name))
            result.mappings.append(
                MappingFile(
                    start=f"0x{vma.start:x}",
                    end=f"0x{vma.end:x}",
                    perms=vma.perms,
                    kind=vma.kind,
                    backing=vma.backing,
                    size=vma.end - vma.start,
                    present_bytes=sink.present.get(vma.start, 0),
                    file=name,
                    sha256=digest,
                )
            )
    del walk_scan
    return result


def _has_pages(pmem: ProcessMemory, vma: Vma) -> bool:
    return any(
        r.source == "present" and r.vaddr < vma.end and vma.start < r.vaddr + r.length
        for r in pmem.runs
    )


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
