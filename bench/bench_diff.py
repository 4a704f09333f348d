"""Benchmark `kcheckpoint diff`: two synthetic checkpoints that differ in 1 % of their pages.

Prints the median wall time and peak RSS of `kcheckpoint diff A B`, and the same for reading
both archives once, measured in the same run with the runs interleaved:
- `read once (python)`: one Python process reading every byte of A, then of B, through
  kcheckpoint's own reader (decompressing when compressed), 1 MiB at a time: what any
  one-pass tool pays, interpreter start-up included;
- `read once (cat|zstd)`: `cat A B` (or `zstd -dc` for zstd archives), the operating system's
  floor.

Targets: time <= 1.5x the Python read-once time, peak RSS <= 200 MiB.

It also prints the same ratio measured inside one process (``diff_archives`` against a loop
that reads both files once), which leaves out interpreter start-up and imports (~0.3 s here, a
large share of a 1 GiB diff of plain tars).

    python bench/bench_diff.py [--size 1G] [--compress none,zstd] [--repeat 3] [--keep DIR]

Archives come from bench/synth.py: the same seed, --mutate 0 and --mutate 0.01, so they
differ only in those pages. The first run also checks the diff found about 1 % of the pages.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, run_measured, workdir
from synth import parse_size, write_archive

KCHECKPOINT = [sys.executable, "-m", "kcheckpoint", "-q"]
READ_ONCE = (
    "import sys\n"
    "from kcheckpoint.inspect.reader.source import open_input\n"
    "buf = bytearray(1 << 20)\n"
    "for path in sys.argv[1:]:\n"
    "    with open_input(path, hash_input=False) as src:\n"
    "        while src.stream.readinto(buf):\n"
    "            pass\n"
)


def make_pair(workdir: Path, size: str, compress: str) -> tuple[Path, Path]:
    suffix = {"none": ".tar", "zstd": ".tar.zst"}[compress]
    paths = []
    for name, mutate in (("a", 0.0), ("b", 0.01)):
        path = workdir / f"diff-{size}-{name}{suffix}"
        if not path.exists():
            if compress == "zstd" and shutil.which("zstd"):
                plain = workdir / f"diff-{size}-{name}.tar"
                if not plain.exists():
                    write_archive(plain, parse_size(size), seed=1, mutate=mutate)
                subprocess.run(["zstd", "-q", "-T2", "-3", str(plain), "-o", str(path)], check=True)
            else:
                write_archive(path, parse_size(size), compress=compress, seed=1, mutate=mutate)
        paths.append(path)
    return paths[0], paths[1]


def check(a: Path, b: Path) -> str:
    """Run the diff once as JSON Lines: how many pages it found changed, of how many."""
    out = subprocess.run(
        [*KCHECKPOINT, "diff", str(a), str(b), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 1:
        raise SystemExit(f"diff exited {out.returncode}: {out.stderr}")
    records = [json.loads(line) for line in out.stdout.splitlines()]
    memory = [r for r in records if r["record"] == "memory"]
    changed = sum(r["changed_pages"] for r in memory)
    present = sum(r["present_a"] for r in memory) // 4096
    return f"{changed} of {present} pages changed ({100 * changed / max(present, 1):.2f} %)"


def in_process(a: Path, b: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of diff_archives(a, b) and of reading both once, inside this process."""
    from kcheckpoint.inspect.diff import diff_archives
    from kcheckpoint.inspect.reader.source import open_input

    def read_once() -> None:
        buf = bytearray(1 << 20)
        for path in (a, b):
            with open_input(path, hash_input=False) as src:
                while src.stream.readinto(buf):  # type: ignore[attr-defined]
                    pass

    ours, base = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        diff_archives(str(a), str(b))
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        read_once()
        base.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(base)


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--size", default="1G", help="memory pages per archive, e.g. 64M, 1G")
    parser.add_argument("--compress", default="none,zstd", help="none and/or zstd")
    args = parser.parse_args()

    with workdir(args.keep, "kcheckpoint-bench-diff-") as work:
        for compress in [c for c in args.compress.split(",") if c]:
            a, b = make_pair(work, args.size, compress)
            print(f"== {args.size} synthetic, {compress}: {a.name} vs {b.name}")
            print(f"   {check(a, b)}")
            floor = (
                f"zstd -dc '{a}' >/dev/null && zstd -dc '{b}' >/dev/null"
                if compress == "zstd"
                else f"cat '{a}' '{b}' >/dev/null"
            )
            ours, python_read, os_read, rss, read_rss = [], [], [], 0, 0
            for _ in range(args.repeat):
                run = run_measured([*KCHECKPOINT, "diff", str(a), str(b)], ok=(1,))
                ours.append(run.wall)
                rss = max(rss, run.rss)
                run = run_measured([sys.executable, "-c", READ_ONCE, str(a), str(b)])
                python_read.append(run.wall)
                read_rss = max(read_rss, run.rss)
                os_read.append(run_measured(floor).wall)
            t_ours = statistics.median(ours)
            t_py = statistics.median(python_read)
            t_os = statistics.median(os_read)
            print(f"   kcheckpoint diff      {t_ours:7.2f} s   peak RSS {rss / 2**20:6.1f} MiB")
            print(f"   read once (python)    {t_py:7.2f} s   peak RSS {read_rss / 2**20:6.1f} MiB")
            print(f"   read once ({'zstd' if compress == 'zstd' else 'cat'}){'':7}{t_os:7.2f} s")
            t_in, t_in_read = in_process(a, b, args.repeat)
            print(
                f"   in process: diff {t_in:.2f} s, read once {t_in_read:.2f} s, "
                f"ratio {t_in / t_in_read:.2f}"
            )
            print(
                f"   ratio to read once (python): {t_ours / t_py:.2f} (target <= 1.5); "
                f"to {'zstd -dc' if compress == 'zstd' else 'cat'}: {t_ours / t_os:.2f}; "
                f"RSS target <= 200 MiB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
