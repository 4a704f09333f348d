"""Benchmark gzip input: `summary` of a gzip -1 archive against bare decompression and hashing.

Writes synthetic archives (bench/synth.py, gzip level 1, as `gzip -1`): one whose memory is a mix
of zero, random and text pages, and one whose memory is all random (incompressible, like
compressed or encrypted data in a heap). For each, in the same run, interleaved, medians of
--repeat runs:
- baseline Z: a bare stdlib ``zlib`` decompression of the file (1 MiB reads, output dropped);
- baseline H: ``hashlib.sha256`` over the file alone;
- D, for scale: the gzip reader summary uses (igzip or the stdlib's), alone;
- ``summary --no-hash``, target <= 1.0x Z;
- ``summary`` (hashes the input: a compressed input is read whole), target <= 1.15x H.

Each is timed in process (``summarize_path``; no interpreter start-up) and as a command
(``python -m kcheckpoint -q summary``, start-up included). The gzip reader in use (ISA-L's
igzip, or the stdlib's fallback) is printed.

The input is hashed on a second thread while the main one decompresses, so with the hash a
summary takes about max(H, D) on two cores. Where decompressing takes longer than hashing (D > H,
the mixed archive), 1.15x H is out of reach for any reader, and the bench says so.

    python bench/bench_gzip.py [--size 1G] [--memory mixed,incompressible] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, workdir  # noqa: E402
from synth import parse_size, write_archive  # noqa: E402

from kcheckpoint.inspect import summarize_path  # noqa: E402

CHUNK = 1 << 20


def bare_zlib(path: Path) -> None:
    inflater = zlib.decompressobj(wbits=31)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            inflater.decompress(chunk)


def bare_sha256(path: Path) -> None:
    with open(path, "rb") as fh:
        hashlib.file_digest(fh, "sha256")


def in_process(path: Path, hash_input: bool) -> Callable[[], None]:
    def run() -> None:
        summarize_path(str(path), hash_input=hash_input)

    return run


def command(path: Path, hash_input: bool) -> Callable[[], None]:
    cmd = [sys.executable, "-m", "kcheckpoint", "-q", "summary", str(path)]
    if not hash_input:
        cmd.append("--no-hash")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code, as an installed package has it

    def run() -> None:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)

    return run


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def reader_name() -> str:
    try:
        import isal

        return f"isal {isal.__version__} (igzip)"
    except ImportError:
        return "stdlib gzip (isal is not installed)"


def bare_reader(path: Path) -> None:
    """The gzip reader summary uses (igzip, or the stdlib's), with nothing else."""
    from kcheckpoint.inspect.reader.source import _gzip_reader

    with open(path, "rb") as raw:
        reader = _gzip_reader(raw)
        buf = bytearray(CHUNK)
        while reader.readinto(buf):  # type: ignore[attr-defined]
            pass


def measure(path: Path, repeat: int) -> dict[str, float]:
    """Median seconds of every case, interleaved."""
    cases: dict[str, Callable[[], None]] = {
        "Z: stdlib zlib decompression": lambda: bare_zlib(path),
        "D: our gzip reader alone": lambda: bare_reader(path),
        "H: hashlib.sha256 of the file": lambda: bare_sha256(path),
        "summary --no-hash (in process)": in_process(path, False),
        "summary (in process)": in_process(path, True),
        "summary --no-hash (command)": command(path, False),
        "summary (command)": command(path, True),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def report(median: dict[str, float]) -> bool:
    z = median["Z: stdlib zlib decompression"]
    h = median["H: hashlib.sha256 of the file"]
    d = median["D: our gzip reader alone"]
    print(f"\n{'case':34} {'median s':>9} {'x Z':>6} {'x H':>6}")
    for name, value in median.items():
        print(f"{name:34} {value:9.3f} {value / z:6.2f} {value / h:6.2f}")
    print("targets:")
    ok = True
    for mode in ("in process", "command"):
        no_hash = median[f"summary --no-hash ({mode})"] / z
        hashed = median[f"summary ({mode})"]
        verdicts = ("ok" if no_hash <= 1.0 else "MISSED", "ok" if hashed / h <= 1.15 else "MISSED")
        ok &= verdicts == ("ok", "ok")
        print(
            f"  {mode:10}  --no-hash {no_hash:.2f}x Z (<= 1.0: {verdicts[0]})"
            f"   hash {hashed / h:.2f}x H (<= 1.15: {verdicts[1]})"
            f"   hash {hashed / max(h, d):.2f}x max(H, D)"
        )
    if d > h:
        print(
            f"  (D > H: decompressing alone takes {d / h:.2f}x hashing, so no summary can "
            "finish within 1.15x H; max(H, D) is the floor)"
        )
    return ok


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--size", default="1G", help="memory pages in the archive, e.g. 256M")
    parser.add_argument(
        "--memory",
        default="mixed,incompressible",
        help="archives to measure: mixed (zero, random and text pages), incompressible (random)",
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    print(f"gzip reader: {reader_name()}; median of {args.repeat} interleaved runs")
    ok = True
    with workdir(args.keep, "kcp-bench-gzip-") as work:
        for memory in args.memory.split(","):
            path = work / f"synth-{args.size}-{memory}.tar.gz"
            if not path.exists():
                print(f"writing {path} ...", file=sys.stderr)
                write_archive(
                    path, size, compress="gzip", incompressible=memory == "incompressible"
                )
            mib = path.stat().st_size / (1 << 20)
            print(f"\n== {memory}: {path.name} ({mib:.0f} MiB gzip, {args.size} pages)")
            ok &= report(measure(path, args.repeat))
            if not args.keep:
                path.unlink()  # one archive on disk at a time
    print("\nall targets met" if ok else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
