"""Benchmark commands on archives of many small members: `manifest`, `verify` and `list`.

A hostile (or merely odd) archive may hold 100,000 members. Prints, per member count, the wall
time, CPU time (user + system: the steadier figure on a shared machine) and peak RSS of
`kcheckpoint manifest`, `verify` and `list --format jsonl|json`, beside a baseline run
interleaved in the same loop (`tar -tvf FILE` for the listing, `tar -xOf FILE | sha256sum`
for the hashing), the CPU time per member and the CPU ratio to the baseline. Targets:
manifest and verify of 100k small members in <= 5 s; `list --format jsonl` of 100k members
in <= 100 MiB peak RSS.

    python bench/bench_members.py [--counts 10000,100000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT.parent / "shared" / "fixtures" / "podman" / "webapp-t1.tar"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, run_measured, workdir  # noqa: E402

KCHECKPOINT = [sys.executable, "-m", "kcheckpoint", "-q"]


def write_many(path: Path, count: int) -> None:
    """The real webapp-t1 checkpoint, plus ``count`` small files under extra/."""
    with tarfile.open(FIXTURE) as src, tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as out:
        for info in src:
            out.addfile(info, src.extractfile(info) if info.isreg() else None)
        for i in range(count):
            data = b"member %d\n" % i
            info = tarfile.TarInfo(f"extra/{i // 1000:03d}/file-{i:06d}.txt")
            info.size = len(data)
            info.mtime = 1_764_000_000
            out.addfile(info, io.BytesIO(data))


def measure(workdir: Path, count: int, repeat: int) -> None:
    archive = workdir / f"many-{count}.tar"
    if not archive.exists():
        write_many(archive, count)
    manifest = workdir / f"many-{count}.sha256"
    with manifest.open("wb") as fh:
        subprocess.run([*KCHECKPOINT, "manifest", str(archive)], stdout=fh, check=True)
    hashing = f"tar -xOf {archive} | sha256sum"
    listing = f"tar -tvf {archive}"
    for label, cmd, base in (
        ("manifest", [*KCHECKPOINT, "manifest", str(archive)], hashing),
        ("verify", [*KCHECKPOINT, "verify", str(archive), str(manifest)], hashing),
        ("list --format jsonl", [*KCHECKPOINT, "list", str(archive), "-o", "jsonl"], listing),
        ("list --format json", [*KCHECKPOINT, "list", str(archive), "-o", "json"], listing),
    ):
        ours, theirs = [], []
        peak = 0
        for _ in range(repeat):  # interleaved: load on the machine hits both alike
            run = run_measured(cmd, ok=(0, 1))
            ours.append((run.wall, run.cpu))
            peak = max(peak, run.rss)
            run = run_measured(base, ok=(0, 1))
            theirs.append((run.wall, run.cpu))
        wall = statistics.median(w for w, _ in ours)
        cpu = statistics.median(c for _, c in ours)
        b_wall = statistics.median(w for w, _ in theirs)
        b_cpu = statistics.median(c for _, c in theirs)
        print(
            f"{count:>8} {label:<20} {wall:>7.2f} {cpu:>6.2f} {cpu / count * 1e6:>9.1f}"
            f" {peak / 2**20:>8.1f} {b_wall:>9.2f} {b_cpu:>8.2f} {cpu / b_cpu:>9.1f}",
            flush=True,
        )


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--counts", default="10000,100000")
    args = parser.parse_args()
    print(
        f"{'members':>8} {'command':<20} {'wall s':>7} {'cpu s':>6} {'us/member':>9}"
        f" {'peak MiB':>8} {'base wall':>9} {'base cpu':>8} {'cpu ratio':>9}"
    )
    with workdir(args.keep, "kcheckpoint-members-") as work:
        for count in (int(c) for c in args.counts.split(",")):
            measure(work, count, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
