"""Sockets from files.img: unix, inet, packet and netlink, with one-line descriptions.

References:
    reference/criu-images.md §2.7 (socket messages; address words are packed little-endian into
    network-order bytes), §4.2 (``crit x fds`` descriptions).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

from .model import Socket
from .tables import FAMILIES, FD_TYPES, IP_PROTOCOLS, SK_STATES, SOCK_TYPES, name
from .text import socket_name, text


def _address(words: list[int] | Any, family: int) -> str:
    raw = b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in words)
    if family == 10 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if len(raw) >= 4:
        return str(ipaddress.IPv4Address(raw[:4]))
    return "?"


def _endpoint(words: Any, port: int, family: int) -> str:
    addr = _address(words, family) if len(words) else ("::" if family == 10 else "0.0.0.0")
    return f"[{addr}]:{port}" if family == 10 else f"{addr}:{port}"


#: Socket with file_id and the buffer sizes given: what every family's reader completes.
_Make = Callable[..., Socket]


def _unix(u: Any, make: _Make) -> Socket:
    return make(
        ino=u.ino,
        family="unix",
        type=name(SOCK_TYPES, u.type),
        protocol=None,
        state=name(SK_STATES, u.state),
        local=socket_name(u.name) or None,
        peer=None,
        peer_ino=u.peer or None,
    )


def _inet(s: Any, make: _Make) -> Socket:
    return make(
        ino=s.ino,
        family=name(FAMILIES, s.family),
        type=name(SOCK_TYPES, s.type),
        protocol=name(IP_PROTOCOLS, s.proto),
        state=name(SK_STATES, s.state),
        local=_endpoint(s.src_addr, s.src_port, s.family),
        peer=_endpoint(s.dst_addr, s.dst_port, s.family),
        peer_ino=None,
    )


def _packet(p: Any, make: _Make) -> Socket:
    ethertype = struct.unpack(">H", struct.pack("<H", p.protocol & 0xFFFF))[0]
    return make(
        ino=None,
        family="packet",
        type=name(SOCK_TYPES, p.type),
        protocol=f"0x{ethertype:04x}",
        state=None,
        local=f"ifindex {p.ifindex}" if p.ifindex else None,
        peer=None,
        peer_ino=None,
    )


def _netlink(n: Any, make: _Make) -> Socket:
    return make(
        ino=n.ino,
        family="netlink",
        type="RAW",
        protocol=str(n.protocol),
        state=name(SK_STATES, n.state) if n.state else None,
        local=f"portid {n.portid}",
        peer=f"portid {n.dst_portid}" if n.dst_portid else None,
        peer_ino=None,
    )


#: file_entry type -> the field that holds its socket message, and how to read that message.
_BY_FILE_TYPE: dict[int, tuple[str, Callable[[Any, _Make], Socket]]] = {
    4: ("isk", _inet),  # INETSK
    5: ("usk", _unix),  # UNIXSK
    10: ("psk", _packet),  # PACKETSK
    13: ("nlsk", _netlink),  # NETLINKSK
}
SOCKET_TYPES = set(_BY_FILE_TYPE)


def socket_of(entry: Any) -> Socket | None:
    """The Socket of a file_entry, or None when it is not a socket."""
    kind = _BY_FILE_TYPE.get(entry.type)
    if kind is None or not entry.HasField(kind[0]):
        return None
    field, read = kind
    msg = getattr(entry, field)
    opts = msg.opts if msg.HasField("opts") else None
    make = partial(
        Socket,
        file_id=entry.id,
        send_buf=opts.so_sndbuf if opts is not None else None,
        recv_buf=opts.so_rcvbuf if opts is not None else None,
    )
    return read(msg, make)


def describe(entry: Any | None, ftype: int, file_id: int) -> tuple[str, str | None]:
    """``(description, path)`` of an open file, as ``crit x DIR fds`` words it where it can."""
    if entry is None:
        return f"{name(FD_TYPES, ftype)}.{file_id} (not in files.img)", None
    if ftype == 1 and entry.HasField("reg"):
        path = text(entry.reg.name) or ""
        return path, path
    if ftype == 2 and entry.HasField("pipe"):
        return f"pipe[{entry.pipe.pipe_id}]", None
    if ftype == 3 and entry.HasField("fifo"):
        return f"fifo[{entry.fifo.pipe_id}]", None
    if ftype == 5 and entry.HasField("usk"):
        u = entry.usk
        label = socket_name(u.name)
        tail = f" {label}" if label else ""
        return f"unix[{u.ino} ({u.peer}){tail}]", label or None
    sock = socket_of(entry)
    if sock is not None:
        if sock.family.startswith("inet"):
            return (
                f"{sock.protocol}[{sock.ino}] {sock.local} -> {sock.peer} ({sock.state})",
                None,
            )
        return f"{sock.family}[{sock.ino or entry.id}] {sock.local or ''}".rstrip(), None
    if ftype == 11 and entry.HasField("tty"):
        return f"tty[{entry.tty.tty_info_id}]", None
    return f"{name(FD_TYPES, ftype)}.{file_id}", None
