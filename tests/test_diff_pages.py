"""Changed pages: every reading plan (offsets on both sides, offsets against a stream, digests
of two streams) finds exactly the pages a brute-force comparison finds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.criu.memory import MemoryReader, PageRun, ProcessMemory
from kcheckpoint.inspect.diff import diff_archives
from kcheckpoint.inspect.diff.pages import _pieces, differing_pages
from kcheckpoint.inspect.reader.scan import scan_archive

PAGE = 4096
BENCH = Path(__file__).resolve().parent.parent / "bench"


def _synth():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kc_bench_synth", BENCH / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 3 MiB synthetic checkpoints, one with 2 % of its pages changed; plain and gzip."""
    synth = _synth()
    out = tmp_path_factory.mktemp("synth")
    paths = {}
    for name, mutate in (("a", 0.0), ("b", 0.02)):
        for compress, suffix in (("none", ".tar"), ("gzip", ".tar.gz")):
            path = out / f"{name}{suffix}"
            synth.write_archive(path, 3 << 20, compress=compress, seed=5, mutate=mutate)
            paths[name + suffix] = path
    return paths


def _brute_force(a: Path, b: Path) -> dict[int, set[int]]:
    ra = MemoryReader.from_scan(a, scan_archive(a, read_images=True))
    rb = MemoryReader.from_scan(b, scan_archive(b, read_images=True))
    out: dict[int, set[int]] = {}
    for pid, pa in ra.model.processes.items():
        pb = rb.model.processes[pid]
        common = _pages(pa) & _pages(pb)
        out[pid] = {v for v in common if ra.read(pid, v, v + PAGE) != rb.read(pid, v, v + PAGE)}
    return out


def _pages(p: ProcessMemory) -> set[int]:
    return {r.vaddr + i for r in p.runs if r.source == "present" for i in range(0, r.length, PAGE)}


def _reported(a: str, b: str) -> dict[int, set[int]]:
    d = diff_archives(a, b)
    assert d.filesystem == [] and d.processes == []
    out: dict[int, set[int]] = {}
    for mem in d.memory:
        assert mem.pid_a is not None and mem.compared
        pages = out.setdefault(mem.pid_a, set())
        for m in mem.mappings:
            assert m.changed_ranges_total <= len(m.changed_ranges) or len(m.changed_ranges) == 64
            for r in m.changed_ranges:
                pages |= set(range(r.start, r.end, PAGE))
        assert mem.changed_pages == sum(m.changed_pages for m in mem.mappings)
    return out


def test_every_reading_plan_finds_the_changed_pages(archives: dict[str, Path]) -> None:
    expected = _brute_force(archives["a.tar"], archives["b.tar"])
    total = sum(len(v) for v in expected.values())
    assert total > 0
    plans = [
        (archives["a.tar"], archives["b.tar"]),  # offsets, both sides
        (archives["a.tar"], archives["b.tar.gz"]),  # offsets against a stream
        (archives["a.tar.gz"], archives["b.tar"]),
        (archives["a.tar.gz"], archives["b.tar.gz"]),  # digests, two passes
    ]
    for a, b in plans:
        d = diff_archives(str(a), str(b))
        assert sum(m.changed_pages for m in d.memory) == total, (a.name, b.name)
        found = {m.pid_a: 0 for m in d.memory}
        for m in d.memory:
            found[m.pid_a] = m.changed_pages
        assert found == {pid: len(v) for pid, v in expected.items() if v}
    # the listed ranges are the changed pages themselves (few enough here to be listed whole)
    reported = _reported(str(archives["a.tar.gz"]), str(archives["b.tar.gz"]))
    assert reported == {pid: v for pid, v in expected.items() if v}


