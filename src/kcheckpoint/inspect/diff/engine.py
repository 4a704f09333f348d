"""Diff two checkpoint archives: read each once, then compare every section.

Reading plan (each archive is read once; page data is never held whole):
- identical files (same size, same bytes, so the same SHA-256) short-circuit;
- when both are seekable plain tars, each is indexed, then the pages both hold are read at
  their offsets, side by side, and compared;
- when only one side is a seekable plain tar (R), it is indexed first, and the other side (S) is
  streamed and compared chunk by chunk with R's pages, read at their offsets;
- when neither is seekable, both are read at once, A on a helper thread, and B's pages are
  compared with A's as they come (``lockstep``).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import BinaryIO

from kcheckpoint.errors import InputError
from kcheckpoint.inspect.criu.walk import PagesHook
from kcheckpoint.inspect.model import InputInfo, Problem, secrets_warning
from kcheckpoint.inspect.reader.engines import container_of, parse_metadata
from kcheckpoint.inspect.reader.scan import process_count, scan_archive, sizes_of
from kcheckpoint.inspect.reader.source import CHUNK, ProgressCallback, open_input

from . import compare
from .lockstep import BUFFER, lockstep
from .memdiff import compare_memory, intersect, normalise, present, subtract
from .model import (
    COUNTED_AS,
    CheckpointDiff,
    DiffSide,
    FsChange,
    SectionCount,
    problems_of,
)
from .pages import (
    Changes,
    CompareReaderSink,
    PageReader,
    StreamPages,
    compare_seekable,
    merged,
)
from .side import CONTENT_LIMIT, CONTENT_TOTAL, Side, pages_offsets, read_side

#: Lines of unified diff shown per file with --content.
CONTENT_LINES = 400


@dataclass(frozen=True, slots=True)
class DiffOptions:
    """What to compare and show."""

    show_secrets: bool = False
    ignore_time: bool = False
    content: bool = False
    #: Compute each input's SHA-256 (True for JSON provenance); None: only for stdin.
    hash_input: bool | None = None
    #: Both streamed: bytes of A's pages that may wait for B before they are digested.
    stream_buffer: int = BUFFER


ProgressFor = Callable[[str], ProgressCallback | None]


def identical_files(path_a: str, path_b: str) -> str | None:
    """The SHA-256 of two regular files with the same bytes, or None (stops at a difference)."""
    if "-" in (path_a, path_b):
        return None
    try:
        sa, sb = os.stat(path_a), os.stat(path_b)
    except OSError:
        return None  # the reader reports it
    if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)) or sa.st_size != sb.st_size:
        return None
    sha = hashlib.sha256()
    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
        if os.path.samestat(os.fstat(fa.fileno()), os.fstat(fb.fileno())):
            return hashlib.file_digest(fa, "sha256").hexdigest()
        while True:
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                return None
            if not ca:
                return sha.hexdigest()
            sha.update(ca)


def _seekable(path: str) -> bool:
    """A plain tar on disk, whose members can be read at their offsets."""
    if path == "-":
        return False
    with open_input(path, hash_input=False) as src:
        return src.seekable


def diff_archives(
    path_a: str,
    path_b: str,
    *,
    stdin: BinaryIO | None = None,
    options: DiffOptions = DiffOptions(),
    progress_for: ProgressFor | None = None,
) -> CheckpointDiff:
    """Compare archive A with archive B (either may be '-', not both)."""
    if path_a == "-" and path_b == "-":
        raise InputError("only one of the two archives can be read from stdin")
    digest = identical_files(path_a, path_b)
    if digest is not None:
        return _identical(path_a, path_b, digest, options)
    piped = "-" in (path_a, path_b)
    reader = _Reader(stdin, options, progress_for or (lambda _path: None), piped)
    seek_a, seek_b = _seekable(path_a), _seekable(path_b)
    if seek_a and seek_b:
        side_a, side_b, changes = reader.both_seekable(path_a, path_b)
    elif seek_a:
        side_a, side_b, changes = reader.one_seekable(path_a, path_b, "a")
    elif seek_b:
        side_b, side_a, changes = reader.one_seekable(path_b, path_a, "b")
    else:
        side_a, side_b, changes = reader.both_streamed(path_a, path_b)
    if side_a.scan.input.sha256 is not None and (
        side_a.scan.input.sha256 == side_b.scan.input.sha256
    ):
        return replace(compare_sides(side_a, side_b, {}, options), identical=True)
    return compare_sides(side_a, side_b, changes, options)


Changed = dict[int, list[tuple[int, int]]]


@dataclass
class _Reader:
    """The three reading plans; each reads every archive once."""

    stdin: BinaryIO | None
    options: DiffOptions
    progress: ProgressFor
    #: One side is stdin: hash both, to recognise a piped copy of the other side.
    piped: bool = False

    @property
    def hashing(self) -> bool:
        # identical files were caught byte for byte before: a digest is only worth its CPU for
        # the provenance (when asked for) or to recognise a piped copy of the other side
        hash_input = self.options.hash_input
        return hash_input if hash_input is not None else self.piped

    def side(
        self, label: str, path: str, pages: PagesHook | None = None, *, hash_input: bool = True
    ) -> Side:
        return read_side(
            label,
            path,
            stdin=self.stdin if path == "-" else None,
            hash_input=self.hashing and hash_input,
            progress=self.progress(path),
            keep_content=self.options.content,
            pages=pages,
        )

    def digest_later(self, pool: ThreadPoolExecutor, path: str) -> Future[str] | None:
        """A seekable file's SHA-256, computed on a helper thread while the pages are compared
        (hashlib releases the GIL), instead of in a read of its own after the scan."""
        return pool.submit(file_sha256, path) if self.hashing else None

    def both_seekable(self, path_a: str, path_b: str) -> tuple[Side, Side, Changed]:
        """Index both, then read the pages both hold side by side at their offsets."""
        with ThreadPoolExecutor(2, thread_name_prefix="kcheckpoint-sha256") as pool:
            digest_a, digest_b = self.digest_later(pool, path_a), self.digest_later(pool, path_b)
            side_a = self.side("a", path_a, hash_input=False)
            side_b = self.side("b", path_b, hash_input=False)
            reader_a = PageReader(path_a, side_a.memory, pages_offsets(side_a.scan))
            reader_b = PageReader(path_b, side_b.memory, pages_offsets(side_b.scan))
            try:
                changes = merged(compare_seekable(reader_a, reader_b))
            finally:
                reader_a.close()
                reader_b.close()
            return with_digest(side_a, digest_a), with_digest(side_b, digest_b), changes

    def one_seekable(
        self, ref_path: str, other_path: str, ref_label: str
    ) -> tuple[Side, Side, Changed]:
        """Index the seekable side; stream the other, comparing each chunk at R's offsets."""
        with ThreadPoolExecutor(1, thread_name_prefix="kcheckpoint-sha256") as pool:
            digest = self.digest_later(pool, ref_path)
            ref = self.side(ref_label, ref_path, hash_input=False)
            reader = PageReader(ref_path, ref.memory, pages_offsets(ref.scan))
            try:
                sink = CompareReaderSink(reader)
                other_label = "b" if ref_label == "a" else "a"
                other = self.side(other_label, other_path, StreamPages(sink))
            finally:
                reader.close()
            ref = with_digest(ref, digest)
        side_a, side_b = (ref, other) if ref_label == "a" else (other, ref)
        changes = with_unseen(merged(sink.changes), sink.seen, side_a, side_b)
        return ref, other, changes

    def both_streamed(self, path_a: str, path_b: str) -> tuple[Side, Side, Changed]:
        """Read both at once, A on a helper thread, comparing B's pages with A's as they come
        (A's pages digested only when they have to wait too long)."""
        side_a, side_b, changes, seen = lockstep(
            lambda pages: self.side("a", path_a, pages),
            lambda pages: self.side("b", path_b, pages),
            self.options.stream_buffer,
        )
        return side_a, side_b, with_unseen(merged(changes), seen, side_a, side_b)


