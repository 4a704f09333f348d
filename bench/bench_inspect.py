"""Benchmark `kcheckpoint inspect --all`: time and peak RSS per fixture, against baselines.

For every fixture archive, prints the median wall time and peak RSS of
`kcheckpoint -q inspect --all --format json` and, measured in the same run and interleaved:
- listing the archive (`tar -tvf`, or `zstd|gzip -dc FILE | tar -tvf -`): the cost of one pass;
- `crit x DIR ps` + `crit x DIR fds` on the extracted checkpoint/ (CRIU's own tool, which
  shows less: no argv or env, no sockets or mounts), when crit is installed.
Ratios are baseline time / our time (above 1: we are faster). "in-proc s" is
``inspect_path`` called in this interpreter (no CLI start-up, which is mostly imports), with
its ratio to the listing baseline.

    python bench/bench_inspect.py [--repeat 5]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, run_measured  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
OURS = [sys.executable, "-m", "kcheckpoint", "-q", "inspect", "--all", "--format", "json"]


def listing(path: Path) -> str:
    head = path.read_bytes()[:4]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return f"zstd -dc '{path}' | tar -tvf - >/dev/null"
    if head.startswith(b"\x1f\x8b"):
        return f"gzip -dc '{path}' | tar -tvf - >/dev/null"
    return f"tar -tvf '{path}' >/dev/null"


def extract_images(path: Path, dest: Path) -> Path:
    """checkpoint/ of an archive, pages included, extracted for crit."""
    import tarfile

    from kcheckpoint.inspect.reader.source import open_input

    with (
        open_input(path, hash_input=False) as src,
        tarfile.open(fileobj=src.stream, mode="r|") as tf,
    ):
        for m in tf:
            if m.name.startswith("checkpoint/"):
                tf.extract(m, dest, filter="data")
    return dest / "checkpoint"


def main() -> int:
    args = arguments(__doc__, repeat=5, keep=False).parse_args()
    crit = shutil.which("crit")
    archives = sorted(p for p in FIXTURES.glob("*/*") if p.suffix in (".tar", ".gz", ".zst"))
    from kcheckpoint.inspect.criu.checkpoint import inspect_path

    print(
        f"{'archive':32} {'ours s':>8} {'RSS MiB':>8} {'list s':>8} {'ratio':>6}"
        f" {'in-proc s':>9} {'ratio':>6} {'crit ps+fds s':>14} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for path in archives:
            mine, base, crits, inproc, rss = [], [], [], [], 0
            directory = None
            if crit:
                directory = extract_images(path, Path(tmp, path.name))
            for _ in range(args.repeat):
                run = run_measured([*OURS, str(path)])
                mine.append(run.wall)
                rss = max(rss, run.rss)
                base.append(run_measured(listing(path)).wall)
                started = time.perf_counter()
                inspect_path(path)
                inproc.append(time.perf_counter() - started)
                if directory is not None:
                    crits.append(
                        run_measured(
                            f"{crit} x '{directory}' ps && {crit} x '{directory}' fds"
                        ).wall
                    )
            ours_s, base_s = statistics.median(mine), statistics.median(base)
            line = (
                f"{path.parent.name + '/' + path.name[:24]:32} {ours_s:8.3f} {rss / 2**20:8.1f} "
                f"{base_s:8.3f} {base_s / ours_s:6.2f}"
            )
            in_s = statistics.median(inproc)
            line += f" {in_s:9.3f} {base_s / in_s:6.2f}"
            if crits:
                crit_s = statistics.median(crits)
                line += f" {crit_s:14.3f} {crit_s / ours_s:6.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
