"""Search byte streams for a literal or a regular expression, chunk by chunk.

A stream is fed in chunks of any size. Each chunk is scanned together with the tail of the
previous one, so a match that crosses a chunk boundary is found once, exactly where a scan of
the whole stream would find it. Memory stays bounded: only the overlap is carried over.

Literals are searched with ``bytes.find`` (a fast two-way search in C). ``--utf16`` also looks
for the UTF-16LE form: a literal is encoded, a regex runs on every other byte of the data and is
kept only where the bytes in between are NUL.
"""

from __future__ import annotations

import contextlib
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: The longest regex match guaranteed to be found across a chunk boundary.
DEFAULT_MAX_MATCH = 4096


@dataclass(frozen=True, slots=True)
class Needle:
    """A compiled search pattern."""

    #: The pattern as the user gave it.
    text: str
    kind: str  # "literal" or "regex"
    #: (encoding, literal bytes) pairs for a literal search.
    literals: tuple[tuple[str, bytes], ...]
    regex: re.Pattern[bytes] | None
    utf16: bool
    #: Bytes a match may span; the scan keeps this much of each chunk for the next one.
    max_match: int


def compile_needle(
    text: str,
    *,
    regex: bool = False,
    utf16: bool = False,
    ignore_case: bool = False,
    max_match: int = DEFAULT_MAX_MATCH,
) -> Needle:
    """Compile a search pattern; raise ValueError with a readable message when it is invalid."""
    if not text:
        raise ValueError("the pattern is empty")
    raw = text.encode("utf-8", "surrogateescape")
    if regex or ignore_case:
        source = raw if regex else re.escape(raw)
        try:
            compiled = re.compile(source, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        if compiled.match(b""):
            raise ValueError("the regular expression matches the empty string")
        return Needle(text, "regex", (), compiled, utf16, max_match)
    literals: list[tuple[str, bytes]] = [("ascii", raw)]
    if utf16:
        wide = text.encode("utf-16-le", "surrogatepass")
        if wide != raw:
            literals.append(("utf-16le", wide))
    longest = max(len(lit) for _, lit in literals)
    return Needle(text, "literal", tuple(literals), None, utf16, longest)


@dataclass(frozen=True, slots=True)
class Match:
    """One match, at absolute offsets in the stream, with optional context bytes."""

    start: int
    end: int
    encoding: str
    before: bytes = b""
    data: bytes = b""
    after: bytes = b""


def _find_literal(buf: bytes, lit: bytes, lo: int, hi: int, enc: str) -> Iterator[Match]:
    """Non-overlapping occurrences of ``lit`` starting in [lo, hi) (offsets in ``buf``)."""
    find = buf.find
    step = len(lit)
    pos = find(lit, lo)
    while 0 <= pos < hi:
        yield Match(pos, pos + step, enc)
        pos = find(lit, pos + step)


def _find_regex(buf: bytes, rx: re.Pattern[bytes], lo: int, hi: int) -> Iterator[Match]:
    for m in rx.finditer(buf, lo):
        if m.start() >= hi:
            break
        if m.end() > m.start():
            yield Match(m.start(), m.end(), "ascii")


def _find_regex_utf16(buf: bytes, rx: re.Pattern[bytes], lo: int, hi: int) -> Iterator[Match]:
    """UTF-16LE text: the regex runs on the low bytes; the high bytes must all be NUL."""
    found: list[Match] = []
    for align in (0, 1):
        low = buf[align::2]
        high = buf[align + 1 :: 2]
        for m in rx.finditer(low, max(0, (lo - align + 1) // 2)):
            s, e = m.start(), m.end()
            start = align + 2 * s
            if start >= hi:
                break
            if e > s and e <= len(high) and high[s:e].count(0) == e - s:
                found.append(Match(start, align + 2 * e, "utf-16le"))
    found.sort(key=lambda x: x.start)
    return iter(found)


def find_in(needle: Needle, buf: bytes, lo: int = 0, hi: int | None = None) -> list[Match]:
    """Every match of ``needle`` that starts in ``buf[lo:hi]`` (it may end after ``hi``)."""
    stop = len(buf) if hi is None else hi
    hits: list[Match] = []
    if needle.regex is not None:
        hits.extend(_find_regex(buf, needle.regex, lo, stop))
        if needle.utf16:
            hits.extend(_find_regex_utf16(buf, needle.regex, lo, stop))
    else:
        for enc, lit in needle.literals:
            hits.extend(_find_literal(buf, lit, lo, stop, enc))
    if len(needle.literals) > 1 or needle.utf16:
        hits.sort(key=lambda x: (x.start, x.encoding))
    return hits


class StreamSearch:
    """Feed one contiguous stream in chunks; get each match once, with absolute offsets.

    ``base`` is the offset of the first byte fed (a virtual address, or an offset in a file).
    With ``context`` > 0, each match carries up to that many bytes on each side, plus the
    matched bytes themselves.
    """

    def __init__(self, needle: Needle, base: int = 0, context: int = 0) -> None:
        self._needle = needle
        self._context = context
        self._ahead = max(needle.max_match - 1, 0) + context
        self._carry = b""
        self._carry_at = base  # absolute offset of _carry[0]
        self._next = base  # no match starting before this is reported again
        self._last_end = base  # matches do not overlap

    def feed(self, data: bytes) -> list[Match]:
        """Scan a chunk; return the matches that are now certain.

        The chunk is only read during the call, so a caller may reuse its buffer.
        """
        if not data:
            return []
        ahead = self._ahead
        if self._context or len(data) <= 2 * ahead:
            return self._feed_joined(data)
        # Scan the junction (the carried tail and the head of this chunk) for matches that
        # start in the tail, then the chunk itself: no copy of the chunk is made.
        out: list[Match] = []
        if self._carry:
            junction = self._carry + data[:ahead]
            out = self._scan(junction, len(self._carry))
            self._carry_at += len(self._carry)
        hi = len(data) - ahead
        out.extend(self._scan(data, hi))
        self._carry = bytes(data[hi:])
        self._carry_at += hi
        return out

    def _feed_joined(self, data: bytes) -> list[Match]:
        buf = self._carry + data if self._carry else bytes(data)
        hi = len(buf) - self._ahead
        if hi <= self._next - self._carry_at:
            self._carry = bytes(buf)
            return []
        hits = self._scan(buf, hi)
        keep_from = max(0, hi - self._context)
        self._carry = buf[keep_from:]
        self._carry_at += keep_from
        return hits

    def finish(self) -> list[Match]:
        """The matches in the last bytes fed."""
        buf = self._carry
        hits = self._scan(buf, len(buf)) if buf else []
        self._carry = b""
        self._carry_at += len(buf)
        return hits

    def _scan(self, buf: bytes, hi: int) -> list[Match]:
        base = self._carry_at
        lo = max(0, max(self._next, self._last_end) - base)
        ctx = self._context
        out: list[Match] = []
        for m in find_in(self._needle, buf, lo, hi):
            if m.start + base < self._last_end:
                continue  # overlaps a match already reported (another encoding)
            if ctx:
                before = buf[max(0, m.start - ctx) : m.start]
                data = buf[m.start : m.end]
                after = buf[m.end : m.end + ctx]
                out.append(Match(m.start + base, m.end + base, m.encoding, before, data, after))
            else:
                out.append(Match(m.start + base, m.end + base, m.encoding))
            self._last_end = m.end + base
        self._next = base + hi
        return out


def search_stream(
    needle: Needle, chunks: Iterable[bytes], base: int = 0, context: int = 0
) -> Iterator[Match]:
    """Every match in a stream given as chunks."""
    search = StreamSearch(needle, base, context)
    for chunk in chunks:
        yield from search.feed(chunk)
    yield from search.finish()


_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord("\\")}


def escape_bytes(data: bytes) -> str:
    """Bytes as text: printable ASCII kept, backslash and everything else escaped (``\\xNN``)."""
    parts: list[str] = []
    for b in data:
        if b in _PRINTABLE:
            parts.append(chr(b))
        elif b == 0x5C:
            parts.append("\\\\")
        elif b == 0x0A:
            parts.append("\\n")
        elif b == 0x09:
            parts.append("\\t")
        elif b == 0x0D:
            parts.append("\\r")
        else:
            parts.append(f"\\x{b:02x}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Searching a whole archive


@dataclass(frozen=True, slots=True)
class MappingRef:
    """The mapping a hit falls in, as /proc/pid/maps would show it."""

    start: str
    end: str
    perms: str
    kind: str
    backing: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One match in an archive: where in memory (or in which file), and where in the archive."""

    #: The process whose memory holds it; None for files and stale pages.
    pid: int | None
    comm: str | None
    #: Virtual address (hex), None outside process memory.
    address: str | None
    mapping: MappingRef | None
    #: The archive member, and the byte offset of the match in it.
    member: str
    offset: int
    #: The file inside a nested tar, or the spec.dump field.
    path: str | None
    length: int
    encoding: str
    #: "memory", "stale-memory" (a pages file no live process points to) or "file".
    source: str
    #: The match with --context bytes on each side, non-printables escaped; None without it.
    context: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Every hit of a pattern in one archive."""

    input: Any
    pattern: str
    kind: str
    utf16: bool
    hits: list[Hit]
    #: Every match counted; more than ``len(hits)`` when ``max_hits`` cut the list short.
    total_hits: int
    truncated: bool
    #: Bytes searched: process memory, and other files with --everywhere.
    memory_bytes: int
    other_bytes: int
    problems: list[Any]
    warnings: list[Any]


class CountingSink:
    """The part every scanning sink shares: how many bytes of memory, and of other files
    (``--everywhere``), it was given."""

    def __init__(self) -> None:
        self.memory_bytes = 0
        self.other_bytes = 0

    def count(self, info: Any) -> None:
        """Count a ``criu.walk.SegmentInfo``."""
        if info.in_memory:
            self.memory_bytes += info.length
        else:
            self.other_bytes += info.length


class _SearchSink(CountingSink):
    """Keeps the first ``max_hits`` matches and counts them all. With ``on_hit``, each kept
    match is also handed on at once, named from the images read so far."""

    def __init__(
        self,
        needle: Needle,
        context: int,
        max_hits: int | None,
        on_hit: Callable[[Hit], None] | None = None,
    ) -> None:
        super().__init__()
        self.needle = needle
        self.context = context
        self.max_hits = max_hits
        self.raw: list[tuple[Any, Match]] = []
        self.total = 0
        self.on_hit = on_hit
        #: (index in ``raw`` of the first hit named with it, model): the models hits were
        #: named with when they were handed on, kept instead of the hits themselves.
        self._named_with: list[tuple[int, Any]] = []
        self._images: Mapping[str, bytes] = {}
        self._model: Any = None
        self._model_of = -1  # how many images the model was built from

    def see_images(self, images: Mapping[str, bytes]) -> None:
        """The walk's images, filled as the pass goes on."""
        self._images = images

    def keep(self, info: Any, m: Match) -> None:
        self.total += 1
        if self.max_hits is not None and len(self.raw) >= self.max_hits:
            return
        self.raw.append((info, m))
        if self.on_hit is not None:
            model = self._model_so_far()
            if not self._named_with or self._named_with[-1][1] is not model:
                self._named_with.append((len(self.raw) - 1, model))
            self.on_hit(_hit(info, m, model, self.context))

    def renamed(self, hits: list[Hit], final: Any) -> int:
        """How many hits handed on were named otherwise than the final model names them
        (``hits``): only a hit whose process differs between the two models can differ."""
        if not self._named_with:
            return 0  # nothing was handed on
        count = 0
        ends = [start for start, _ in self._named_with[1:]] + [len(self.raw)]
        for (start, model), end in zip(self._named_with, ends, strict=True):
            same: dict[int | None, bool] = {}
            for i in range(start, end):
                info, m = self.raw[i]
                if info.pid not in same:
                    same[info.pid] = model.processes.get(info.pid) == final.processes.get(info.pid)
                if not same[info.pid] and _hit(info, m, model, self.context) != hits[i]:
                    count += 1
        return count

    def _model_so_far(self) -> Any:
        if self._model_of != len(self._images):
            from kcheckpoint.inspect.criu.memory import build_model

            self._model = build_model(self._images, {}, provisional=True)
            self._model_of = len(self._images)
        return self._model

    def segment(self, info: Any, chunks: Iterable[bytes]) -> None:
        base = info.base
        self.count(info)
        for m in search_stream(self.needle, chunks, base, self.context):
            self.keep(info, m)

    #: A map is searched in windows this large; each is released after its search, so peak
    #: memory does not grow with the size of a pages file.
    WINDOW = 32 << 20

    def segment_buffer(self, info: Any, buf: mmap.mmap, lo: int, hi: int) -> None:
        """The same matches as ``segment`` for ``buf[lo:hi]``; literals without copying."""
        if self.needle.regex is not None:  # no bounded match length: the chunked stream scan
            self.segment(info, _chunks_of(buf, lo, hi))
            return
        self.memory_bytes += hi - lo
        ctx = self.context
        for start, end, encoding in self._matches_in(buf, lo, hi):
            if self.max_hits is not None and len(self.raw) >= self.max_hits:
                self.total += 1  # counted, not kept: no match object to build
                continue
            m = Match(
                start - lo + info.vaddr,
                end - lo + info.vaddr,
                encoding,
                buf[max(lo, start - ctx) : start] if ctx else b"",
                buf[start:end] if ctx else b"",
                buf[end : min(hi, end + ctx)] if ctx else b"",
            )
            self.keep(info, m)

    def _matches_in(self, buf: mmap.mmap, lo: int, hi: int) -> list[tuple[int, int, str]]:
        needle = self.needle
        found: list[tuple[int, int, str]] = []
        for wlo in range(lo, hi, self.WINDOW):
            whi = min(hi, wlo + self.WINDOW)
            for encoding, lit in needle.literals:
                step = len(lit)
                stop = min(hi, whi + step - 1)
                pos = buf.find(lit, wlo, stop)
                while 0 <= pos < whi:
                    found.append((pos, pos + step, encoding))
                    pos = buf.find(lit, pos + step, stop)
            _release(buf, wlo, whi)
        found.sort(key=lambda f: (f[0], f[2]))
        kept: list[tuple[int, int, str]] = []
        for f in found:  # non-overlapping, as a stream scan reports them
            if not kept or f[0] >= kept[-1][1]:
                kept.append(f)
        return kept


def _chunks_of(buf: mmap.mmap, lo: int, hi: int, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(lo, hi, size):
        end = min(hi, start + size)
        yield buf[start:end]
        _release(buf, start, end)


def _release(buf: mmap.mmap, lo: int, hi: int) -> None:
    """Drop mapped pages of [lo, hi) from this process's memory (they stay in the page cache)."""
    start = lo - lo % mmap.PAGESIZE
    with contextlib.suppress(OSError, ValueError):
        buf.madvise(mmap.MADV_DONTNEED, start, hi - start)


def _unowned(
    info: Any, m: Match, offset: int, path: str | None, source: str, text: str | None
) -> Hit:
    """A hit in a file, or in pages no live process points to: no process, no address."""
    return Hit(
        None, None, None, None, info.member, offset, path, m.end - m.start, m.encoding, source, text
    )


def _hit(info: Any, m: Match, model: Any, context: int) -> Hit:
    from kcheckpoint.inspect.criu.memory import MemoryModel

    assert isinstance(model, MemoryModel)
    text = None
    if context:
        text = escape_bytes(m.before) + "[" + escape_bytes(m.data) + "]" + escape_bytes(m.after)
    if info.vaddr is None:
        source = (
            "file"
            if info.path is not None or not info.member.startswith("checkpoint/pages-")
            else "stale-memory"
        )
        return _unowned(info, m, m.start, info.path, source, text)
    pmem = model.processes.get(info.pid)
    offset = info.offset + (m.start - info.vaddr)
    if pmem is None or not pmem.live:
        return _unowned(info, m, offset, None, "stale-memory", text)
    vma = pmem.vma_at(m.start)
    ref = (
        None
        if vma is None
        else MappingRef(f"0x{vma.start:x}", f"0x{vma.end:x}", vma.perms, vma.kind, vma.backing)
    )
    return Hit(
        pmem.pid,
        pmem.comm,
        f"0x{m.start:x}",
        ref,
        info.member,
        offset,
        None,
        m.end - m.start,
        m.encoding,
        "memory",
        text,
    )


def search_archive(
    path: str,
    needle: Needle,
    *,
    stdin: Any = None,
    pids: set[int] | None = None,
    everywhere: bool = False,
    context: int = 0,
    hash_input: bool | None = None,
    progress: Any = None,
    max_hits: int | None = None,
    on_hit: Callable[[Hit], None] | None = None,
) -> SearchResult:
    """Search every process's memory (or ``pids``'), and other files with ``everywhere``.

    Only the first ``max_hits`` hits are kept (all are counted), so that memory stays bounded
    for patterns that match everywhere.

    ``on_hit`` receives each kept hit as soon as it is found, so output can stream. Its process
    is named from the images read by then: pstree.img comes after the pages in an archive, so
    the tasks are those with a core image until it arrives. The result has the final names; a
    problem says when a hit handed on was named otherwise.
    """
    from kcheckpoint.inspect.criu.walk import walk_memory
    from kcheckpoint.inspect.model import Problem

    sink = _SearchSink(needle, context, max_hits, on_hit)
    scan, model = walk_memory(
        path,
        sink,
        stdin=stdin,
        pids=pids,
        everywhere=everywhere,
        hash_input=hash_input,
        progress=progress,
    )
    hits = [_hit(info, m, model, context) for info, m in sink.raw]
    renamed = sink.renamed(hits, model)
    if renamed:
        model.problems.append(
            Problem(
                "checkpoint/pstree.img",
                "renamed-hits",
                f"{renamed} hit(s) were shown before pstree.img was read, named after the core "
                "images; pstree.img names their process differently (--format json has the "
                "final names)",
            )
        )
    return SearchResult(
        scan.input,
        needle.text,
        needle.kind,
        needle.utf16,
        hits,
        sink.total,
        sink.total > len(hits),
        sink.memory_bytes,
        sink.other_bytes,
        [*scan.problems, *model.problems],
        model.warnings(),
    )
