"""Problems the archive itself shows: stale pages, zombie leftovers, no pstree, empty checkpoint/.

Each archive is the real idle fixture, rebuilt with one change.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kcheckpoint.inspect.criu.checkpoint import inspect_path
from kcheckpoint.inspect.criu.images import read_image, write_image
from kcheckpoint.inspect.reader.source import open_input

from .conftest import IDLE

Edit = Callable[[str, bytes], bytes | None]


def rebuild(
    tmp: Path, source: Path, edit: Edit, add: list[tuple[str, bytes]] | None = None
) -> Path:
    """A plain tar of ``source`` with each file passed through ``edit`` (None drops it)."""
    out = tmp / "edited.tar"
    with (
        open_input(source, hash_input=False) as src,
        tarfile.open(fileobj=src.stream, mode="r|") as tin,
        tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tout,
    ):
        for m in tin:
            if not m.isfile():
                tout.addfile(m)
                continue
            fh = tin.extractfile(m)
            assert fh is not None
            data = edit(m.name, fh.read())
            if data is None:
                continue
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
        for name, data in add or []:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return out


def _keep(name: str, data: bytes) -> bytes | None:
    return data


def kinds(path: Path) -> dict[str, str]:
    return {p.source: p.kind for p in inspect_path(path).problems}


def test_stale_pages_file_is_reported(tmp_path: Path) -> None:
    path = rebuild(tmp_path, IDLE, _keep, add=[("checkpoint/pages-3.img", b"\0" * 4096)])
    result = inspect_path(path)
    assert result.unreferenced_images == ["pages-3.img"]
    assert kinds(path)["checkpoint/pages-3.img"] == "unreferenced-image"
    assert [p.memory.pages_id for p in result.processes if p.memory] == [1, 2]


def test_zombie_leftovers_are_reported(tmp_path: Path) -> None:
    def zombie(name: str, data: bytes) -> bytes | None:
        if name == "checkpoint/core-4.img":
            image = read_image("core-4.img", data)
            core = image.entries[0]
            core.tc.task_state = 2
            core.ClearField("thread_core")
            return write_image("CORE", [core])
        return data

    path = rebuild(tmp_path, IDLE, zombie)
    result = inspect_path(path)
    sleep = next(p for p in result.processes if p.pid == 4)
    assert sleep.state == "zombie" and sleep.files == [] and sleep.memory is None
    assert {"mm-4.img", "pagemap-4.img", "pages-2.img"} <= set(result.unreferenced_images)
    assert "pages-1.img" not in result.unreferenced_images


def test_missing_pstree(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    path = rebuild(tmp_path, IDLE, lambda n, d: None if n == "checkpoint/pstree.img" else d)
    result = inspect_path(path)
    assert kinds(path)["checkpoint/pstree.img"] == "missing"
    assert [p.pid for p in result.processes] == [1, 4]
    assert [p.cmdline[0] if p.cmdline else None for p in result.processes] == ["sh", "sleep"]
    run = cli("inspect", path)
    assert run.exit_code == 0 and "pstree.img" in run.stderr
    assert cli("inspect", path, "--strict").exit_code == 4


def test_empty_checkpoint_directory(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    def no_images(name: str, data: bytes) -> bytes | None:
        return None if name.startswith("checkpoint/") else data

    path = rebuild(tmp_path, IDLE, no_images, add=[("checkpoint/descriptors.json", b"[]")])
    result = inspect_path(path)
    assert result.processes == []
    assert any(p.kind == "empty" and p.source == "checkpoint/" for p in result.problems)
    run = cli("inspect", path, "--all", "-o", "json")
    assert run.exit_code == 0 and "Traceback" not in run.stderr


def test_damaged_image_is_a_problem_not_a_crash(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    def cut(name: str, data: bytes) -> bytes | None:
        return data[: len(data) // 2] if name == "checkpoint/files.img" else data

    path = rebuild(tmp_path, IDLE, cut)
    assert kinds(path)["checkpoint/files.img"] == "bad-image"
    run = cli("inspect", path, "--files")
    assert run.exit_code == 0 and "files.img" in run.stderr


def _pages_first(tmp: Path, source: Path, compress: bool) -> Path:
    """The archive with every pages-*.img member moved before the other members."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with (
        open_input(source, hash_input=False) as src,
        tarfile.open(fileobj=src.stream, mode="r|") as tin,
    ):
        for m in tin:
            fh = tin.extractfile(m) if m.isfile() else None
            members.append((m, fh.read() if fh else None))
    members.sort(key=lambda item: "/pages-" not in item[0].name)
    out = tmp / ("early.tar.gz" if compress else "early.tar")
    with tarfile.open(out, "w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as tout:
        for info, data in members:
            tout.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


@pytest.mark.parametrize("compress", [False, True], ids=["seekable", "stream"])
def test_pages_before_their_pagemap_still_give_argv(tmp_path: Path, compress: bool) -> None:
    path = _pages_first(tmp_path, IDLE, compress)
    result = inspect_path(path, show_secrets=True)
    assert result.input.read_mode == ("stream" if compress else "seekable")
    assert [p.cmdline for p in result.processes] == [
        ["sh", "-c", "echo hello > /tmp/state; while true; do sleep 1; done"],
        ["sleep", "1"],
    ]
    env = {e.name: e.value for e in result.processes[0].env or []}
    assert env["API_TOKEN"] == "sk_live_FAKE0123456789"
