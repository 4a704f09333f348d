"""Two streamed archives read at the same time, their pages compared byte for byte.

When neither archive can be read at an offset (both compressed or piped), digesting every page of
both costs more than decompressing them. Instead A is scanned on a helper thread that hands its
page chunks over a bounded queue, and B's scan, on this thread, compares each of its chunks with
A's bytes at the same addresses of the same pid. Both archives list the same processes in the
same order when they come from one container, so A's chunks arrive about when B needs them.

When they do not (another member order, pages only one side has), A's chunks wait in a buffer of
at most ``BUFFER`` bytes; the oldest are then digested (a 16-byte SHA-256 prefix per page) and
B's pages compared with those digests. Memory stays bounded either way.
"""

from __future__ import annotations

import bisect
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .pages import (
    DIGEST_BYTES,
    Changes,
    StreamPages,
    _Sink,
    add_range,
    differing_pages,
    page_digests,
)
from .side import Side

#: A's chunks waiting for B, at most; older ones are digested.
BUFFER = 64 << 20
_END: tuple[object, ...] = ("end",)


class _Stopped(Exception):
    """B's side failed: A's scan stops too."""


class ProducerSink(_Sink):
    """A's side: each chunk goes to the queue (a copy: the walk reuses its buffer)."""

    def __init__(self, out: queue.Queue[tuple[object, ...]], stop: threading.Event) -> None:
        super().__init__()
        self.out = out
        self.stop = stop

    def put(self, item: tuple[object, ...]) -> None:
        while True:
            try:
                self.out.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.stop.is_set():
                    raise _Stopped from None

    def _chunk(self, pid: int, vaddr: int, data: bytes, psize: int) -> None:
        self.put(("chunk", pid, vaddr, bytes(data), psize))


@dataclass
class _Digests:
    """Digests of A's pages that waited too long, per pid, by address."""

    starts: list[int] = field(default_factory=list)
    runs: list[tuple[int, bytearray]] = field(default_factory=list)

    def add(self, vaddr: int, digests: bytes, psize: int) -> None:
        if self.runs and self.runs[-1][0] + len(self.runs[-1][1]) // DIGEST_BYTES * psize == vaddr:
            self.runs[-1][1].extend(digests)
            return
        i = bisect.bisect_left(self.starts, vaddr)
        self.starts.insert(i, vaddr)
        self.runs.insert(i, (vaddr, bytearray(digests)))

    def get(self, addr: int, psize: int) -> bytes | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i < 0:
            return None
        start, digests = self.runs[i]
        k = (addr - start) // psize
        if k * DIGEST_BYTES >= len(digests):
            return None
        return bytes(digests[k * DIGEST_BYTES : (k + 1) * DIGEST_BYTES])


