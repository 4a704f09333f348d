"""A damaged side never crashes diff: each damage becomes a problem, the rest is compared."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcheckpoint.errors import KCheckpointError
from kcheckpoint.inspect.diff import diff_archives
from kcheckpoint.inspect.reader.scan import scan_archive
from kcheckpoint.render.diff import diff_text
from kcheckpoint.render.jsonout import dumps

from .conftest import IDLE
from .test_inspect_problems import rebuild


@functools.cache
def _names() -> list[str]:
    return sorted(m.name for m in scan_archive(IDLE).members if m.name.startswith("checkpoint/"))


@functools.cache
def _plain_idle() -> Path:
    out = Path(tempfile.mkdtemp(prefix="kc-diff-robust-"))
    return rebuild(out, IDLE, lambda _name, data: data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(_names()), data=st.data())
def test_damaged_member_against_the_original(name: str, data: st.DataObject) -> None:
    cut = data.draw(st.floats(0, 1))
    flip = data.draw(st.booleans())

    def edit(member: str, blob: bytes) -> bytes | None:
        if member.removeprefix("./") != name or not blob:
            return blob
        if flip:
            pos = int(cut * (len(blob) - 1))
            return blob[:pos] + bytes([blob[pos] ^ 0x41]) + blob[pos + 1 :]
        return blob[: int(cut * len(blob))]

    with tempfile.TemporaryDirectory() as tmp:
        damaged = rebuild(Path(tmp), IDLE, edit)
        for a, b in ((_plain_idle(), damaged), (damaged, IDLE)):
            try:
                d = diff_archives(str(a), str(b))
            except KCheckpointError:
                continue  # one error line and its exit code (e.g. an empty nested tar)
            diff_text(d)
            dumps(d)


def test_truncated_pages_file_is_a_difference_not_a_crash(tmp_path: Path) -> None:
    def edit(member: str, blob: bytes) -> bytes | None:
        return blob[: len(blob) // 2] if member.endswith("pages-1.img") else blob

    damaged = rebuild(tmp_path, IDLE, edit)
    d = diff_archives(str(_plain_idle()), str(damaged))
    assert any(p.side == "b" and "pages-1.img" in p.source for p in d.problems)
    assert d.differences > 0


def test_pages_cut_short_count_the_same_in_every_plan(tmp_path: Path) -> None:
    """Pages both pagemaps hold but one pages file lacks are changed, whatever the plan."""
    import gzip
    import shutil

    def edit(member: str, blob: bytes) -> bytes | None:
        return blob[: len(blob) // 2] if member.endswith("pages-1.img") else blob

    damaged = rebuild(tmp_path, IDLE, edit)
    damaged_gz = tmp_path / "damaged.tar.gz"
    with open(damaged, "rb") as src, gzip.open(damaged_gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plans = [
        (_plain_idle(), damaged),  # offsets on both sides
        (_plain_idle(), damaged_gz),  # offsets against a stream
        (IDLE, damaged_gz),  # digests of two streams
    ]
    results = [diff_archives(str(a), str(b)).memory for a, b in plans]
    assert results[0] == results[1] == results[2]
    (mem,) = [m for m in results[0] if m.pid_a == 1]
    assert mem.changed_pages >= 19 // 2  # the half of pid 1's 19 pages that is gone
