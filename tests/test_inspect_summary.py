"""``summary`` counts processes from pstree.img (not core images) and shows the main command."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from kcheckpoint.inspect.summary import summarize_path

from .conftest import IDLE, PODMAN_T1
from .test_inspect_problems import rebuild


def test_main_command_and_process_count() -> None:
    s = summarize_path(PODMAN_T1)
    assert (s.processes, s.main_command) == (2, "python3 /app/app.py")


def test_threads_are_not_counted_as_processes(tmp_path: Path) -> None:
    from kcheckpoint.inspect.criu.images import read_image, write_image

    def edit(name: str, data: bytes) -> bytes | None:
        if name == "checkpoint/pstree.img":
            tree = read_image("pstree.img", data).entries
            tree[0].threads.append(9)  # pid 1 gains a thread, with its own core image
            return write_image("PSTREE", list(tree))
        return data

    core = _member(IDLE, "checkpoint/core-1.img")
    path = rebuild(tmp_path, IDLE, edit, add=[("checkpoint/core-9.img", core)])
    s = summarize_path(path)
    assert s.processes == 2  # pid 1's thread 9 has a core image but is not a process


def test_summary_json_has_the_command(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", IDLE, "--format", "json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)["archives"][0]["summary"]
    assert summary["main_command"].startswith("sh -c ")
    text = cli("summary", PODMAN_T1)
    assert "COMMAND" in text.stdout and "python3 /app/app.py" in text.stdout


def _member(path: Path, name: str) -> bytes:
    from kcheckpoint.inspect.reader.source import open_input

    with (
        open_input(path, hash_input=False) as src,
        tarfile.open(fileobj=src.stream, mode="r|") as tf,
    ):
        for m in tf:
            if m.name == name:
                fh = tf.extractfile(m)
                assert fh is not None
                return fh.read()
    raise AssertionError(name)
