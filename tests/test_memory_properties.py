"""Properties of pagemap runs: offsets, segments and range lookups, for any valid pagemap."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint._proto.criu import pagemap_pb2
from kcheckpoint.inspect.criu.memory import PE_LAZY, PE_PARENT, PE_PRESENT, ProcessMemory, runs_of

PAGE = 4096
FLAGS = st.sampled_from([PE_PRESENT, PE_PRESENT | PE_LAZY, PE_PARENT, PE_LAZY, None])


@st.composite
def pagemaps(draw: st.DrawFn) -> list[pagemap_pb2.pagemap_entry]:
    entries = []
    page = draw(st.integers(1, 50))
    for _ in range(draw(st.integers(0, 12))):
        page += draw(st.integers(0, 4))  # gaps, or VA-contiguous entries
        count = draw(st.integers(1, 6))
        e = pagemap_pb2.pagemap_entry(vaddr=page * PAGE)
        if draw(st.booleans()):
            e.nr_pages = count
            e.compat_nr_pages = 0
        else:
            e.compat_nr_pages = count
        flags = draw(FLAGS)
        if flags is not None:
            e.flags = flags
        entries.append(e)
        page += count
    return entries


@settings(max_examples=200, deadline=None)
@given(entries=pagemaps(), probe=st.tuples(st.integers(0, 200), st.integers(1, 40)))
def test_offsets_segments_and_lookups_agree(
    entries: list[pagemap_pb2.pagemap_entry], probe: tuple[int, int]
) -> None:
    runs = runs_of(entries, PAGE)
    present = [r for r in runs if r.source == "present"]
    # present data is laid out back to back, in pagemap order
    offset = 0
    for r in present:
        assert r.offset == offset
        offset += r.length
    assert all(r.offset is None for r in runs if r.source != "present")
    pmem = ProcessMemory(1, 1, PAGE, [], runs)
    segs = pmem.segments()
    assert sum(s.length for s in segs) == offset
    for a, b in itertools.pairwise(segs):
        assert not (a.vaddr + a.length == b.vaddr and a.offset + a.length == b.offset)
    # every byte of a range is found exactly where its run says, or reported absent
    start = probe[0] * PAGE // 3
    end = start + probe[1] * 1000
    pieces = pmem.locate(start, end)
    assert pieces[0][0] == start and sum(length for _, length, _ in pieces) == end - start
    for vaddr, length, off in pieces:
        run = next((r for r in runs if r.vaddr <= vaddr < r.vaddr + r.length), None)
        if off is None:
            assert run is None or run.source != "present"
        else:
            assert run is not None and run.offset is not None
            assert off == run.offset + (vaddr - run.vaddr)
            assert vaddr + length <= run.vaddr + run.length
