"""CRIU image files: head and image magics, ``u32``-framed protobuf entries, extra payloads.

An image is ``[HEAD_MAGIC] MAGIC {SIZE PAYLOAD [EXTRA]}`` with 32-bit words in host byte order
(little-endian on every common architecture; big-endian on s390x, detected from the magic). The
file name, not the magic, chooses the message type: several images share one magic value.

Public API (the rest of ``kcheckpoint.inspect.criu`` builds on it)::

    image_type(name) -> ImageType | None      # what a checkpoint/ file name is
    read_image(name, data) -> Image           # .magic, .head, .entries (protobuf), .extras, .tail
    entries_of(name, data) -> list[Message]   # the decoded entries only
    write_image(magic, payloads, ...) -> bytes

Errors are ``kcheckpoint.errors`` ImageError subclasses: UnknownImageType, BadImageMagic,
TruncatedImage, ProtobufDecodeError. Nothing here reads more than the bytes it is given.

References:
    reference/criu-images.md §1 (framing, magics, names, extra payloads) and §5.2.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError, Message

from kcheckpoint._proto.criu import (
    core_pb2,
    files_pb2,
    inventory_pb2,
    mm_pb2,
    mnt_pb2,
    namespaces_pb2,
    pagemap_pb2,
    pstree_pb2,
    sockets_pb2,
    stats_pb2,
    tty_pb2,
)
from kcheckpoint.errors import (
    BadImageMagic,
    ProtobufDecodeError,
    TruncatedImage,
    UnknownImageType,
)

IMG_COMMON_MAGIC = 0x54564319
IMG_SERVICE_MAGIC = 0x55105940

#: Per-image magics (criu/include/magic.h), by CRIU's name.
MAGICS: dict[str, int] = {
    "INVENTORY": 0x58313116,
    "PSTREE": 0x50273030,
    "CORE": 0x55053847,
    "IDS": 0x54432030,
    "MM": 0x57492820,
    "PAGEMAP": 0x56084025,
    "FILES": 0x56303138,
    "FDINFO": 0x56213732,
    "FS": 0x51403912,
    "CREDS": 0x54023547,
    "TTY_INFO": 0x59453036,
    "TTY_FILES": 0x59433025,
    "TTY_DATA": 0x59413026,
    "INETSK": 0x56443851,
    "UNIXSK": 0x54373943,
    "PACKETSK": 0x60454618,
    "NETLINK_SK": 0x58005614,
    "SK_QUEUES": 0x56264026,
    "TCP_STREAM": 0x51465506,
    "NETDEV": 0x57373951,
    "NETNS": 0x55933752,
    "MNTS": 0x55563928,
    "UTSNS": 0x54473203,
    "IPC_VAR": 0x53115007,
    "IPCNS_SHM": 0x46283044,
    "IPCNS_MSG": 0x55453737,
    "IPCNS_SEM": 0x59573019,
    "TIMENS": 0x43114433,
    "USERNS": 0x55474906,
    "PIDNS": 0x61157326,
    "CGROUP": 0x59383330,
    "SECCOMP": 0x64413049,
    "APPARMOR": 0x59423047,
    "FILE_LOCKS": 0x54323616,
    "REMAP_FPATH": 0x59133954,
    "GHOST_FILE": 0x52583605,
    "MEMFD_INODE": 0x48453499,
    "PIPES_DATA": 0x56453709,
    "FIFO_DATA": 0x59333054,
    "CPUINFO": 0x61404013,
    "BPFMAP_FILE": 0x57506142,
    "BPFMAP_DATA": 0x64324033,
    "AUTOFS": 0x49353943,
    "BINFMT_MISC": 0x67343323,
    "PIDFD": 0x54435556,
    "STATS": 0x57093306,
    "IRMAP_CACHE": 0x57004059,
    "REG_FILES": 0x50363636,
    "EXT_FILES": 0x59255641,
    "NS_FILES": 0x61394011,
    "EVENTFD_FILE": 0x44523722,
    "EVENTPOLL_FILE": 0x45023858,
    "EVENTPOLL_TFD": 0x44433746,
    "SIGNALFD": 0x57323820,
    "INOTIFY_FILE": 0x48424431,
    "INOTIFY_WD": 0x54562009,
    "FANOTIFY_FILE": 0x55096122,
    "FANOTIFY_MARK": 0x56506035,
    "PIPES": 0x56513555,
    "FIFO": 0x58364939,
    "TUNFILE": 0x57143751,
    "TIMERFD": 0x50493712,
    "VMAS": 0x54123737,
    "SIGACT": 0x55344201,
    "RLIMIT": 0x57113925,
    "ITIMERS": 0x57464056,
    "POSIX_TIMERS": 0x52603957,
    "SIGNAL": 0x59255647,
}
_MAGIC_NAMES = {v: k for k, v in MAGICS.items()}
_HEADS = (IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC)
_FIRST_WORDS = frozenset((*_HEADS, MAGICS["INVENTORY"]))

#: The bytes following an entry, as a function of the entry.
ExtraSize = Callable[[Any], int]


@dataclass(frozen=True, slots=True)
class ImageType:
    """What a file in ``checkpoint/`` is, chosen by its name."""

    #: Short name of the kind of image ("core", "pagemap", "pages", "cgroup"...).
    kind: str
    #: CRIU's magic name, or None for raw images (pages, iproute2 dumps, tarballs).
    magic_name: str | None
    #: The message type of every entry; None when kcheckpoint does not decode this image.
    entry: type[Message] | None = None
    #: The message type of the first entry, when it differs (pagemap_head, ghost_file_entry).
    head: type[Message] | None = None
    #: Size of the raw bytes that follow each entry (pipes-data, sk-queues, tcp-stream).
    extra: ExtraSize | None = None
    #: False when the entries carry extra payloads kcheckpoint does not size (SysV IPC).
    framed: bool = True

    @property
    def magic(self) -> int | None:
        return MAGICS[self.magic_name] if self.magic_name else None

    @property
    def decodable(self) -> bool:
        return self.entry is not None


def _t(kind: str, magic: str | None, entry: type[Message] | None = None, **kw: Any) -> ImageType:
    return ImageType(kind, magic, entry, **kw)


_ANY = r"[^/]+"
_N = r"\d+"
#: A file name pattern and the type of the images it names.
_Named = tuple[str, ImageType]


def _one(kind: str, magic: str | None, entry: type[Message] | None = None, **kw: Any) -> _Named:
    """``KIND.img``: one image of its kind per checkpoint."""
    return rf"{kind}\.img", _t(kind, magic, entry, **kw)


def _each(kind: str, magic: str | None, entry: type[Message] | None = None, **kw: Any) -> _Named:
    """``KIND-ID.img``: one image per id (of a task, a namespace, a set of pages...)."""
    return rf"{kind}-{_N}\.img", _t(kind, magic, entry, **kw)


_REGISTRY: tuple[tuple[re.Pattern[str], ImageType], ...] = tuple(
    (re.compile(f"^(?:{pattern})$"), kind)
    for pattern, kind in (
        _one("inventory", "INVENTORY", inventory_pb2.inventory_entry),
        _one("pstree", "PSTREE", pstree_pb2.pstree_entry),
        _each("core", "CORE", core_pb2.core_entry),
        _each("ids", "IDS", core_pb2.task_kobj_ids_entry),
        _each("mm", "MM", mm_pb2.mm_entry),
        (
            rf"pagemap-(?:shmem-)?{_N}\.img",
            _t("pagemap", "PAGEMAP", pagemap_pb2.pagemap_entry, head=pagemap_pb2.pagemap_head),
        ),
        _each("pages", None),
        _one("files", "FILES", files_pb2.file_entry),
        _each("fdinfo", "FDINFO", files_pb2.fdinfo_entry),
        _each("fs", "FS", files_pb2.fs_entry),
        _each("creds", "CREDS", core_pb2.creds_entry),
        _one("tty-info", "TTY_INFO", tty_pb2.tty_info_entry),
        _one("tty", "TTY_FILES", files_pb2.tty_file_entry),
        _one("tty-data", "TTY_DATA", tty_pb2.tty_data_entry),
        _one("inetsk", "INETSK", sockets_pb2.inet_sk_entry),
        _one("unixsk", "UNIXSK", sockets_pb2.unix_sk_entry),
        _one("packetsk", "PACKETSK", sockets_pb2.packet_sock_entry),
        _one("netlinksk", "NETLINK_SK", sockets_pb2.netlink_sk_entry),
        _one("sk-queues", "SK_QUEUES", sockets_pb2.sk_packet_entry, extra=lambda e: e.length),
        (
            rf"tcp-stream-{_ANY}\.img",
            _t(
                "tcp-stream",
                "TCP_STREAM",
                sockets_pb2.tcp_stream_entry,
                extra=lambda e: e.inq_len + e.outq_len,
            ),
        ),
        _each("mountpoints", "MNTS", mnt_pb2.mnt_entry),
        _each("utsns", "UTSNS", namespaces_pb2.utsns_entry),
        _each("timens", "TIMENS", namespaces_pb2.timens_entry),
        _each("userns", "USERNS", namespaces_pb2.userns_entry),
        _each("pidns", "PIDNS", namespaces_pb2.pidns_entry),
        (r"stats-(?:dump|restore)", _t("stats", "STATS", stats_pb2.stats_entry)),
        _one("reg-files", "REG_FILES", files_pb2.reg_file_entry),
        _one("pipes", "PIPES", files_pb2.pipe_entry),
        _one("fifo", "FIFO", files_pb2.fifo_entry),
        _one("pipes-data", "PIPES_DATA", files_pb2.pipe_data_entry, extra=lambda e: e.bytes),
        _one("fifo-data", "FIFO_DATA", files_pb2.pipe_data_entry, extra=lambda e: e.bytes),
        (
            rf"ghost-file-{_ANY}\.img",
            _t(
                "ghost-file",
                "GHOST_FILE",
                files_pb2.ghost_chunk_entry,
                head=files_pb2.ghost_file_entry,
                extra=lambda e: e.len,
            ),
        ),
        _one("memfd", "MEMFD_INODE", files_pb2.memfd_inode_entry),
        _one("remap-fpath", "REMAP_FPATH", files_pb2.remap_file_path_entry),
        # Known CRIU images that kcheckpoint checks but does not decode.
        _one("cgroup", "CGROUP"),
        _one("seccomp", "SECCOMP"),
        _one("apparmor", "APPARMOR"),
        _each("netdev", "NETDEV"),
        _each("netns", "NETNS"),
        _each("ipcns-var", "IPC_VAR"),
        _each("ipcns-shm", "IPCNS_SHM", framed=False),
        _each("ipcns-msg", "IPCNS_MSG", framed=False),
        _each("ipcns-sem", "IPCNS_SEM", framed=False),
        _one("filelocks", "FILE_LOCKS"),
        _one("cpuinfo", "CPUINFO"),
        _one("pidfd", "PIDFD"),
        _one("bpfmap-file", "BPFMAP_FILE"),
        _one("bpfmap-data", "BPFMAP_DATA", framed=False),
        _each("autofs", "AUTOFS"),
        (rf"binfmt-misc(?:-{_N})?\.img", _t("binfmt-misc", "BINFMT_MISC")),
        (r"irmap-cache", _t("irmap-cache", "IRMAP_CACHE")),
        # Raw images: iproute2, iptables and tar output stored as they are.
        (
            rf"(?:ifaddr|route6?|rule|ip6?tables|nftables|netns-ct|netns-exp)-{_N}\.img",
            _t("network-raw", None),
        ),
        (rf"tmpfs-(?:dev-)?{_N}\.tar\.gz\.img", _t("tmpfs", None)),
    )
)


def image_type(name: str) -> ImageType | None:
    """The type of a checkpoint file, by its base name (a directory part is ignored)."""
    base = name.rsplit("/", 1)[-1]
    for pattern, kind in _REGISTRY:
        if pattern.match(base):
            return kind
    return None


@dataclass(slots=True)
class Image:
    """A decoded protobuf image."""

    name: str
    type: ImageType
    #: The per-image magic found in the file.
    magic: int
    #: IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, or None (inventory.img has no head magic).
    head_magic: int | None
    byteorder: str
    #: The first entry when the image has a header entry (pagemap_head, ghost_file_entry).
    head: Any = None
    #: The entries, as protobuf messages of ``type.entry``.
    entries: list[Any] = field(default_factory=list)
    #: The raw bytes after each entry, for images with extra payloads (else empty).
    extras: list[bytes] = field(default_factory=list)
    #: Bytes after the last entry that are not framed (a ghost file's unchunked contents).
    tail: bytes = b""

    @property
    def magic_name(self) -> str:
        return _MAGIC_NAMES.get(self.magic, f"0x{self.magic:08x}")


def read_magic(data: bytes, label: str = "image") -> tuple[int | None, int, str, int]:
    """``(head_magic, magic, byteorder, offset of the first entry)``; BadImageMagic if unknown."""
    if len(data) < 4:
        raise TruncatedImage(f"{label}: {len(data)} bytes is too short for a magic")
    for order, fmt in (("little", "<I"), ("big", ">I")):
        (first,) = struct.unpack_from(fmt, data, 0)
        if first not in _FIRST_WORDS:
            continue
        if first not in _HEADS:
            return None, first, order, 4
        if len(data) < 8:
            raise TruncatedImage(f"{label}: the image ends after its head magic")
        (magic,) = struct.unpack_from(fmt, data, 4)
        return first, magic, order, 8
    raise BadImageMagic(f"{label}: unknown magic 0x{int.from_bytes(data[:4], 'little'):08x}")


def _frame(data: bytes, offset: int, fmt: str, label: str) -> tuple[bytes, int]:
    """The payload of the size-prefixed entry at ``offset``, and the offset after it."""
    end = len(data)
    if end - offset < 4:
        raise TruncatedImage(f"{label}: entry size cut short at byte {offset}")
    (size,) = struct.unpack_from(fmt, data, offset)
    start = offset + 4
    if size > end - start:
        raise TruncatedImage(
            f"{label}: entry at byte {offset} claims {size} bytes, {end - start} remain"
        )
    return data[start : start + size], start + size


def split_frames(
    data: bytes, offset: int, byteorder: str = "little", label: str = "image"
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` of each size-prefixed entry from ``offset`` to the end."""
    fmt = "<I" if byteorder == "little" else ">I"
    while offset < len(data):
        payload, after = _frame(data, offset, fmt, label)
        yield offset, payload
        offset = after


