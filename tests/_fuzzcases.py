"""Random hostile variants of a real checkpoint, by family, for the property tests and
``scripts/fuzz``. ``MUTATORS[family](base, rng)`` returns the bytes of one case.

Families: tar structure (headers, checksums, sizes, type flags, PAX and GNU extensions, sparse
members, links, devices, duplicates, the end marker), compression (truncation and corruption
of gzip, bzip2, xz and zstd), CRIU images (framing, and extreme values in every integer field),
metadata JSON (depth, types, sizes, encoding), nested tars, and control characters.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

import zstandard
from google.protobuf.descriptor import FieldDescriptor

from kcheckpoint.errors import ImageError
from kcheckpoint.inspect.criu.images import read_image

from . import _mutate as M

BLOCK = M.BLOCK
_EXTREMES = [0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63 - 1, 2**63, 2**64 - 1]
_CONTROLS = "\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\x9b\u202e\n\t"


@dataclass(frozen=True)
class Base:
    """The archive every case starts from: a plain tar, and its members."""

    raw: bytes
    members: list[M.Member]

    @classmethod
    def of(cls, raw: bytes) -> Base:
        return cls(raw, M.members_of(raw))


Mutator = Callable[[Base, random.Random], bytes]


# --- tar structure ------------------------------------------------------------------------------


def header_bytes(base: Base, rng: random.Random) -> bytes:
    """A few random bytes of one header changed, its checksum fixed or not."""
    offset = rng.choice(M.header_offsets(base.raw))
    out = base.raw
    for _ in range(rng.randint(1, 4)):
        out = M.poke(
            out,
            offset + rng.randrange(BLOCK),
            bytes([rng.randrange(256)]),
            fix_checksum=rng.random() < 0.7,
        )
    return out


def checksum(base: Base, rng: random.Random) -> bytes:
    offset = rng.choice(M.header_offsets(base.raw))
    return M.poke(
        base.raw,
        offset + 148,
        rng.choice([b"0000000\0", b"9999999\0", b"\0" * 8, b"       \0"]),
        fix_checksum=False,
    )


def size_field(base: Base, rng: random.Random) -> bytes:
    """A header's size field set to something else: small, huge, base-256, not a number."""
    offset = rng.choice(M.header_offsets(base.raw))
    value = rng.choice(
        [
            b"%011o\0" % rng.randrange(0, 1 << 20),
            b"77777777777\0",
            b"\x80" + (1 << 40).to_bytes(11, "big"),
            b"\xff" * 12,
            b"not-a-size!\0",
        ]
    )
    return M.poke(base.raw, offset + 124, value)


def type_flag(base: Base, rng: random.Random) -> bytes:
    offset = rng.choice(M.header_offsets(base.raw))
    return M.poke(base.raw, offset + 156, bytes([rng.choice(b"0123456789gxKLSAVNDM\0?z")]))


def truncate(base: Base, rng: random.Random) -> bytes:
    return base.raw[: rng.randrange(len(base.raw))]


def end_marker(base: Base, rng: random.Random) -> bytes:
    end = M.end_of_members(base.raw)
    tail = rng.choice(
        [b"", bytes(rng.randrange(1, 1024)), bytes(BLOCK) + b"junk" * 100, b"\xff" * BLOCK]
    )
    return base.raw[:end] + tail


def pax_headers(base: Base, rng: random.Random) -> bytes:
    """A member with random PAX records: paths, sizes, link targets, sparse keys, times."""
    key = rng.choice(
        [
            "path",
            "linkpath",
            "size",
            "mtime",
            "uid",
            "GNU.sparse.realsize",
            "GNU.sparse.major",
            "comment",
            "hdrcharset",
        ]
    )
    value = rng.choice(
        [
            "../../etc/passwd",
            "/abs",
            "x" * rng.choice([10, 300, 5000]),
            "-1",
            "1e9",
            "99999999999999999999",
            "\x1b[2J",
            "",
        ]
    )
    info = M.file_info(f"pax-{rng.randrange(100)}.txt", 4)
    info.pax_headers = {key: value}
    try:
        return M.build([*base.members, M.Member(info, b"data")])
    except (ValueError, tarfile.TarError, OverflowError):
        return M.build([*base.members, M.Member(M.file_info("pax-fallback", 1), b"x")])


