"""Hostile variants of a real checkpoint archive, for the property tests and ``scripts/fuzz``.

Every mutator takes the members of a plain tar (``Member`` list, in archive order) or its raw
bytes, and returns the bytes of a new archive. They only build inputs: what kcheckpoint must do
with them is for the caller to check.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

from kcheckpoint.inspect.criu.images import read_image, write_image

BLOCK = 512


@dataclass(frozen=True)
class Member:
    """One member of a tar: its header and its bytes."""

    info: tarfile.TarInfo
    data: bytes

    @property
    def name(self) -> str:
        return self.info.name.removeprefix("./").rstrip("/")


def members_of(raw: bytes) -> list[Member]:
    """The members of a plain tar."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        for info in tf:
            data = b""
            if info.isreg():
                fh = tf.extractfile(info)
                assert fh is not None
                data = fh.read()
            out.append(Member(info, data))
    return out


def build(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A plain tar of these members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            info = copy.copy(m.info)
            if info.isreg():
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def file_info(
    name: str, size: int = 0, type_: bytes = tarfile.REGTYPE, **kw: object
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = size
    info.mode = 0o644
    info.mtime = 1_764_000_000
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def with_member(members: list[Member], name: str, data: bytes) -> list[Member]:
    """Replace a member's bytes (added at the end when absent)."""
    out = [Member(m.info, data) if m.name == name else m for m in members]
    if not any(m.name == name for m in members):
        out.append(Member(file_info(name, len(data)), data))
    return out


def added(members: list[Member], *extra: Member) -> list[Member]:
    return [*members, *extra]


def get(members: list[Member], name: str) -> bytes:
    for m in members:
        if m.name == name:
            return m.data
    raise KeyError(name)


def names(members: list[Member], prefix: str) -> list[str]:
    return [m.name for m in members if m.name.startswith(prefix)]


# --- CRIU images --------------------------------------------------------------------------------


def edit_image(
    members: list[Member], name: str, edit: Callable[[list[object]], list[object] | None]
) -> list[Member]:
    """Decode a CRIU image's entries, let ``edit`` change them (in place or by returning a new
    list), and write the image back with the same magics and extras."""
    data = get(members, name)
    image = read_image(name, data)
    entries = list(image.entries)
    result = edit(entries)
    if result is not None:
        entries = result
    payloads = [e.SerializeToString() for e in entries]  # type: ignore[attr-defined]
    head = [image.head.SerializeToString()] if image.head is not None else []
    new = write_image(
        image.magic,
        head + payloads,
        head_magic=image.head_magic,
        byteorder=image.byteorder,
        extras=image.extras or None,
    )
    return with_member(members, name, new + image.tail)


def set_pagemap(field: str, value: int, index: int = 1) -> Callable[[list[Member]], list[Member]]:
    """Set one field of one pagemap entry in every pagemap image."""

    def mutate(members: list[Member]) -> list[Member]:
        for name in names(members, "checkpoint/pagemap-"):

            def edit(entries: list[object]) -> None:
                if len(entries) > index:
                    setattr(entries[index], field, value)

            members = edit_image(members, name, edit)
        return members

    return mutate


def pstree_edit(kind: str) -> Callable[[list[Member]], list[Member]]:
    """Damage the process tree: a self-parent, a duplicate pid, a cycle or a deep chain."""

    def mutate(members: list[Member]) -> list[Member]:
        def edit(entries: list[object]) -> list[object] | None:
            first = entries[0]
            if kind == "self-parent":
                first.ppid = first.pid  # type: ignore[attr-defined]
            elif kind == "duplicate":
                return [*entries, *entries]
            elif kind == "cycle" and len(entries) > 1:
                first.ppid = entries[1].pid  # type: ignore[attr-defined]
            elif kind.startswith("chain"):
                depth = int(kind.removeprefix("chain"))
                out = list(entries)
                for i in range(depth):
                    e = type(first)()
                    e.CopyFrom(first)  # type: ignore[arg-type]
                    e.pid, e.ppid = 100 + i, (100 + i - 1 if i else first.pid)  # type: ignore[attr-defined]
                    e.pgid = e.sid = first.pid  # type: ignore[attr-defined]
                    del e.threads[:]  # type: ignore[attr-defined]
                    e.threads.append(e.pid)  # type: ignore[attr-defined]
                    out.append(e)
                return out
            return None

        return edit_image(members, "checkpoint/pstree.img", edit)

    return mutate


def mm_env(start: int, end: int) -> Callable[[list[Member]], list[Member]]:
    """Set the env range of every mm image."""

    def mutate(members: list[Member]) -> list[Member]:
        for name in names(members, "checkpoint/mm-"):

            def edit(entries: list[object]) -> None:
                entries[0].mm_env_start = start  # type: ignore[attr-defined]
                entries[0].mm_env_end = end  # type: ignore[attr-defined]

            members = edit_image(members, name, edit)
        return members

    return mutate


# --- metadata JSON ------------------------------------------------------------------------------


def deep_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def json_edit(
    name: str, edit: Callable[[object], object]
) -> Callable[[list[Member]], list[Member]]:
    def mutate(members: list[Member]) -> list[Member]:
        value = json.loads(get(members, name))
        return with_member(members, name, json.dumps(edit(value)).encode())

    return mutate


def wrong_types(value: object) -> object:
    """Every object-valued field of a JSON object becomes a string, every list a number."""
    if isinstance(value, dict):
        return {
            k: "x" if isinstance(v, dict) else 7 if isinstance(v, list) else v
            for k, v in value.items()
        }
    return value


# --- tar structure ------------------------------------------------------------------------------


def header_offsets(raw: bytes) -> list[int]:
    """Offsets of every header block of a plain tar (extended headers included)."""
    out, pos = [], 0
    while pos + BLOCK <= len(raw):
        block = raw[pos : pos + BLOCK]
        if block == bytes(BLOCK):
            break
        out.append(pos)
        size_field = block[124:136]
        try:
            size = int(size_field.strip(b"\0 ") or b"0", 8)
        except ValueError:
            break
        pos += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK
    return out


def end_of_members(raw: bytes) -> int:
    offsets = header_offsets(raw)
    if not offsets:
        return 0
    last = offsets[-1]
    size = int(raw[last + 124 : last + 136].strip(b"\0 ") or b"0", 8)
    return last + BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK


def rechecksum(block: bytearray) -> None:
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)


def poke(raw: bytes, offset: int, data: bytes, *, fix_checksum: bool = True) -> bytes:
    """Overwrite bytes inside a header block, and recompute its checksum."""
    out = bytearray(raw)
    out[offset : offset + len(data)] = data
    if fix_checksum:
        start = offset - offset % BLOCK
        block = out[start : start + BLOCK]
        rechecksum(block)
        out[start : start + BLOCK] = block
    return bytes(out)


def sparse_member(declared: int) -> bytes:
    """A GNU sparse (old format, type S) member whose real size is 1 TiB or ``declared``."""
    header = bytearray(BLOCK)
    name = b"checkpoint/sparse.img"
    header[0 : len(name)] = name
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"00000001000\0"  # 512 bytes stored
    header[136:148] = b"15000000000\0"
    header[156:157] = b"S"
    header[257:265] = b"ustar  \0"
    # one sparse map entry at 386: offset 0, numbytes 512; realsize at 483
    header[386:398] = b"00000000000\0"
    header[398:410] = b"00000001000\0"
    header[483:495] = b"\x80" + declared.to_bytes(11, "big")  # GNU base-256
    rechecksum(header)
    return bytes(header) + b"\xab" * BLOCK


def insert_before_end(raw: bytes, blob: bytes) -> bytes:
    end = end_of_members(raw)
    return raw[:end] + blob + bytes(2 * BLOCK)


def control_names() -> list[Member]:
    """Members whose names and link targets carry terminal control characters."""
    return [
        Member(file_info("evil\x1b[31mred\x07.txt", 3), b"abc"),
        Member(file_info("forged\nOK: line\r.txt", 1), b"z"),
        Member(file_info("ctl-link", type_=tarfile.SYMTYPE, linkname="t\x1b]0;title\x07"), b""),
    ]


def unsafe_members() -> list[Member]:
    return [
        Member(file_info("../x", 1), b"x"),
        Member(file_info("/tmp/x", 1), b"x"),
        Member(file_info("up", type_=tarfile.SYMTYPE, linkname="../../etc"), b""),
        Member(file_info("rootlink", type_=tarfile.SYMTYPE, linkname="/"), b""),
        Member(file_info("dev0", type_=tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        Member(file_info("fifo0", type_=tarfile.FIFOTYPE), b""),
        Member(file_info("hard-dangling", type_=tarfile.LNKTYPE, linkname="nope"), b""),
    ]


def long_names() -> list[Member]:
    return [
        Member(file_info("p" * 5000, 1), b"p"),
        Member(file_info("/".join(["d"] * 3000) + "/f", 1), b"d"),
        Member(file_info("longlink", type_=tarfile.SYMTYPE, linkname="t" * 100_000), b""),
    ]


def random_flip(raw: bytes, rng: random.Random, count: int = 8) -> bytes:
    out = bytearray(raw)
    for _ in range(count):
        i = rng.randrange(len(out))
        out[i] = rng.randrange(256)
    return bytes(out)


def garble(data: bytes, rng: random.Random) -> bytes:
    """Same length, other bytes."""
    new = bytes(rng.randrange(256) for _ in range(len(data)))
    return new if new != data else bytes(b ^ 0xFF for b in data)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def pax_sparse_member(name: str, declared: int) -> Member:
    """A PAX (GNU 1.0) sparse member: 512 stored bytes standing for ``declared`` bytes."""
    info = file_info(f"GNUSparseFile.0/{name.rsplit('/', 1)[-1]}")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(declared),
    }
    return Member(info, b"1\n0\n512\n".ljust(BLOCK, b"\0") + b"\xab" * BLOCK)
