"""``diff A B`` and ``diff B A`` are mirror images: on the real archives, and (hypothesis) for
any processes, open files, filesystem states and memory layouts."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.criu.memory import PageRun, ProcessMemory, Vma
from kcheckpoint.inspect.criu.model import EnvVar, OpenFile, Process
from kcheckpoint.inspect.diff import CheckpointDiff, diff_archives
from kcheckpoint.inspect.diff.compare import (
    compare_files,
    compare_fs,
    compare_processes,
    match_processes,
)
from kcheckpoint.inspect.diff.memdiff import compare_memory
from kcheckpoint.inspect.diff.model import FsState

from .conftest import CRIO, IDLE, PODMAN_T1, PODMAN_T2

PAGE = 4096
_SWAP = {"added": "removed", "removed": "added"}
_FS_SWAP = {"added": "deleted", "deleted": "added"}


def mirror(obj: Any, swap: dict[str, str] = _SWAP) -> Any:
    """What the other direction should say: A and B swapped, added and removed swapped.

    Written here, independently of the code under test, from the model's documented rules.
    """
    if isinstance(obj, list):
        return [mirror(x, swap) for x in obj]
    if isinstance(obj, dict):
        return {k: mirror(v, swap) for k, v in obj.items()}
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name.endswith("_a"):
            partner = name[:-2] + "_b"
        elif name.endswith("_b"):
            partner = name[:-2] + "_a"
        elif name in ("a", "b"):
            partner = "b" if name == "a" else "a"
        else:
            partner = name
        source = values[partner]
        if name == "status" and isinstance(value, str):
            out[name] = swap.get(value, value)
        elif name in ("content_diff", "content_note"):
            out[name] = None
        else:
            out[name] = mirror(source, swap)
    return type(obj)(**out)


def mirror_diff(d: CheckpointDiff) -> CheckpointDiff:
    fs = [dataclasses.replace(mirror(c, _FS_SWAP)) for c in d.filesystem]
    side_of = {"a": "b", "b": "a"}
    problems = sorted(
        (dataclasses.replace(p, side=side_of[p.side]) for p in d.problems),
        key=lambda p: p.side,
    )
    counts = {
        k: dataclasses.replace(c, added=c.removed, removed=c.added) for k, c in d.counts.items()
    }
    return dataclasses.replace(
        d,
        a=d.b,
        b=d.a,
        counts=counts,
        metadata=mirror(d.metadata),
        processes=mirror(d.processes),
        files=mirror(d.files),
        sockets=mirror(d.sockets),
        memory=mirror(d.memory),
        filesystem=fs,
        members=mirror(d.members),
        problems=problems,
        note=None if d.note is None else "<note>",
    )


@cache
def _diff(a: str, b: str) -> CheckpointDiff:
    return diff_archives(a, b)


def _comparable(d: CheckpointDiff) -> CheckpointDiff:
    return dataclasses.replace(d, note=None if d.note is None else "<note>")


def test_real_archives_mirror() -> None:
    for a, b in ((PODMAN_T1, PODMAN_T2), (PODMAN_T1, CRIO), (IDLE, PODMAN_T2)):
        forward, backward = _diff(str(a), str(b)), _diff(str(b), str(a))
        assert forward.differences > 0
        assert mirror_diff(forward) == _comparable(backward)


# ---------------------------------------------------------------------------------------------
# Hypothesis: the comparison functions on made-up inputs

_fs_state = st.one_of(
    st.builds(
        FsState,
        type=st.sampled_from(["file", "dir", "symlink"]),
        size=st.integers(0, 3),
        sha256=st.sampled_from(["aa", "bb", None]),
        mode=st.sampled_from(["0644", "0755"]),
        linkname=st.sampled_from([None, "x"]),
        source=st.none(),
    ),
    st.builds(
        FsState,
        type=st.just("deleted"),
        size=st.none(),
        sha256=st.none(),
        mode=st.none(),
        linkname=st.none(),
        source=st.sampled_from(["deleted.files", "whiteout"]),
    ),
)
_fs = st.dictionaries(st.sampled_from([f"/p{i}" for i in range(8)]), _fs_state, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_fs, _fs)
def test_filesystem_mirrors(a: dict[str, FsState], b: dict[str, FsState]) -> None:
    assert compare_fs(a, b) == mirror(compare_fs(b, a), _FS_SWAP)


def _process(pid: int, ppid: int, comm: str, cmd: int, files: list[str], env: int) -> Process:
    return Process(
        pid=pid,
        ppid=ppid,
        pgid=1,
        sid=1,
        comm=comm,
        state="alive",
        exit_code=None,
        threads=[pid],
        thread_names={},
        creds=None,
        exe="/bin/x",
        cmdline=[comm, f"arg{cmd}"],
        env=[EnvVar("TOKEN", f"value{env}", False)],
        files=[OpenFile(fd, "REG", 1, f"/f/{fd}", None, None, None, False) for fd in files],
        namespaces={},
        memory=None,
    )


_processes = st.lists(
    st.builds(
        _process,
        pid=st.integers(1, 8),
        ppid=st.integers(0, 2),
        comm=st.sampled_from(["python3", "sh", "sleep"]),
        cmd=st.integers(0, 2),
        files=st.lists(st.sampled_from(["0", "1", "2", "3", "cwd"]), unique=True),
        env=st.integers(0, 1),
    ),
    max_size=6,
    unique_by=lambda p: p.pid,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_processes, _processes, st.booleans())
def test_processes_and_files_mirror(a: list[Process], b: list[Process], secrets: bool) -> None:
    forward, backward = match_processes(a, b), match_processes(b, a)
    assert compare_processes(forward, show_secrets=secrets) == mirror(
        compare_processes(backward, show_secrets=secrets)
    )
    assert compare_files(forward) == mirror(compare_files(backward))
    # every process is accounted for exactly once on each side
    assert sorted(p.a.pid for p in forward if p.a) == sorted(p.pid for p in a)
    assert sorted(p.b.pid for p in forward if p.b) == sorted(p.pid for p in b)


def test_restarted_worker_is_replaced() -> None:
    a = [_process(1, 0, "python3", 0, [], 0), _process(2, 1, "python3", 1, [], 0)]
    b = [_process(1, 0, "python3", 0, [], 0), _process(7, 1, "python3", 1, [], 0)]
    changes = compare_processes(match_processes(a, b), show_secrets=False)
    assert [(c.status, c.a.pid, c.b.pid) for c in changes] == [("replaced", 2, 7)]  # type: ignore[union-attr]


def test_changed_env_value_is_redacted() -> None:
    a = [_process(1, 0, "python3", 0, [], 0)]
    b = [_process(1, 0, "python3", 0, [], 1)]
    (change,) = compare_processes(match_processes(a, b), show_secrets=False)
    (env,) = change.changes
    assert env.field == "env/TOKEN" and env.redacted and "value" not in str(env)
    (shown,) = compare_processes(match_processes(a, b), show_secrets=True)
    assert (shown.changes[0].a, shown.changes[0].b) == ("value0", "value1")


@st.composite
def _memory(draw: st.DrawFn) -> ProcessMemory:
    """Up to four mappings on a 64-page grid, with present runs inside some of them."""
    cuts = sorted(draw(st.lists(st.integers(0, 64), min_size=2, max_size=8, unique=True)))
    vmas, runs = [], []
    offset = 0
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        backing = draw(st.sampled_from(["[heap]", "[anonymous]", "/lib/x.so"]))
        vmas.append(Vma(start * PAGE, end * PAGE, "rw-p", "anonymous", backing, 0, 3, 2, 0))
        lo = draw(st.integers(start, end))
        hi = draw(st.integers(lo, end))
        if hi > lo:
            runs.append(PageRun(lo * PAGE, (hi - lo) * PAGE, "present", offset))
            offset += (hi - lo) * PAGE
    return ProcessMemory(1, 1, PAGE, vmas, runs)


@settings(max_examples=300, deadline=None)
@given(_memory(), _memory(), st.lists(st.integers(0, 63), max_size=10))
def test_memory_mirrors(pa: ProcessMemory, pb: ProcessMemory, pages: list[int]) -> None:
    proc = _process(1, 0, "python3", 0, [], 0)
    present_a = {r.vaddr // PAGE + i for r in pa.runs for i in range(r.length // PAGE)}
    present_b = {r.vaddr // PAGE + i for r in pb.runs for i in range(r.length // PAGE)}
    changed = [(p * PAGE, (p + 1) * PAGE) for p in sorted(set(pages) & present_a & present_b)]
    forward = compare_memory(match_processes([proc], [proc]), {1: pa}, {1: pb}, {1: changed})
    backward = compare_memory(match_processes([proc], [proc]), {1: pb}, {1: pa}, {1: changed})
    assert forward == mirror(backward)
    if forward:
        (mem,) = forward
        assert mem.changed_pages == len(changed)
        assert mem.pages_only_a == len(present_a - present_b)
        assert mem.pages_only_b == len(present_b - present_a)
    else:
        assert not changed and present_a == present_b


def test_restarted_worker_mirrors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .test_diff_fixtures import _restarted_worker

    restarted = str(_restarted_worker(tmp_path))
    forward, backward = (
        diff_archives(str(PODMAN_T1), restarted),
        diff_archives(restarted, str(PODMAN_T1)),
    )
    assert forward.counts["processes"].replaced == 1
    assert mirror_diff(forward) == _comparable(backward)
