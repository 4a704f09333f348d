"""Decoding details the fixtures do not exercise: inet/packet sockets, CRIU 4.2 page counts,
legacy pagemap flags, capability and mount-flag names, argv/env splitting."""

from __future__ import annotations

from kcheckpoint._proto.criu import files_pb2, mm_pb2, pagemap_pb2, sockets_pb2
from kcheckpoint.inspect.criu.decode import page_size, pagemap_pages, split_args, split_env
from kcheckpoint.inspect.criu.images import read_image, write_image
from kcheckpoint.inspect.criu.sockets import describe, socket_of
from kcheckpoint.inspect.criu.tables import caps, mount_flags


def _inet(**kw: object) -> files_pb2.file_entry:
    return files_pb2.file_entry(type=4, id=7, isk=sockets_pb2.inet_sk_entry(**kw))


def test_tcp_listener_ipv4() -> None:
    entry = _inet(
        id=7, ino=99, family=2, type=1, proto=6, state=10, src_port=8080,
        src_addr=[0x0100007F], opts=sockets_pb2.sk_opts_entry(so_sndbuf=1, so_rcvbuf=2),
    )  # fmt: skip
    sock = socket_of(entry)
    assert sock is not None
    assert (sock.family, sock.protocol, sock.state) == ("inet", "tcp", "LISTEN")
    assert (sock.local, sock.peer) == ("127.0.0.1:8080", "0.0.0.0:0")
    assert (sock.send_buf, sock.recv_buf) == (1, 2)
    assert describe(entry, 4, 7)[0] == "tcp[99] 127.0.0.1:8080 -> 0.0.0.0:0 (LISTEN)"


def test_udp_ipv6_connected() -> None:
    entry = _inet(
        ino=5, family=10, type=2, proto=17, state=1, src_port=53, dst_port=5353,
        src_addr=[0, 0, 0, 0x01000000], dst_addr=[0x000080FE, 0, 0, 0x01000000],
    )  # fmt: skip
    sock = socket_of(entry)
    assert sock is not None
    assert (sock.family, sock.type, sock.protocol) == ("inet6", "DGRAM", "udp")
    assert (sock.local, sock.peer) == ("[::1]:53", "[fe80::1]:5353")


def test_packet_socket() -> None:
    entry = files_pb2.file_entry(
        type=10, id=3, psk=sockets_pb2.packet_sock_entry(id=3, type=3, protocol=0x0300, ifindex=2)
    )
    sock = socket_of(entry)
    assert sock is not None
    assert (sock.family, sock.type, sock.protocol, sock.local) == (
        "packet",
        "RAW",
        "0x0003",  # ETH_P_ALL, stored in network byte order
        "ifindex 2",
    )


def test_abstract_unix_name() -> None:
    entry = files_pb2.file_entry(
        type=5, id=1, usk=sockets_pb2.unix_sk_entry(ino=4, peer=0, name=b"\0bus\0", type=5)
    )
    sock = socket_of(entry)
    assert sock is not None and sock.local == "@bus" and sock.type == "SEQPACKET"
    assert describe(entry, 5, 1)[0] == "unix[4 (0) @bus]"


def test_unknown_fd_type_and_missing_file_entry() -> None:
    assert describe(files_pb2.file_entry(type=20, id=9), 20, 9)[0] == "PIDFD.9"
    assert describe(None, 1, 9)[0] == "REG.9 (not in files.img)"


def _entries(*kw: dict[str, object]) -> list[pagemap_pb2.pagemap_entry]:
    blob = write_image("PAGEMAP", [pagemap_pb2.pagemap_head(pages_id=1)] + [
        pagemap_pb2.pagemap_entry(**k) for k in kw
    ])  # fmt: skip
    return read_image("pagemap-1.img", blob).entries


def test_pagemap_counts_criu_3_and_4() -> None:
    entries = _entries(
        {"vaddr": 0x1000, "compat_nr_pages": 3},  # no flags: PE_PRESENT (CRIU < 3.5)
        {"vaddr": 0x4000, "compat_nr_pages": 0, "nr_pages": 5, "flags": 6},  # 4.2: field 5
        {"vaddr": 0x9000, "compat_nr_pages": 2, "in_parent": True},  # legacy PE_PARENT
        {"vaddr": 0xB000, "compat_nr_pages": 4, "flags": 2},  # lazy, not present
        {"vaddr": 0xF000, "compat_nr_pages": 1, "flags": 1},  # PE_PARENT
    )
    assert pagemap_pages(entries) == (8, 3, 4)


def test_page_size_from_auxv() -> None:
    assert page_size(mm_pb2.mm_entry(mm_saved_auxv=[3, 64, 6, 65536, 0, 0])) == 65536
    assert page_size(mm_pb2.mm_entry()) == 4096
    assert page_size(None) == 4096


def test_capability_and_mount_flag_names() -> None:
    assert caps([0xA80425FB, 0]) == [
        "chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
        "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap",
    ]  # fmt: skip
    assert caps([0, 1 << 7]) == ["bpf"]  # bit 39 = 32 + 7, in the second word
    assert caps([0, 1 << 31]) == ["cap_63"]
    assert mount_flags(0x20000F) == "ro,nosuid,nodev,noexec,relatime"
    assert mount_flags(0x10000000) == "0x10000000"


def test_argv_and_env_splitting() -> None:
    assert split_args(b"python3\0/app/app.py\0") == ["python3", "/app/app.py"]
    assert split_args(b"a\0\0b\0") == ["a", "", "b"]
    assert split_args(b"") == []
    env = split_env(b"A=1\0B==2\0\0NOEQ\0\xff=x\0", show_values=True)
    assert [(e.name, e.value) for e in env] == [
        ("A", "1"),
        ("B", "=2"),
        ("NOEQ", None),
        ("\\xff", "x"),
    ]
    hidden = split_env(b"TOKEN=secret\0", show_values=False)
    assert hidden[0].value is None and hidden[0].redacted