def _parse(message: type[Message], payload: bytes, label: str, offset: int) -> Any:
    msg = message()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ProtobufDecodeError(
            f"{label}: entry at byte {offset} is not a valid {message.DESCRIPTOR.name}"
        ) from exc
    return msg


def read_image(name: str, data: bytes) -> Image:
    """Decode a protobuf CRIU image whose file name is ``name`` (e.g. ``core-1.img``)."""
    kind = image_type(name)
    if kind is None:
        raise UnknownImageType(f"{name}: not a CRIU image kcheckpoint knows")
    if kind.magic is None:
        raise UnknownImageType(f"{name}: a raw image ({kind.kind}), not protobuf entries")
    head_magic, magic, order, offset = read_magic(data, name)
    if magic != kind.magic:
        found = _MAGIC_NAMES.get(magic, f"0x{magic:08x}")
        raise BadImageMagic(f"{name}: magic {found}, expected {kind.magic_name}")
    image = Image(name=name, type=kind, magic=magic, head_magic=head_magic, byteorder=order)
    if kind.entry is None or not kind.framed:
        return image
    fmt = "<I" if order == "little" else ">I"
    end = len(data)
    if kind.head is not None and offset < end:
        payload, after = _frame(data, offset, fmt, name)
        image.head = _parse(kind.head, payload, name, offset)
        offset = after
        if kind.kind == "ghost-file" and not image.head.chunks:
            image.tail = data[offset:]
            return image
    while offset < end:
        payload, after = _frame(data, offset, fmt, name)
        msg = _parse(kind.entry, payload, name, offset)
        image.entries.append(msg)
        if kind.extra is not None:
            extra = int(kind.extra(msg))
            if extra > end - after:
                raise TruncatedImage(
                    f"{name}: entry at byte {offset} is followed by {extra} bytes of data, "
                    f"{end - after} remain"
                )
            image.extras.append(data[after : after + extra])
            after += extra
        offset = after
    return image


def entries_of(name: str, data: bytes) -> list[Any]:
    """The decoded entries of an image (without its header entry)."""
    return read_image(name, data).entries


def write_image(
    magic: int | str,
    payloads: Sequence[bytes | Message],
    *,
    head_magic: int | None = IMG_COMMON_MAGIC,
    byteorder: str = "little",
    extras: Sequence[bytes] | None = None,
) -> bytes:
    """Frame entries as CRIU does (used by tests and to build sample images)."""
    value = MAGICS[magic] if isinstance(magic, str) else magic
    fmt = "<I" if byteorder == "little" else ">I"
    out = bytearray()
    if head_magic is not None:
        out += struct.pack(fmt, head_magic)
    out += struct.pack(fmt, value)
    for i, item in enumerate(payloads):
        raw = item.SerializeToString() if isinstance(item, Message) else bytes(item)
        out += struct.pack(fmt, len(raw)) + raw
        if extras is not None and i < len(extras):
            out += extras[i]
    return bytes(out)
