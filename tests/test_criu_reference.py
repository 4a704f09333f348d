"""Differential tests: our decoder against CRIU's own ``crit`` (Debian criu 3.17).

Normalisation applied before comparing (ours -> crit's form), and why:

1. Only fields our .proto declares are compared: crit also prints registers, FPU state and the
   other messages we leave undeclared (they stay unknown fields for us).
2. crit prints enum fields by name (``"REG"``, ``"X86_64"``, ``"filter"``); we keep integers
   (proto/criu/README.md). The names are mapped back with the tables below, from
   reference/criu-images.md §2.
3. crit 3.17 calls pagemap field 2 ``nr_pages``; we call it ``compat_nr_pages`` (field 5 is the
   4.2 ``nr_pages``, absent from these CRIU 4.1 images).
4. Kernel strings are ``bytes`` for us and ``string`` for crit: we compare their UTF-8 text.
   Fields that are ``bytes`` for crit too are base64 in its JSON, except the unix socket name,
   which is quoted-printable (``/tmp/app.sock=00``): both are decoded to bytes.
5. Presence is compared as is: both sides list only the fields present on the wire.
6. Fields that crit 3.17's schema does not have (added in CRIU 3.18-4.2, such as
   ``thread_core.cg_set`` or ``creds.cap_amb``) are unknown fields to crit, so they are
   dropped from our side; the test checks that each of them is one our schema adds on purpose.

``crit x DIR ps`` and ``crit x DIR fds`` are compared with our process list and open files;
crit prints a unix socket's name quoted-printable there too, so ``=00`` is decoded.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import quopri
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kcheckpoint.inspect.criu.checkpoint import image_set, inspect_scan
from kcheckpoint.inspect.criu.images import image_type, read_image
from kcheckpoint.inspect.reader.scan import scan_archive

from ._criu import extract
from .conftest import ALL_FIXTURES, fixture_id

CRIT = shutil.which("crit") or "/usr/bin/crit"
HAVE_CRIT = os.path.exists(CRIT)

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not HAVE_CRIT, reason="crit (Debian package criu) is not installed"),
]

_ENUMS: dict[str, dict[str, int]] = {
    "march": {
        "UNKNOWN": 0,
        "X86_64": 1,
        "ARM": 2,
        "AARCH64": 3,
        "PPC64": 4,
        "S390": 5,
        "MIPS": 6,
        "LOONGARCH64": 7,
        "RISCV64": 8,
    },
    "fd_types": {
        "UND": 0,
        "REG": 1,
        "PIPE": 2,
        "FIFO": 3,
        "INETSK": 4,
        "UNIXSK": 5,
        "EVENTFD": 6,
        "EVENTPOLL": 7,
        "INOTIFY": 8,
        "SIGNALFD": 9,
        "PACKETSK": 10,
        "TTY": 11,
        "FANOTIFY": 12,
        "NETLINKSK": 13,
        "NS": 14,
        "TUNF": 15,
        "EXT": 16,
        "TIMERFD": 17,
        "MEMFD": 18,
        "BPFMAP": 19,
        "PIDFD": 20,
        "CTL_TTY": 65534,
        "AUTOFS_PIPE": 65535,
    },
    "seccomp_mode": {"disabled": 0, "strict": 1, "filter": 2},
    "lsmtype": {"NO_LSM": 0, "SELINUX": 1, "APPARMOR": 2},
    "sk_shutdown": {"NONE": 0, "READ": 1, "WRITE": 2, "BOTH": 3},
    "tty_type": {
        "UNKNOWN": 0,
        "PTY": 1,
        "CONSOLE": 2,
        "VT": 3,
        "CTTY": 4,
        "EXT_TTY": 5,
        "SERIAL": 6,
    },
    "remap_type": {"LINKED": 0, "GHOST": 1, "PROCFS": 2},
}
#: (message, field) -> enum table, for the fields CRIU declares with an enum type.
_ENUM_FIELDS = {
    ("core_entry", "mtype"): "march",
    ("fdinfo_entry", "type"): "fd_types",
    ("file_entry", "type"): "fd_types",
    ("thread_core_entry", "seccomp_mode"): "seccomp_mode",
    ("task_core_entry", "old_seccomp_mode"): "seccomp_mode",
    ("inventory_entry", "lsmtype"): "lsmtype",
    ("unix_sk_entry", "shutdown"): "sk_shutdown",
    ("inet_sk_entry", "shutdown"): "sk_shutdown",
    ("tty_info_entry", "type"): "tty_type",
    ("remap_file_path_entry", "remap_type"): "remap_type",
}
#: Fields that are bytes in crit's schema too (base64 in its JSON, or quoted-printable).
_CRIT_BYTES = {
    ("unix_sk_entry", "name"): "quopri",
    ("siginfo_entry", "siginfo"): "base64",
    ("creds_entry", "apparmor_data"): "base64",
    ("tty_data_entry", "data"): "base64",
    ("packet_mclist", "addr"): "base64",
}


#: Fields newer than crit 3.17 that these CRIU 4.1 images carry (reference/criu-images.md §5.1).
NEWER_THAN_CRIT = {
    ("thread_core_entry", "cg_set"),
    ("creds_entry", "cap_amb"),
    ("creds_entry", "no_new_privs"),
    ("task_core_entry", "stop_signo"),
    ("task_core_entry", "membarrier_registration_mask"),
    ("inventory_entry", "plugins_entry"),
    ("inventory_entry", "dump_criu_run_id"),
    ("inet_sk_entry", "tcp_opts"),
    ("ip_opts_entry", "tos"),
    ("ip_opts_entry", "ttl"),
    ("ip_opts_entry", "pktinfo"),
    ("memfd_inode_entry", "mode"),
}


def ours(msg: Any, schema: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A message as a dict of the fields present on the wire (and known to ``schema``)."""
    out: dict[str, Any] = {}
    name = msg.DESCRIPTOR.name
    for fd, value in msg.ListFields():
        if schema is not None and fd.name not in schema.get(name, [fd.name]):
            assert (name, fd.name) in NEWER_THAN_CRIT, (name, fd.name)
            continue
        if fd.message_type is not None:
            out[fd.name] = (
                [ours(v, schema) for v in value] if _repeated(fd) else ours(value, schema)
            )
        else:
            out[fd.name] = list(value) if _repeated(fd) else value
    return out


