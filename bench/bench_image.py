"""Benchmark `kcheckpoint image` and reading an image from a registry.

1. `kcheckpoint image ARCHIVE --oci-archive OUT` (gzip and zstd layers) on a synthetic archive
   (default 1 GiB of memory pages, bench/synth.py), against `tar -c` of the same members piped
   into `gzip -6` or `zstd -3`, runs interleaved. Prints wall time, the ratio (ours / baseline,
   target <= 1.3) and our peak RSS (target <= 150 MiB).
2. `kcheckpoint summary docker://127.0.0.1:PORT/bench/ckpt:TAG` (gzip and zstd layers) against
   `skopeo copy` of the same image to a local directory, from Debian's docker-registry started
   here on loopback (target: ours / skopeo <= 1.0). skopeo only copies the compressed layer;
   summary also decompresses all of it, which for gzip is most of its time.

    python bench/bench_image.py [--size 1G] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import parse_size, write_archive

KCHECKPOINT = [sys.executable, "-m", "kcheckpoint", "-q"]
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
http:
  addr: 127.0.0.1:{port}
"""


def run_measured(cmd: list[str] | str) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes, the largest process) of one command or pipeline."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {cmd}")
    return elapsed, usage.ru_maxrss * 1024


def interleaved(
    ours: list[str], base: str | list[str], repeat: int, before: list[Path]
) -> tuple[float, float, int]:
    """Median times of both commands, run alternately; ``before`` is removed before each run."""
    mine, theirs, rss = [], [], 0
    for _ in range(repeat):
        _remove(before)
        t, r = run_measured(ours)
        mine.append(t)
        rss = max(rss, r)
        _remove(before)
        theirs.append(run_measured(base)[0])
    return statistics.median(mine), statistics.median(theirs), rss


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def docker_registry(directory: Path) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = directory / "registry.yml"
    config.write_text(REGISTRY_CONFIG.format(storage=directory / "storage", port=port))
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="memory pages in the synthetic archive")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="directory to keep (and reuse) the archive in")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="kcheckpoint-bench-image-"))
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / f"synth-{args.size}.tar"
    if not archive.exists():
        write_archive(archive, parse_size(args.size), compress="none", seed=1)
    members = workdir / "members"
    if not members.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(members, filter="tar")
    out = workdir / "out"
    try:
        print(f"archive {archive.stat().st_size / 2**20:.0f} MiB, {args.repeat} runs each\n")
        print(f"{'case':<34} {'ours s':>7} {'base s':>7} {'ours/base':>9} {'RSS MiB':>8}")
        for compression, tool in (("gzip", "gzip -6"), ("zstd", "zstd -3 -q")):
            ours, base, rss = interleaved(
                [
                    *KCHECKPOINT,
                    "image",
                    str(archive),
                    "ckpt:1",
                    "--oci-archive",
                    str(out),
                    "--compression",
                    compression,
                ],
                f"tar -cf - -C '{members}' . | {tool} > '{out}'",
                args.repeat,
                [out],
            )
            print(
                f"{'image, ' + compression + ' layer':<34} {ours:>7.2f} {base:>7.2f} "
                f"{ours / base:>9.2f} {rss / 2**20:>8.1f}"
            )
        print("  baseline: tar -c of the same members | gzip -6 or zstd -3 (target <= 1.3)\n")
        if shutil.which("docker-registry") and shutil.which("skopeo"):
            with docker_registry(workdir) as port:
                for compression in ("gzip", "zstd"):
                    ref = f"127.0.0.1:{port}/bench/ckpt:{compression}"
                    subprocess.run(
                        [
                            *KCHECKPOINT,
                            "image",
                            str(archive),
                            ref,
                            "--push",
                            "--insecure",
                            "--compression",
                            compression,
                        ],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    copy = workdir / "skopeo-dir"
                    ours, base, rss = interleaved(
                        [*KCHECKPOINT, "summary", f"docker://{ref}"],
                        [
                            "skopeo",
                            "copy",
                            "-q",
                            "--src-tls-verify=false",
                            f"docker://{ref}",
                            f"dir:{copy}",
                        ],
                        args.repeat,
                        [copy],
                    )
                    label = f"summary docker:// ({compression} layer)"
                    print(
                        f"{label:<34} {ours:>7.2f} {base:>7.2f} {ours / base:>9.2f} "
                        f"{rss / 2**20:>8.1f}"
                    )
                print("  baseline: skopeo copy of the same image to a local dir (target <= 1.0)")
        else:
            print("docker-registry or skopeo missing: registry case skipped")
    finally:
        if out.exists():
            out.unlink()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
