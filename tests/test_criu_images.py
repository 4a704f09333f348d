"""The CRIU image reader: magics, framing, extra payloads, and errors on damaged images."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcheckpoint.errors import (
    BadImageMagic,
    FormatError,
    ProtobufDecodeError,
    TruncatedImage,
    UnknownImageType,
)
from kcheckpoint.inspect.criu.images import (
    IMG_COMMON_MAGIC,
    IMG_SERVICE_MAGIC,
    MAGICS,
    image_type,
    read_image,
    split_frames,
    write_image,
)

from ._criu import fixture_images

REAL = fixture_images()
REAL_NAMES = sorted(REAL)


def test_every_checkpoint_file_of_the_fixtures_has_a_type() -> None:
    unknown = [n for n in REAL_NAMES if image_type(n) is None]
    assert unknown == []


@pytest.mark.parametrize("name", [n for n in REAL_NAMES if image_type(n) and image_type(n).magic])
def test_real_images_decode(name: str) -> None:
    image = read_image(name, REAL[name])
    kind = image_type(name)
    assert kind is not None
    assert image.magic == kind.magic
    if name == "inventory.img":
        assert image.head_magic is None
    elif name == "stats-dump":
        assert image.head_magic == IMG_SERVICE_MAGIC
    else:
        assert image.head_magic == IMG_COMMON_MAGIC


def test_pagemap_has_a_head_and_entries() -> None:
    image = read_image("pagemap-1.img", REAL["pagemap-1.img"])
    assert image.head.pages_id == 1
    assert image.entries and all(e.vaddr % 4096 == 0 for e in image.entries)


def test_pipe_data_extra_payload_is_split_off() -> None:
    image = read_image("pipes-data.img", REAL["pipes-data.img"])
    assert len(image.extras) == len(image.entries)
    assert [len(x) for x in image.extras] == [e.bytes for e in image.entries]


def test_unknown_and_raw_names_are_refused() -> None:
    with pytest.raises(UnknownImageType):
        read_image("amdgpu-pages-1-0.img", b"\0" * 8)
    with pytest.raises(UnknownImageType):
        read_image("pages-1.img", b"\0" * 8)


def test_wrong_magic_for_the_name() -> None:
    with pytest.raises(BadImageMagic, match="expected CORE"):
        read_image("core-1.img", REAL["mm-1.img"])
    with pytest.raises(BadImageMagic, match="unknown magic"):
        read_image("core-1.img", b"\x01\x02\x03\x04\x05\x06\x07\x08")


def test_absurd_length_is_a_truncation_not_an_allocation() -> None:
    data = struct.pack("<III", IMG_COMMON_MAGIC, MAGICS["CORE"], 0xFFFFFFFF) + b"x" * 16
    with pytest.raises(TruncatedImage, match="claims 4294967295 bytes"):
        read_image("core-1.img", data)


def test_bad_protobuf_payload() -> None:
    data = write_image("PSTREE", [b"\xff\xff\xff"])
    with pytest.raises(ProtobufDecodeError):
        read_image("pstree.img", data)


def test_big_endian_images_decode() -> None:
    le = read_image("pstree.img", REAL["pstree.img"])
    be = write_image("PSTREE", le.entries, byteorder="big")
    assert read_image("pstree.img", be).entries == le.entries
    assert read_image("pstree.img", be).byteorder == "big"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(REAL_NAMES), data=st.binary(max_size=512))
def test_random_bytes_raise_only_format_errors(name: str, data: bytes) -> None:
    kind = image_type(name)
    magic = struct.pack("<II", IMG_COMMON_MAGIC, kind.magic) if kind and kind.magic else b""
    for blob in (data, magic + data):
        with contextlib.suppress(FormatError):
            read_image(name, blob)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_truncations_of_real_images_raise_truncated_image(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([n for n in REAL_NAMES if _framed(n) and len(REAL[n]) > 8]))
    blob = REAL[name]
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    try:
        read_image(name, blob[:cut])
    except (TruncatedImage, ProtobufDecodeError):
        return
    # A cut exactly at an entry boundary is a valid, shorter image.
    assert cut in _boundaries(name, blob)


def _framed(name: str) -> bool:
    kind = image_type(name)
    return bool(kind and kind.entry is not None and kind.framed)


def _boundaries(name: str, blob: bytes) -> set[int]:
    image = read_image(name, blob)
    start = 4 if image.head_magic is None else 8
    ends = {start}
    for offset, payload in split_frames(blob, start):
        ends.add(offset + 4 + len(payload))
    return ends


@given(
    magic=st.sampled_from(sorted(MAGICS)),
    head=st.sampled_from([None, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC]),
    payloads=st.lists(st.binary(max_size=64), max_size=8),
    order=st.sampled_from(["little", "big"]),
)
def test_framing_round_trips(
    magic: str, head: int | None, payloads: list[bytes], order: str
) -> None:
    blob = write_image(magic, payloads, head_magic=head, byteorder=order)
    start = 8 if head is not None else 4
    assert [p for _, p in split_frames(blob, start, order)] == payloads


@given(
    entries=st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.lists(st.integers(0, 99))
        ),
        max_size=6,
    )
)
def test_pstree_entries_round_trip(entries: list[tuple[int, int, list[int]]]) -> None:
    from kcheckpoint._proto.criu import pstree_pb2

    msgs = [pstree_pb2.pstree_entry(pid=p, ppid=q, threads=t) for p, q, t in entries]
    assert read_image("pstree.img", write_image("PSTREE", msgs)).entries == msgs