def _repeated(fd: Any) -> bool:
    return bool(fd.is_repeated)


def crits(value: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """crit's JSON of a message, normalised to our form (see the module docstring)."""
    out: dict[str, Any] = {}
    msg_name = descriptor.name
    for key, item in value.items():
        if msg_name == "pagemap_entry" and key == "nr_pages":
            key = "compat_nr_pages"
        fd = descriptor.fields_by_name.get(key)
        if fd is None:
            continue
        if fd.message_type is not None:
            out[key] = (
                [crits(v, fd.message_type) for v in item]
                if _repeated(fd)
                else crits(item, fd.message_type)
            )
            continue
        out[key] = (
            [_scalar(msg_name, fd, v) for v in item]
            if _repeated(fd)
            else _scalar(msg_name, fd, item)
        )
    return out


def _scalar(msg_name: str, fd: Any, value: Any) -> Any:
    enum = _ENUM_FIELDS.get((msg_name, fd.name))
    if enum is not None and isinstance(value, str):
        return _ENUMS[enum][value]
    if fd.type == fd.TYPE_BYTES and isinstance(value, str):
        kind = _CRIT_BYTES.get((msg_name, fd.name))
        if kind == "quopri":
            return quopri.decodestring(value.encode())
        if kind == "base64":
            return base64.b64decode(value)
        return value.encode("utf-8", "surrogateescape")
    return value


@functools.cache
def _extracted(path: Path, tmp: Path) -> Path:
    return extract(path, tmp / path.name)


@functools.cache
def _crit_interpreter() -> str:
    first = Path(CRIT).read_text().splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else "python3"


def _batch(files: list[Path]) -> dict[str, Any]:
    helper = Path(__file__).with_name("_crit_batch.py")
    result = subprocess.run(
        [_crit_interpreter(), str(helper), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crit")


def _decodable(directory: Path) -> list[Path]:
    files = [*sorted((directory / "checkpoint").iterdir()), directory / "stats-dump"]
    out = []
    for f in files:
        kind = image_type(f.name)
        if f.exists() and kind is not None and kind.decodable and kind.framed:
            out.append(f)
    return out


@pytest.mark.parametrize("archive", ALL_FIXTURES, ids=fixture_id)
def test_every_decodable_image_equals_crit_decode(archive: Path, workdir: Path) -> None:
    directory = _extracted(archive, workdir)
    files = _decodable(directory)
    assert len(files) >= 15
    reference = _batch(files)
    schema = reference["__schema__"]
    # crit 3.17 calls pagemap field 2 nr_pages (normalisation 3)
    schema["pagemap_entry"] = [
        "compat_nr_pages" if f == "nr_pages" else f for f in schema["pagemap_entry"]
    ]
    compared = 0
    for f in files:
        theirs = reference[str(f)]
        assert "error" not in theirs, (f.name, theirs)
        image = read_image(f.name, f.read_bytes())
        entries = ([image.head] if image.head is not None else []) + image.entries
        assert len(entries) == len(theirs["entries"]), f.name
        for i, (mine, crit_entry) in enumerate(zip(entries, theirs["entries"], strict=True)):
            assert ours(mine, schema) == crits(crit_entry, mine.DESCRIPTOR), (f.name, i)
            compared += 1
    assert compared > 50


def test_batch_decoding_is_crit_decode(workdir: Path) -> None:
    directory = _extracted(ALL_FIXTURES[1], workdir)
    sample = [directory / "checkpoint" / n for n in ("pstree.img", "files.img", "core-1.img")]
    batch = _batch(sample)
    batch.pop("__schema__")
    for f in sample:
        cli = subprocess.run([CRIT, "decode", "-i", str(f)], capture_output=True, check=True)
        assert json.loads(cli.stdout) == batch[str(f)]


def _crit_x(directory: Path, what: str) -> str:
    result = subprocess.run(
        [CRIT, "x", str(directory / "checkpoint"), what], capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.parametrize("archive", ALL_FIXTURES, ids=fixture_id)
def test_process_list_equals_crit_x_ps(archive: Path, workdir: Path) -> None:
    directory = _extracted(archive, workdir)
    rows = []
    for line in _crit_x(directory, "ps").splitlines()[1:]:
        pid, pgid, sid, comm = line.split()
        rows.append((int(pid), int(pgid), int(sid), comm))
    scan = scan_archive(archive, read_images=True)
    procs = inspect_scan(scan).processes
    assert [(p.pid, p.pgid, p.sid, p.comm) for p in procs] == rows


@pytest.mark.parametrize("archive", ALL_FIXTURES, ids=fixture_id)
def test_open_files_equal_crit_x_fds(archive: Path, workdir: Path) -> None:
    directory = _extracted(archive, workdir)
    expected: dict[int, list[tuple[str, str]]] = {}
    pid = 0
    for line in _crit_x(directory, "fds").splitlines():
        if re.fullmatch(r"\d+", line.strip()):
            pid = int(line)
            expected[pid] = []
        elif line.strip():
            fd, _, desc = line.strip().partition(": ")
            desc = quopri.decodestring(desc.encode()).decode().replace("\0", "")
            expected[pid].append((fd, desc))
    procs = inspect_scan(scan_archive(archive, read_images=True)).processes
    got = {p.pid: [(f.fd, f.description) for f in p.files] for p in procs}
    assert got == expected


def test_image_set_sees_every_image(workdir: Path) -> None:
    images = image_set(scan_archive(ALL_FIXTURES[1], read_images=True))
    assert "pages-1.img" in images.members and "pages-1.img" not in images.files