def gnu_long(base: Base, rng: random.Random) -> bytes:
    length = rng.choice([101, 256, 4097, 10_000, 70_000])
    name = rng.choice(["n", "d/", "../"]) * (length // 2)
    member = M.Member(M.file_info(name[:length] or "x", 1), b"g")
    if rng.random() < 0.5:
        member = M.Member(M.file_info("ln", type_=tarfile.SYMTYPE, linkname="t" * length), b"")
    return M.build([*base.members, member], tarfile.GNU_FORMAT)


def sparse(base: Base, rng: random.Random) -> bytes:
    declared = rng.choice([0, 1, 512, 1 << 30, 1 << 40, (1 << 88) - 1])
    if rng.random() < 0.5:
        return M.insert_before_end(base.raw, M.sparse_member(declared))
    name = rng.choice(["checkpoint/pages-1.img", "spec.dump", "rootfs-diff.tar", "x.img"])
    return M.build([*base.members, M.pax_sparse_member(name, declared)])


def links(base: Base, rng: random.Random) -> bytes:
    kind = rng.choice([tarfile.SYMTYPE, tarfile.LNKTYPE])
    name = rng.choice(["config.dump", "checkpoint", "lnk", "checkpoint/pages-1.img", "a/b/c"])
    target = rng.choice(
        ["/", "..", "../../x", "config.dump", name, "checkpoint/", "nope", "./././x"]
    )
    return M.build([*base.members, M.Member(M.file_info(name, type_=kind, linkname=target), b"")])


def devices(base: Base, rng: random.Random) -> bytes:
    kind = rng.choice([tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE])
    name = rng.choice(["dev0", "checkpoint/dev", "rootfs-diff.tar", "spec.dump"])
    data = b"c" * 3 if kind == tarfile.CONTTYPE else b""
    info = M.file_info(
        name, len(data), type_=kind, devmajor=rng.randrange(256), devminor=rng.randrange(256)
    )
    return M.build([*base.members, M.Member(info, data)])


def duplicates(base: Base, rng: random.Random) -> bytes:
    victim = rng.choice([m for m in base.members if m.info.isreg()])
    return M.build(
        [*base.members, M.Member(victim.info, M.garble(victim.data, rng) if victim.data else b"x")]
    )


# --- compression --------------------------------------------------------------------------------

_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, 1),
    "bzip2": lambda d: bz2.compress(d, 1),
    "xz": lambda d: lzma.compress(d, preset=0),
    "zstd": lambda d: zstandard.ZstdCompressor(level=1).compress(d),
}


def compressed(base: Base, rng: random.Random) -> bytes:
    """The archive compressed, then cut short or with bytes flipped."""
    data = _COMPRESS[rng.choice(sorted(_COMPRESS))](base.raw)
    if rng.random() < 0.5:
        return data[: rng.randrange(1, len(data))]
    return M.random_flip(data, rng, rng.randint(1, 6))


# --- CRIU images --------------------------------------------------------------------------------


def _images(base: Base) -> list[str]:
    return [
        m.name
        for m in base.members
        if m.name.startswith("checkpoint/") and m.name.endswith(".img") and "pages-" not in m.name
    ]


def image_framing(base: Base, rng: random.Random) -> bytes:
    """An image's bytes flipped, cut, or an entry's size word made huge."""
    name = rng.choice(_images(base))
    data = M.get(base.members, name)
    choice = rng.random()
    if choice < 0.4:
        data = M.random_flip(data, rng, rng.randint(1, 4)) if data else b"\x00"
    elif choice < 0.7:
        data = data[: rng.randrange(max(1, len(data)))]
    elif len(data) >= 12:
        data = data[:8] + M.u32(rng.choice(_EXTREMES[:7])) + data[12:]
    return M.build(M.with_member(base.members, name, data))


