"""The anchor engine under random chunking: UTF-16LE anchors, regex anchors and the copies sink
give what one scan of the whole buffer (or a plain ``bytes.find``) gives, on both engines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.criu.walk import SegmentInfo
from kcheckpoint.inspect.memory.copies import CopySink
from kcheckpoint.inspect.rules.engine import wide
from kcheckpoint.inspect.rules.secrets import (
    AWS_SECRET_CANDIDATE,
    RULES,
    SecretMatcher,
    scan_chunks,
)

ENGINES = ["python", "hyperscan"]
AWS_SECRET = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYFIXTUREKEY"
PLANTS = [
    b"GITHUB_TOKEN=ghp_Wide0Token1Planted2For3Utf16Test4567",
    b"\x00DB_PASSWORD=hunter3-fixture-pw\x00",
    b'"' + AWS_SECRET + b'"',
    b"AKIAZZTESTEXAMPLE234 ",
]


def _engine(name: str) -> None:
    if name == "hyperscan":
        pytest.importorskip("hyperscan")


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _layout(pads: list[int], kinds: list[bool]) -> bytes:
    """The plants, each in ASCII or UTF-16LE, between runs of filler."""
    out = b""
    for pad, plant, is_wide in zip(pads, PLANTS, kinds, strict=False):
        out += b"\x01" * pad + (wide(plant) if is_wide else plant)
    return out + b"\x02" * 64


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=40, deadline=None)
@given(
    pads=st.lists(st.integers(0, 2000), min_size=4, max_size=4),
    kinds=st.lists(st.booleans(), min_size=4, max_size=4),
    cuts=st.lists(st.integers(0, 20000), max_size=6),
)
def test_utf16_and_regex_anchors_do_not_depend_on_chunking(
    engine: str, pads: list[int], kinds: list[bool], cuts: list[int]
) -> None:
    _engine(engine)
    data = _layout(pads, kinds)
    matcher = SecretMatcher((*RULES, AWS_SECRET_CANDIDATE), engine=engine, utf16=True)
    whole = [(f.rule, f.start, f.value, f.encoding) for f in scan_chunks(matcher, [data])]
    chunked = [
        (f.rule, f.start, f.value, f.encoding) for f in scan_chunks(matcher, _chunks(data, cuts))
    ]
    assert chunked == whole
    rules = {(r, e) for r, _, _, e in whole}
    for plant, is_wide, rule in zip(
        PLANTS,
        kinds,
        ["github-token", "secret-env-var", "aws-secret-candidate", "aws-access-key-id"],
        strict=True,
    ):
        if rule == "aws-secret-candidate" and is_wide:
            continue  # the candidate regex runs on ASCII only
        assert (rule, "utf-16le" if is_wide else "ascii") in rules, (plant, is_wide)


@given(
    pads=st.lists(st.integers(0, 2000), min_size=4, max_size=4),
    kinds=st.lists(st.booleans(), min_size=4, max_size=4),
)
@settings(max_examples=30, deadline=None)
def test_hyperscan_and_python_agree(pads: list[int], kinds: list[bool]) -> None:
    pytest.importorskip("hyperscan")
    data = _layout(pads, kinds)
    rules = (*RULES, AWS_SECRET_CANDIDATE)
    got = {
        engine: [
            (f.rule, f.start, f.value)
            for f in scan_chunks(SecretMatcher(rules, engine=engine, utf16=True), [data])
        ]
        for engine in ENGINES
    }
    assert got["python"] == got["hyperscan"]


def _all_positions(data: bytes, needle: bytes) -> list[int]:
    out, pos = [], data.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = data.find(needle, pos + 1)
    return out


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=40, deadline=None)
@given(
    filler=st.binary(min_size=0, max_size=3000),
    spots=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2), st.booleans()), max_size=8),
    cuts=st.lists(st.integers(0, 8000), max_size=5),
)
def test_copies_are_every_occurrence_whatever_the_chunking(
    engine: str, filler: bytes, spots: list[tuple[int, int, bool]], cuts: list[int]
) -> None:
    _engine(engine)
    values = [b"hunter3-fixture-pw", AWS_SECRET, b"pw-pw-pw-pw"]
    data = bytearray(filler)
    for at, which, is_wide in spots:
        at = min(at, len(data))
        data[at:at] = wide(values[which]) if is_wide else values[which]
    blob = bytes(data)
    sink = CopySink(values, engine)
    info = SegmentInfo("rootfs-diff.tar", None, None, 0, len(blob), "f")
    sink.segment(info, iter(_chunks(blob, cuts)))
    got = sorted((c.start, c.value, c.encoding) for c in sink.copies)
    expected = sorted(
        (pos, i, enc)
        for i, value in enumerate(values)
        for enc, form in (("ascii", value), ("utf-16le", wide(value)))
        for pos in _all_positions(blob, form)
    )
    assert got == expected