class ConsumerSink(_Sink):
    """B's side: each chunk against A's bytes (or A's digests) at the same addresses."""

    def __init__(self, source: queue.Queue[tuple[object, ...]], buffer: int = BUFFER) -> None:
        super().__init__()
        self.source = source
        self.limit = buffer
        # A's chunks not yet compared: [pid, vaddr, data, psize, alive], oldest first overall
        # (for eviction) and per pid (by address, for lookup)
        self.order: deque[list[object]] = deque()
        self.by_pid: dict[int, deque[list[object]]] = {}
        self.waiting_bytes = 0
        self.digests: dict[int, _Digests] = {}
        #: pid -> how far A's pages have come (None once A's pages member for it is done).
        self.frontier: dict[int, int | None] = {}
        self.ended = False

    def _pull(self) -> None:
        item = self.source.get()
        if item[0] == "end":
            self.ended = True
            return
        if item[0] == "done":
            for pid in item[1]:  # type: ignore[attr-defined]
                self.frontier[pid] = None
            return
        _, pid, vaddr, data, psize = item
        assert isinstance(pid, int) and isinstance(vaddr, int) and isinstance(data, bytes)
        entry: list[object] = [pid, vaddr, data, psize, True]
        self.order.append(entry)
        self.by_pid.setdefault(pid, deque()).append(entry)
        self.waiting_bytes += len(data)
        front = self.frontier.get(pid, 0)
        if front is not None:
            self.frontier[pid] = max(front, vaddr + len(data))
        while self.waiting_bytes > self.limit and self.order:
            old = self.order.popleft()
            if old[4]:
                self._digest(old)

    def _digest(self, entry: list[object]) -> None:
        pid, vaddr, data, psize, _ = entry
        assert isinstance(pid, int) and isinstance(vaddr, int) and isinstance(data, bytes)
        assert isinstance(psize, int)
        self.digests.setdefault(pid, _Digests()).add(vaddr, page_digests(data, psize), psize)
        self._retire(entry)

    def _retire(self, entry: list[object]) -> None:
        data = entry[2]
        assert isinstance(data, bytes)
        self.waiting_bytes -= len(data)
        entry[2] = b""
        entry[4] = False

    def _has_come(self, pid: int, end: int) -> bool:
        if self.ended or pid not in self.frontier:
            return self.ended
        front = self.frontier[pid]
        return front is None or front >= end

    def _chunk(self, pid: int, vaddr: int, data: bytes, psize: int) -> None:
        end = vaddr + len(data)
        while not self._has_come(pid, end):
            self._pull()
        ranges = self.changes.setdefault(pid, [])
        seen = self.seen.setdefault(pid, [])
        covered: list[tuple[int, int]] = []
        mine = self.by_pid.get(pid, deque())
        for entry in mine:
            _, a_vaddr, a_data, _, alive = entry
            assert isinstance(a_vaddr, int) and isinstance(a_data, bytes)
            if not alive:
                continue
            if a_vaddr >= end:
                break
            a_end = a_vaddr + len(a_data)
            if a_end <= vaddr:
                continue
            lo, hi = max(vaddr, a_vaddr), min(end, a_end)
            theirs = memoryview(a_data)[lo - a_vaddr : hi - a_vaddr]
            for k in differing_pages(data, lo - vaddr, theirs, psize):
                add_range(ranges, lo + k, lo + min(k + psize, hi - lo))
            add_range(seen, lo, hi)
            covered.append((lo, hi))
        # B has gone past these (or never had them): A's bytes are not needed any more
        while mine and (not mine[0][4] or mine[0][1] + len(mine[0][2]) <= end):  # type: ignore[operator, arg-type]
            entry = mine.popleft()
            if entry[4]:
                self._retire(entry)
        while self.order and not self.order[0][4]:
            self.order.popleft()
        stored = self.digests.get(pid)
        if stored is not None:
            self._against_digests(pid, vaddr, data, psize, stored, covered)

    def _against_digests(
        self,
        pid: int,
        vaddr: int,
        data: bytes,
        psize: int,
        stored: _Digests,
        covered: list[tuple[int, int]],
    ) -> None:
        ranges, seen = self.changes[pid], self.seen[pid]
        for offset in range(0, len(data), psize):
            addr = vaddr + offset
            if any(lo <= addr < hi for lo, hi in covered):
                continue
            theirs = stored.get(addr, psize)
            if theirs is None:
                continue
            page = data[offset : offset + psize]
            add_range(seen, addr, addr + len(page))
            if page_digests(page, psize) != theirs:
                add_range(ranges, addr, addr + len(page))

    def drain(self) -> None:
        """Take what A still sends, so that its scan can finish."""
        while not self.ended:
            self._pull()


class _DoneTelling(StreamPages):
    """A's pages hook: after each pages member, says which pids' pages are all sent."""

    def __init__(self, sink: ProducerSink) -> None:
        super().__init__(sink)
        self.producer = sink

    def on_member(self, entry: object) -> None:
        super().on_member(entry)  # type: ignore[arg-type]
        from kcheckpoint.inspect.criu.memory import PAGES_RE

        name = entry.member.name  # type: ignore[attr-defined]
        if m := PAGES_RE.match(name):
            owners = self.walk.pagemaps.get(int(m.group(1)))
            if owners:  # sent now; a pages file that came before its pagemap is sent at the end
                self.producer.put(("done", tuple(owners)))


def lockstep(
    read_a: Callable[[StreamPages], Side],
    read_b: Callable[[StreamPages], Side],
    buffer: int = BUFFER,
) -> tuple[Side, Side, Changes, Changes]:
    """Read A (on a helper thread) and B at the same time; the changed and compared ranges."""
    channel: queue.Queue[tuple[object, ...]] = queue.Queue(maxsize=16)
    stop = threading.Event()
    producer = ProducerSink(channel, stop)
    consumer = ConsumerSink(channel, buffer)

    def run_a() -> Side:
        try:
            return read_a(_DoneTelling(producer))
        finally:
            if not stop.is_set():
                producer.put(_END)

    with ThreadPoolExecutor(1, thread_name_prefix="kcheckpoint-diff-a") as pool:
        future = pool.submit(run_a)
        try:
            side_b = read_b(StreamPages(consumer))
            consumer.drain()
        except BaseException:
            stop.set()
            raise
        side_a = future.result()
    return side_a, side_b, consumer.changes, consumer.seen
