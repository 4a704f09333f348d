"""The chunked search engine: the same matches whatever the chunking, UTF-16, context."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.memory.search import compile_needle, escape_bytes, search_stream


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _starts(needle, data: bytes, cuts: list[int], context: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    return [m.start for m in search_stream(needle, _chunks(data, cuts), context=context)]


_alphabet = st.sampled_from([b"a", b"b", b"ab", b"\x00", b"x"])


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(_alphabet, max_size=60),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    context=st.integers(0, 5),
)
def test_literal_matches_do_not_depend_on_chunking(
    parts: list[bytes], cuts: list[int], context: int
) -> None:
    data = b"".join(parts)
    needle = compile_needle("abab")
    expected = [m.start() for m in re.finditer(b"abab", data)]
    assert _starts(needle, data, cuts, context) == expected


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(_alphabet, max_size=60), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_regex_matches_do_not_depend_on_chunking(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    needle = compile_needle("a[bx]+a", regex=True, max_match=64)
    expected = [m.start() for m in re.finditer(b"a[bx]+a", data)]
    assert _starts(needle, data, cuts) == expected


def test_a_match_across_a_chunk_boundary_is_found_once_with_its_context() -> None:
    data = b"\x00" * 100 + b"SECRET-MARKER" + b"\xff" * 100
    needle = compile_needle("SECRET-MARKER")
    hits = list(search_stream(needle, [data[:106], data[106:]], base=0x1000, context=4))
    assert [(h.start, h.end) for h in hits] == [(0x1000 + 100, 0x1000 + 113)]
    assert hits[0].before == b"\x00" * 4 and hits[0].after == b"\xff" * 4
    assert hits[0].data == b"SECRET-MARKER"


def test_utf16_finds_wide_text_for_literals_and_regexes() -> None:
    wide = "hunter2".encode("utf-16-le")
    data = b"zz" + wide + b"\x00\x00hunter2"
    lit = list(search_stream(compile_needle("hunter2", utf16=True), [data]))
    assert [(m.start, m.encoding) for m in lit] == [(2, "utf-16le"), (18, "ascii")]
    rx = list(search_stream(compile_needle("hun[a-z]+2", regex=True, utf16=True), [data]))
    assert {(m.start, m.encoding) for m in rx} == {(2, "utf-16le"), (18, "ascii")}
    assert not list(search_stream(compile_needle("hunter2"), [wide]))


def test_odd_aligned_utf16_is_found() -> None:
    data = b"\x01" + "pw=abc".encode("utf-16-le")
    hits = list(search_stream(compile_needle("pw=abc", utf16=True), [data[:5], data[5:]]))
    assert [(m.start, m.end) for m in hits] == [(1, 13)]


@pytest.mark.parametrize("bad", ["", "(", "a*"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_needle(bad, regex=True)


def test_escape_keeps_printables_and_escapes_the_rest() -> None:
    assert escape_bytes(b"A=\\1\x00\n\xff") == "A=\\\\1\\x00\\n\\xff"


@pytest.mark.parametrize("size", [100, 257, 4096, 65_536])
@pytest.mark.parametrize("regex", [False, True])
def test_large_chunks_scanned_in_place_give_the_same_matches(size: int, regex: bool) -> None:
    import random

    rnd = random.Random(size)
    data = b"".join(rnd.randbytes(rnd.randrange(0, 300)) + b"MARK-abc-MARK" for _ in range(300))
    needle = compile_needle(
        "MARK-[a-z]+-MARK" if regex else "MARK-abc-MARK", regex=regex, max_match=32
    )
    chunks = [bytearray(data[i : i + size]) for i in range(0, len(data), size)]
    got = [m.start for m in search_stream(needle, chunks)]
    assert got == [m.start() for m in re.finditer(b"MARK-abc-MARK", data)]
