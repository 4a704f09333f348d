"""Benchmark CLI start-up: `--version`, `--help` and `summary` of a small archive, against
`python3 -c pass` measured in the same run, interleaved.

Prints the median wall time and peak RSS of each, its ratio to `python3 -c pass`, and the
target:
- `--version` and `--help`: at most 5x `python3 -c pass`;
- `summary samples/idle.tar.zst`: at most 8x;
- peak RSS of `summary`, `inspect` and `search` on every fixture: at most 60 MiB;
- `search -e e webapp-t1 | head -3`: exits 120 as soon as head has gone, far sooner than the
  whole search (GNU grep in the same pipe for scale);
- for scale, no target: the peak RSS of that search's 100,000 hits as one JSON document and as
  streamed JSON Lines.

`python3 -S -c pass` (no site packages, no .pth files) is printed for scale: on a machine whose
site directory runs .pth files at start-up, the baseline itself is slower. Every case runs once
before timing, with byte code written (as an installed package has it).

    python bench/bench_startup.py [--repeat 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
SAMPLE = ROOT / "samples" / "idle.tar.zst"
KCP = [sys.executable, "-m", "kcheckpoint"]
MIB = 1 << 20


def measured(cmd: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one run; output discarded. Byte code is written and
    used, as an installed package has it (PYTHONDONTWRITEBYTECODE would time the compiler)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss * 1024


def startup(repeat: int) -> bool:
    cases: dict[str, tuple[list[str], float | None]] = {
        "python3 -c pass": ([sys.executable, "-c", "pass"], None),
        "python3 -S -c pass": ([sys.executable, "-S", "-c", "pass"], None),
        "kcheckpoint --version": ([*KCP, "--version"], 5.0),
        "kcheckpoint --help": ([*KCP, "--help"], 5.0),
        "kcheckpoint summary idle.tar.zst": ([*KCP, "-q", "summary", str(SAMPLE)], 8.0),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for cmd, _target in cases.values():  # a warm-up run each: byte code written, files cached
        measured(cmd)
    for _ in range(repeat):  # interleaved, so that load on the machine hits every case alike
        for name, (cmd, _target) in cases.items():
            times[name].append(measured(cmd)[0])
    base = statistics.median(times["python3 -c pass"])
    ok = True
    print(f"{'command':36} {'median ms':>10} {'x pass':>8} {'target':>8}")
    for name, (_cmd, target) in cases.items():
        median = statistics.median(times[name])
        ratio = median / base
        verdict = ""
        if target is not None:
            met = ratio <= target
            ok &= met
            verdict = f"<= {target:.0f}x {'ok' if met else 'MISSED'}"
        print(f"{name:36} {median * 1000:10.1f} {ratio:8.2f} {verdict:>8}")
    return ok


def peak_rss() -> bool:
    archives = sorted(p for p in FIXTURES.rglob("*.tar*") if p.is_file())
    if not archives:
        print(f"\n(no fixtures in {FIXTURES}: peak RSS skipped)")
        return True
    ok = True
    print(f"\n{'peak RSS, MiB (target <= 60)':36} {'summary':>8} {'inspect':>8} {'search':>8}")
    for path in archives:
        row = []
        for cmd in (
            [*KCP, "-q", "summary", str(path)],
            [*KCP, "-q", "inspect", "--all", str(path)],
            [*KCP, "-q", "search", str(path), "-e", "PASSWORD"],
        ):
            rss = measured(cmd)[1] / MIB
            ok &= rss <= 60
            row.append(f"{rss:8.1f}")
        label = f"{path.parent.name}/{path.name[:28]}"
        print(f"{label:36} {' '.join(row)}")
    return ok


def piped_to_head(repeat: int) -> bool:
    """`search -e e | head -3` on webapp-t1 (hits everywhere) against the whole search, and
    GNU grep in the same pipe: time until our process has exited, and its exit code."""
    archive = FIXTURES / "podman" / "webapp-t1.tar"
    if not archive.exists():
        print(f"\n(no {archive}: the pipe case skipped)")
        return True
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))

    def into_head(cmd: list[str]) -> tuple[float, int]:
        started = time.perf_counter()
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert first.stdout is not None
        subprocess.run(["head", "-3"], stdin=first.stdout, stdout=subprocess.DEVNULL, check=True)
        first.stdout.close()
        code = first.wait()
        return time.perf_counter() - started, code

    ours = [*KCP, "-q", "search", str(archive), "-e", "e"]
    runs: dict[str, list[float]] = {"head": [], "whole": [], "grep": []}
    codes = set()
    for _ in range(max(3, repeat // 4)):
        seconds, code = into_head(ours)
        runs["head"].append(seconds)
        codes.add(code)
        runs["whole"].append(measured(ours)[0])
        runs["grep"].append(into_head(["grep", "-a", "-F", "e", str(archive)])[0])
    head, whole, grep = (statistics.median(runs[k]) for k in ("head", "whole", "grep"))
    print(f"\n{'search -e e webapp-t1':36} {'median ms':>10}")
    print(f"{'  | head -3':36} {head * 1000:10.1f}   exit {sorted(codes)} (target 120)")
    print(f"{'  whole search, to a file':36} {whole * 1000:10.1f}   head/whole {head / whole:.2f}")
    print(f"{'  grep -a -F e | head -3':36} {grep * 1000:10.1f}   ours/grep {head / grep:.1f}")
    return codes == {120}


def many_hits_as_json() -> None:
    """Peak RSS and time of a search with 100,000 hits (the default --max-hits) written as
    one JSON document, and as JSON Lines, streamed."""
    archive = FIXTURES / "podman" / "webapp-t1.tar"
    if not archive.exists():
        return
    print(f"\n{'search -e e webapp-t1 (100,000 hits)':36} {'wall s':>10} {'peak RSS':>9}")
    for fmt in ("json", "jsonl"):
        wall, rss = measured([*KCP, "-q", "search", str(archive), "-e", "e", "--format", fmt])
        print(f"{'  --format ' + fmt:36} {wall:10.2f} {rss / MIB:6.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    ok = startup(args.repeat)
    ok &= peak_rss()
    ok &= piped_to_head(args.repeat)
    many_hits_as_json()
    print("\nall targets met" if ok else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