def file_sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def with_digest(side: Side, digest: Future[str] | None) -> Side:
    """The side with its input's SHA-256 filled in from a digest computed meanwhile."""
    if digest is None:
        return side
    info = replace(side.scan.input, sha256=digest.result())
    side.scan.input = info
    side.inspection = replace(side.inspection, input=info)
    return side


def with_unseen(changes: Changed, seen: Changes, a: Side, b: Side) -> Changed:
    """Count as changed the pages both pagemaps hold whose bytes were never compared: a pages
    file that ends early (reported as a problem) cannot be said to hold the same bytes. Reading
    at offsets does the same for a short read."""
    out = dict(changes)
    for pid in a.memory.processes.keys() & b.memory.processes.keys():
        pa, pb = a.memory.processes[pid], b.memory.processes[pid]
        if not (pa.live and pb.live):
            continue
        common = intersect(present(pa), present(pb))
        unseen = subtract(common, normalise((s, e) for s, e in seen.get(pid, [])))
        if unseen:
            out[pid] = normalise([*out.get(pid, []), *unseen])
    return out


def _diff_side(side: Side) -> DiffSide:
    i = side.inspection
    return DiffSide(i.input, i.container, i.sizes, len(i.processes), i.warnings, _dumped(side))


def compare_sides(
    a: Side, b: Side, changes: dict[int, list[tuple[int, int]]], options: DiffOptions
) -> CheckpointDiff:
    """Every section of the diff, from two decoded sides and the changed page ranges."""
    ia, ib = a.inspection, b.inspection
    same, note = compare.same_container(ia.container, ib.container)
    pairs = compare.match_processes(ia.processes, ib.processes)
    filesystem = compare.compare_fs(a.fs, b.fs)
    if options.content:
        filesystem = [with_content(c, a.contents, b.contents) for c in filesystem]
    diff = CheckpointDiff(
        a=_diff_side(a),
        b=_diff_side(b),
        identical=False,
        same_container=same,
        note=note,
        ignore_time=options.ignore_time,
        counts={},
        metadata=compare.compare_metadata(
            ia,
            ib,
            a.env,
            b.env,
            show_secrets=options.show_secrets,
            ignore_time=options.ignore_time,
            dumped=(_dumped(a), _dumped(b)),
        ),
        processes=compare.compare_processes(pairs, show_secrets=options.show_secrets),
        files=compare.compare_files(pairs),
        sockets=compare.compare_sockets(pairs, ia.sockets, ib.sockets),
        memory=compare_memory(pairs, a.memory.processes, b.memory.processes, changes),
        filesystem=filesystem,
        members=compare.compare_members(
            a.scan.members, b.scan.members, a.scan.digests, b.scan.digests
        ),
        problems=problems_of("a", _problems(a)) + problems_of("b", _problems(b)),
    )
    return with_counts(diff)


