"""The zstd reader notices a stream cut anywhere, and reads every frame layout."""

from __future__ import annotations

import contextlib
import io

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.errors import CorruptCompression
from kcheckpoint.inspect.reader.zstdstream import ZstdReader

from .conftest import IDLE

PAYLOAD = b"\x00" * 200_000 + bytes(range(256)) * 300 + b"tail"


def _read(data: bytes) -> bytes:
    return io.BufferedReader(ZstdReader(io.BytesIO(data))).read()


@pytest.mark.parametrize(
    "options",
    [{}, {"write_checksum": True}, {"write_content_size": False}, {"level": 19}],
    ids=["default", "checksum", "no-size", "level19"],
)
def test_every_cut_is_noticed(options: dict[str, object]) -> None:
    packed = zstandard.ZstdCompressor(**options).compress(PAYLOAD)  # type: ignore[arg-type]
    assert _read(packed) == PAYLOAD
    for cut in range(len(packed)):
        with pytest.raises(CorruptCompression):
            _read(packed[:cut])


def test_several_frames_and_a_skippable_one() -> None:
    frame = zstandard.ZstdCompressor().compress(PAYLOAD)
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    assert _read(frame + skippable + frame) == PAYLOAD * 2
    with pytest.raises(CorruptCompression):
        _read(frame + skippable[:-1])


def test_a_real_podman_archive() -> None:
    data = IDLE.read_bytes()
    expected = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert _read(data) == expected
    with pytest.raises(CorruptCompression):
        _read(data[:-5])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_give_only_our_error(data: bytes) -> None:
    with contextlib.suppress(CorruptCompression):  # any other exception fails the test
        _read(data)