def test_same_archive_plain_and_compressed_has_no_page_change(archives: dict[str, Path]) -> None:
    d = diff_archives(str(archives["b.tar"]), str(archives["b.tar.gz"]))
    assert d.memory == [] and d.differences == 0


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40),
    st.lists(st.tuples(st.integers(0, 39), st.integers(0, PAGE - 1)), max_size=12),
    st.sampled_from([PAGE, 512]),
)
def test_differing_pages_is_exact(pages: int, flips: list[tuple[int, int]], psize: int) -> None:
    size = pages * psize
    mine = bytearray(bytes(range(256)) * (size // 256 + 1))[:size]
    theirs = bytearray(mine)
    for page, offset in flips:
        if page < pages:
            theirs[page * psize + offset % psize] ^= 0xFF
    expected = [k for k in range(0, size, psize) if mine[k : k + psize] != theirs[k : k + psize]]
    assert list(differing_pages(mine, 0, memoryview(theirs), psize)) == expected
    shifted = b"\0" * 7 + bytes(mine)
    assert list(differing_pages(shifted, 7, memoryview(theirs), psize)) == expected


@st.composite
def _layout(draw: st.DrawFn) -> ProcessMemory:
    cuts = sorted(draw(st.lists(st.integers(0, 48), min_size=0, max_size=10, unique=True)))
    runs, offset = [], 0
    for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):
        runs.append(PageRun(lo * PAGE, (hi - lo) * PAGE, "present", offset))
        offset += (hi - lo) * PAGE
    return ProcessMemory(1, 1, PAGE, [], runs)


@settings(max_examples=200, deadline=None)
@given(_layout(), _layout(), st.sampled_from([PAGE, 3 * PAGE, 1 << 20]))
def test_pieces_cover_the_common_pages(a: ProcessMemory, b: ProcessMemory, chunk: int) -> None:
    pieces = list(_pieces(a, b, chunk))
    covered = set()
    for vaddr, length, off_a, off_b in pieces:
        assert 0 < length <= chunk
        for k in range(0, length, PAGE):
            covered.add(vaddr + k)
            # the offsets point at that page in each side's pages file
            assert _offset(a, vaddr + k) == off_a + k and _offset(b, vaddr + k) == off_b + k
    assert covered == _pages(a) & _pages(b)
    assert [p[0] for p in pieces] == sorted(p[0] for p in pieces)


def _offset(p: ProcessMemory, vaddr: int) -> int:
    for r in p.runs:
        if r.vaddr <= vaddr < r.vaddr + r.length:
            assert r.offset is not None
            return r.offset + vaddr - r.vaddr
    raise AssertionError(vaddr)


def _reordered(src: Path, out: Path) -> Path:
    """The archive with its pages members first, in reverse, before their pagemaps: another
    member order than the other side's, and pages that arrive before what describes them."""
    import gzip
    import io
    import tarfile

    with tarfile.open(src) as tin:
        members = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in tin]  # type: ignore[union-attr]
    pages = [x for x in members if "/pages-" in x[0].name]
    rest = [x for x in members if "/pages-" not in x[0].name]
    with gzip.open(out, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as tout:
        for m, data in [*reversed(pages), *rest]:
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    return out


@pytest.mark.parametrize("buffer", [0, 64 << 10, 64 << 20])
def test_two_streams_in_any_order_and_any_buffer(
    archives: dict[str, Path], tmp_path: Path, buffer: int
) -> None:
    """Both streamed: A's pages compared as they come, or digested when they must wait."""
    from kcheckpoint.inspect.diff import DiffOptions

    expected = _brute_force(archives["a.tar"], archives["b.tar"])
    total = sum(len(v) for v in expected.values())
    reordered = _reordered(archives["b.tar"], tmp_path / "b-reordered.tar.gz")
    options = DiffOptions(stream_buffer=buffer)
    for a, b in (
        (archives["a.tar.gz"], archives["b.tar.gz"]),
        (archives["a.tar.gz"], reordered),
        (reordered, archives["a.tar.gz"]),
    ):
        d = diff_archives(str(a), str(b), options=options)
        assert d.processes == [] and d.filesystem == []
        assert sum(m.changed_pages for m in d.memory) == total, (a.name, b.name, buffer)


@pytest.mark.timeout(60)
def test_a_broken_stream_on_either_side_fails_cleanly(
    archives: dict[str, Path],
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    """Reading both at once: a cut archive on either side is an error, never a hang."""
    good = archives["a.tar.gz"]
    data = archives["b.tar.gz"].read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    for a, b in ((good, cut), (cut, good)):
        result = cli("diff", a, b)
        assert result.exit_code == 4 and "Traceback" not in result.stderr, (a.name, b.name)