def _dumped(side: Side) -> str | None:
    return side.scan.dumped


def _problems(side: Side) -> list[Problem]:
    """The decoder's problems, plus what the memory model adds (a pages file shorter than its
    pagemap says...); stale images are already among the decoder's."""
    out = list(side.inspection.problems)
    seen = {(p.source, p.kind, p.message) for p in out}
    for p in side.memory.problems:
        if p.kind.startswith("stale-") or (p.source, p.kind, p.message) in seen:
            continue
        seen.add((p.source, p.kind, p.message))
        out.append(p)
    return out


def with_counts(diff: CheckpointDiff) -> CheckpointDiff:
    """The diff with its per-section counts and total filled in."""
    counts: dict[str, SectionCount] = {}

    def count(statuses: list[str]) -> SectionCount:
        return SectionCount(**Counter(COUNTED_AS[s] for s in statuses if s in COUNTED_AS))

    counts["metadata"] = count([c.status for c in diff.metadata])
    counts["processes"] = count([c.status for c in diff.processes])
    counts["files"] = count([c.status for c in diff.files])
    counts["sockets"] = count([c.status for c in diff.sockets])
    memory: list[str] = []
    for p in diff.memory:
        statuses = [m.status for m in p.mappings]
        memory += statuses or [p.status]
    counts["memory"] = count(memory)
    counts["filesystem"] = count([c.status for c in diff.filesystem])
    counts["members"] = count([c.status for c in diff.members])
    total = sum(c.added + c.removed + c.changed + c.replaced for c in counts.values())
    return replace(diff, counts=counts, differences=total)


def _is_text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def with_content(change: FsChange, a: dict[str, bytes], b: dict[str, bytes]) -> FsChange:
    """Add a unified diff of a text file's two versions (absent or deleted reads as empty)."""
    files = [s for s in (change.a, change.b) if s is not None and s.type == "file"]
    if not files:
        return change
    if any((s.size or 0) > CONTENT_LIMIT for s in files):
        return replace(change, content_note=f"larger than {CONTENT_LIMIT} bytes: not shown")
    texts = []
    for state, contents in ((change.a, a), (change.b, b)):
        if state is None or state.type != "file":
            texts.append("")
            continue
        data = contents.get(change.path)
        text = _is_text(data) if data is not None else None
        if text is None:
            note = (
                "binary file: not shown"
                if data is not None
                else f"not kept (over {CONTENT_TOTAL >> 20} MiB of file contents in all)"
            )
            return replace(change, content_note=note)
        texts.append(text)
    lines = list(
        difflib.unified_diff(
            texts[0].splitlines(),
            texts[1].splitlines(),
            fromfile="a" + change.path if change.a and change.a.type == "file" else "/dev/null",
            tofile="b" + change.path if change.b and change.b.type == "file" else "/dev/null",
            lineterm="",
        )
    )
    if len(lines) > CONTENT_LINES:
        note = f"{len(lines) - CONTENT_LINES} more line(s) not shown"
        return replace(change, content_diff=lines[:CONTENT_LINES], content_note=note)
    return replace(change, content_diff=lines)


def _identical(path_a: str, path_b: str, digest: str, options: DiffOptions) -> CheckpointDiff:
    """Same bytes: read A's headers and metadata only, for the warning and the top lines."""
    scan = scan_archive(path_a, hash_input=False)
    meta = parse_metadata(scan.blobs)
    container = container_of(meta, scan.names, dumped=scan.dumped)
    sizes = sizes_of(scan)
    processes = process_count(scan)
    info_a = replace(scan.input, sha256=digest)
    info_b = InputInfo(
        path_b, scan.input.size, scan.input.compression, scan.input.read_mode, digest
    )
    warnings = secrets_warning(processes, sizes.memory_pages)
    return with_counts(
        CheckpointDiff(
            a=DiffSide(info_a, container, sizes, processes, warnings, scan.dumped),
            b=DiffSide(info_b, container, sizes, processes, warnings, scan.dumped),
            identical=True,
            same_container=True,
            note=None,
            ignore_time=options.ignore_time,
            counts={},
            metadata=[],
            processes=[],
            files=[],
            sockets=[],
            memory=[],
            filesystem=[],
            members=[],
            problems=problems_of("a", scan.problems) + problems_of("b", scan.problems),
        )
    )