def image_fields(base: Base, rng: random.Random) -> bytes:
    """One integer field of one entry of a decodable image set to an extreme value."""
    for _ in range(20):
        name = rng.choice(_images(base))
        try:
            image = read_image(name.rsplit("/", 1)[-1], M.get(base.members, name))
        except (ImageError, KeyError):
            continue
        if not image.entries:
            continue
        index = rng.randrange(len(image.entries))
        found = _random_int_field(image.entries[index], rng)
        if found is None:
            continue
        path, field = found
        value = _fit(field, rng.choice(_EXTREMES))

        def edit(
            entries: list[object], index: int = index, path: list[str] = path, value: int = value
        ) -> None:
            owner = entries[index]
            for step in path[:-1]:
                owner = getattr(owner, step)
            setattr(owner, path[-1], value)

        return M.build(M.edit_image(base.members, name, edit))
    return M.build(base.members)


def _random_int_field(
    message: object, rng: random.Random
) -> tuple[list[str], FieldDescriptor] | None:
    """The path (field names) to a scalar integer field of ``message`` or of one inside it."""
    candidates: list[tuple[list[str], FieldDescriptor]] = []
    stack: list[tuple[object, list[str]]] = [(message, [])]
    while stack and len(candidates) < 200:
        msg, path = stack.pop()
        for field in msg.DESCRIPTOR.fields:  # type: ignore[attr-defined]
            if field.is_repeated:
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if msg.HasField(field.name):  # type: ignore[attr-defined]
                    stack.append((getattr(msg, field.name), [*path, field.name]))
            elif field.cpp_type in _INT_TYPES:
                candidates.append(([*path, field.name], field))
    return rng.choice(candidates) if candidates else None


_INT_TYPES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def _fit(field: FieldDescriptor, value: int) -> int:
    low, high = _INT_TYPES[field.cpp_type]
    return max(low, min(high, value))


def pstree(base: Base, rng: random.Random) -> bytes:
    kind = rng.choice(["self-parent", "duplicate", "cycle", "chain50", "chain3000"])
    return M.build(M.pstree_edit(kind)(base.members))


# --- metadata JSON ------------------------------------------------------------------------------

_METADATA = [
    "config.dump",
    "spec.dump",
    "network.status",
    "deleted.files",
    "stats-dump",
    "checkpoint/descriptors.json",
]


def metadata(base: Base, rng: random.Random) -> bytes:
    name = rng.choice([n for n in _METADATA if any(m.name == n for m in base.members)])
    kind = rng.choice(
        ["deep", "deep-list", "types", "huge", "not-json", "bad-utf8", "empty", "scalar"]
    )
    data: bytes
    if kind == "deep":
        data = M.deep_json(rng.choice([65, 1000, 100_000]))
    elif kind == "deep-list":
        depth = rng.choice([65, 5000])
        data = b"[" * depth + b"]" * depth
    elif kind == "types":
        try:
            value = json.loads(M.get(base.members, name))
        except ValueError:
            value = {}
        data = json.dumps(_retype(value, rng)).encode()
    elif kind == "huge":
        data = json.dumps(
            {"annotations": {"k": "v" * (1 << 20)}, "process": {"env": ["A=" + "x" * 100_000] * 10}}
        ).encode()
    elif kind == "not-json":
        data = b"{not json" + bytes(rng.randrange(256) for _ in range(64))
    elif kind == "bad-utf8":
        data = b'{"annotations": {"k": "\xff\xfe"}}'
    elif kind == "empty":
        data = b""
    else:
        data = rng.choice([b"null", b"7", b'"str"', b"[]", b"true"])
    return M.build(M.with_member(base.members, name, data))


