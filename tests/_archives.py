"""Small synthetic archives for tests of damaged and hostile input."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path


def add_file(
    tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644, mtime: int = 1_764_000_000
) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    tf.addfile(info, io.BytesIO(data))


def add_link(tf: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


@contextlib.contextmanager
def rewritten(
    source: bytes,
    out: Path,
    edit: Callable[[str, bytes], bytes | None] = lambda _name, _data: None,
    *,
    tar_format: int = tarfile.DEFAULT_FORMAT,
) -> Iterator[tarfile.TarFile]:
    """Copy the archive ``source`` (its bytes) to ``out`` member by member, a file's data
    replaced by ``edit(name, data)`` unless that returns None; the writer is yielded so that the
    caller can add members after them."""
    with (
        tarfile.open(fileobj=io.BytesIO(source)) as src,
        tarfile.open(out, mode="w", format=tar_format) as dst,
    ):
        for info in src.getmembers():
            fh = src.extractfile(info)
            data = fh.read() if fh is not None else None
            if data is not None and (changed := edit(info.name, data)) is not None:
                data = changed
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
        yield dst


def minimal_checkpoint(extra: list[tuple[str, bytes]] | None = None, *, pages: int = 2) -> bytes:
    """A tiny Podman-like checkpoint: dumps, a few CRIU-named members and some 'pages'."""
    spec = {"annotations": {"io.container.manager": "libpod"}, "process": {"env": ["A=b"]}}
    config = {
        "id": "abc123",
        "name": "tiny",
        "rootfsImageName": "localhost/tiny:1",
        "createdTime": "2026-01-02T03:04:05.123456789Z",
        "runtime": "crun",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        add_file(tf, "config.dump", json.dumps(config).encode())
        add_file(tf, "spec.dump", json.dumps(spec).encode())
        add_file(tf, "checkpoint/core-1.img", b"\x19\x43\x56\x54" + b"\x00" * 12)
        add_file(tf, "checkpoint/pages-1.img", b"\xaa" * 4096 * pages)
        for name, data in extra or []:
            add_file(tf, name, data)
    return buf.getvalue()
