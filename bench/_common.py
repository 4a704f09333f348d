"""What the benchmarks share: a command run under measurement, interleaved runs against a
baseline, the command line every benchmark takes, and the directory it works in."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple


class Measured(NamedTuple):
    """One run of a command."""

    wall: float  #: seconds
    rss: int  #: peak RSS in bytes, of the largest process
    cpu: float  #: seconds of CPU, user + system: the steadier figure on a loaded machine


def run_measured(
    cmd: list[str] | str,
    ok: Collection[int] = (0,),
    env: dict[str, str] | None = None,
    stdout: IO[Any] | int = subprocess.DEVNULL,
) -> Measured:
    """Run one command (a shell pipeline when a str) with its output dropped; stop the benchmark
    unless it exits with a code in ``ok``."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=isinstance(cmd, str), stdout=stdout, stderr=subprocess.DEVNULL, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"command failed ({proc.returncode}): {cmd}")
    return Measured(elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


def interleaved(
    ours: list[str], base: list[str] | str, repeat: int, before: Sequence[Path] = ()
) -> tuple[float, float, int]:
    """Median wall seconds of both commands, run alternately so that load on the machine hits
    both alike, and the peak RSS of ours; ``before`` is removed before each run."""
    mine, theirs, rss = [], [], 0
    for _ in range(repeat):
        remove(before)
        run = run_measured(ours)
        mine.append(run.wall)
        rss = max(rss, run.rss)
        remove(before)
        theirs.append(run_measured(base).wall)
    return statistics.median(mine), statistics.median(theirs), rss


def remove(paths: Sequence[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def arguments(doc: str, *, repeat: int = 3, keep: bool = True) -> argparse.ArgumentParser:
    """A benchmark's command line: described by the first line of its docstring, with
    ``--repeat`` and (when it writes archives) ``--keep DIR``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each command")
    if keep:
        parser.add_argument(
            "--keep", type=Path, help="directory to keep (and reuse) the archives in"
        )
    return parser


@contextlib.contextmanager
def workdir(keep: Path | None, prefix: str) -> Iterator[Path]:
    """``keep`` (made when missing, and left in place), else a temporary directory that is
    removed at the end."""
    path = keep or Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