def _retype(value: object, rng: random.Random) -> object:
    """Random subtrees replaced by values of other JSON types."""
    if isinstance(value, dict):
        return {
            k: (_other(rng) if rng.random() < 0.3 else _retype(v, rng)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_other(rng) if rng.random() < 0.3 else _retype(v, rng) for v in value]
    return value


def _other(rng: random.Random) -> object:
    return rng.choice(["s", 1, 1.5, None, True, [], {}, ["a", 1], {"k": {}}])


# --- nested tars and control characters -----------------------------------------------------------


def nested(base: Base, rng: random.Random) -> bytes:
    """A nested tar (rootfs-diff, devshm, tmpfs) replaced by a damaged one."""
    names = [
        m.name
        for m in base.members
        if m.name in ("rootfs-diff.tar", "devshm-checkpoint.tar") or m.name.endswith(".tar.gz.img")
    ]
    name = rng.choice(names)
    inner_members = [
        M.Member(M.file_info("app/x.txt", 3), b"abc"),
        *rng.sample(M.unsafe_members(), 2),
        *M.control_names()[:1],
    ]
    inner = M.build(inner_members)
    choice = rng.random()
    if choice < 0.3:
        inner = inner[: rng.randrange(1, len(inner))]
    elif choice < 0.6:
        inner = M.random_flip(inner, rng, 4)
    if name.endswith(".gz.img") or rng.random() < 0.3:
        inner = gzip.compress(inner)
        if rng.random() < 0.3:
            inner = inner[: rng.randrange(1, len(inner))]
    return M.build(M.with_member(base.members, name, inner))


def controls(base: Base, rng: random.Random) -> bytes:
    """Names, link targets and a comm with control characters."""
    junk = "".join(rng.choice(_CONTROLS) for _ in range(rng.randint(1, 6))).replace("\x00", "")
    extra = [
        M.Member(M.file_info(f"c{junk}name.txt", 1), b"c"),
        M.Member(M.file_info(f"l{junk}", type_=tarfile.SYMTYPE, linkname=f"t{junk}"), b""),
    ]
    members = [*base.members, *extra]
    if any(m.name == "checkpoint/core-1.img" for m in members):

        def edit(entries: list[object]) -> None:
            entries[0].tc.comm = ("sh" + junk).encode()[:15]  # type: ignore[attr-defined]

        with contextlib.suppress(ImageError, AttributeError):
            members = M.edit_image(members, "checkpoint/core-1.img", edit)
    return M.build(members)


MUTATORS: dict[str, Mutator] = {
    "tar-header": header_bytes,
    "tar-checksum": checksum,
    "tar-size": size_field,
    "tar-type": type_flag,
    "tar-truncate": truncate,
    "tar-end-marker": end_marker,
    "tar-pax": pax_headers,
    "tar-gnu-long": gnu_long,
    "tar-sparse": sparse,
    "tar-links": links,
    "tar-devices": devices,
    "tar-duplicates": duplicates,
    "compression": compressed,
    "criu-framing": image_framing,
    "criu-fields": image_fields,
    "criu-pstree": pstree,
    "metadata-json": metadata,
    "nested-tar": nested,
    "control-chars": controls,
}


# --- what the archive holds, read independently of kcheckpoint ---------------------------------


def contents(data: bytes) -> dict[str, tuple[str, str]] | None:
    """name -> (type, sha256 or link target) of a plain or compressed tar, read by the stdlib
    alone; None when the stdlib cannot read it whole (then there is no ground truth)."""
    try:
        raw = _decompress(data)
        out: dict[str, tuple[str, str]] = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            for info in tf:
                name = info.name.removeprefix("./").rstrip("/") or "."
                if info.isreg() and not info.issparse():
                    fh = tf.extractfile(info)
                    digest = hashlib.sha256(fh.read() if fh else b"").hexdigest()
                    out[name] = ("file", digest)
                else:
                    out[name] = (str(info.type), info.linkname)
        return out
    except Exception:  # anything the stdlib cannot read has no ground truth
        return None


def _decompress(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data
