"""Benchmark fleet runs: `secrets` over archives served by two capture services, one after
another and on a local Dask cluster; and one large archive streamed over HTTP into `summary`.

    python bench/bench_fleet.py [--archives 20] [--big 1G] [--repeat 3] [--skip-big]

Part 1 starts two `kcheckpoint serve --demo` services on loopback with --archives checkpoints
between them, and times, runs interleaved, `secrets LISTING_A LISTING_B` local and sequential,
with `--workers 1` and with `--workers 2`. It prints the medians, the speed-up of 2 workers
over 1 (target >= 1.7) with and without the cluster's start-up (measured apart, in the same
run), and Dask's overhead per archive: (workers-1 time - its start-up - sequential time) / N
(target <= 50 ms). It also prints how busy the machine's cores were during each command (the
command, its Dask workers and both services): two workers cannot go faster than the cores
left free for them.

Part 2 writes a synthetic --big archive (bench/synth.py) into one service's directory and
times `summary URL` against `curl -s URL | kcheckpoint summary -` (target <= 1.3x), with the
peak RSS of kcheckpoint (target <= 100 MiB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, run_measured  # noqa: E402
from synth import parse_size, write_archive  # noqa: E402

from tests._fleet import base_env, capture_service  # noqa: E402

TOKEN = "bench-fleet-token-3a9c"
KCHECKPOINT = [sys.executable, "-m", "kcheckpoint", "-q"]
CLUSTER_START = (
    "import sys, time; from distributed import Client, LocalCluster;"
    "from kcheckpoint.remote.fanout import worker_environment;"
    "t = time.perf_counter(); worker_environment().__enter__();"
    "c = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,"
    " dashboard_address=None, silence_logs=50); cl = Client(c);"
    "cl.close(); c.close(); print(time.perf_counter() - t)"
)


IN_PROCESS = """
import json, sys, time
from distributed import Client, LocalCluster
from kcheckpoint.remote.expand import expand
from kcheckpoint.remote.fanout import run_local, run_on_client, worker_environment
from kcheckpoint.remote.tasks import Job, run_one

names = [t.name for t in expand(sys.argv[1:])]
job = Job("secrets", {"fingerprint_key": b"bench" * 8})


def timed(outcomes):
    t = time.perf_counter()
    done = list(outcomes)
    assert [o.index for o in done] == list(range(len(names)))
    assert all(o.failure is None for o in done), [o.failure for o in done]
    return time.perf_counter() - t


run_one(job, 0, names[0])  # imports and rule compilation, once, as each worker does below
out = {"sequential": timed(run_local(job, names))}
for n in (1, 2):
    with (
        worker_environment(),
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(run_one, job, 0, names[0])  # warm every worker the same way
        out[f"workers {n}"] = timed(run_on_client(client, job, names))
print(json.dumps(out))
"""


def in_process(inputs: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds of the per-archive phase alone: start-up, imports and warm-up excluded."""
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *inputs],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def cluster_start(workers: int, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CLUSTER_START, str(workers)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def part_fleet(work: Path, archives: int, repeat: int) -> None:
    (work / "a").mkdir()
    (work / "b").mkdir()
    half = archives // 2
    env = base_env(KCHECKPOINT_TOKEN=TOKEN, XDG_CONFIG_HOME=str(work / "config"))
    with (
        capture_service(work / "a", TOKEN, half) as a,
        capture_service(work / "b", TOKEN, archives - half) as b,
    ):
        inputs = [f"{a.url}/checkpoints", f"{b.url}/checkpoints"]
        runs = {
            "sequential": [*KCHECKPOINT, "secrets", *inputs, "-o", "jsonl"],
            "--workers 1": [*KCHECKPOINT, "secrets", *inputs, "-o", "jsonl", "--workers", "1"],
            "--workers 2": [*KCHECKPOINT, "secrets", *inputs, "-o", "jsonl", "--workers", "2"],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        busy: dict[str, list[float]] = {name: [] for name in runs}
        starts: dict[int, list[float]] = {1: [], 2: []}
        phases: dict[str, list[float]] = {}
        for _ in range(repeat):
            for name, cmd in runs.items():
                served = _cpu_seconds(a.proc.pid) + _cpu_seconds(b.proc.pid)
                run = run_measured(cmd, ok={1}, env=env)
                served = _cpu_seconds(a.proc.pid) + _cpu_seconds(b.proc.pid) - served
                times[name].append(run.wall)
                busy[name].append((run.cpu + served) / (run.wall * CORES))
            for n in starts:
                starts[n].append(cluster_start(n, env))
            for name, t in in_process(inputs, env).items():
                phases.setdefault(name, []).append(t)
    med = {name: statistics.median(t) for name, t in times.items()}
    ph = {name: statistics.median(t) for name, t in phases.items()}
    s1, s2 = statistics.median(starts[1]), statistics.median(starts[2])
    print(f"== secrets over {archives} archives on two capture services ({repeat} runs, medians)")
    print("  the per-archive phase (in process; start-up, imports and worker warm-up excluded):")
    for name, t in ph.items():
        print(f"  {name:12s} {t:7.2f} s   (runs: {_fmt(phases[name])})")
    p1, p2, pseq = ph["workers 1"], ph["workers 2"], ph["sequential"]
    print(f"  2 workers / 1 worker speed-up: {p1 / p2:.2f}x (target >= 1.7)")
    print(f"  Dask overhead per archive: {(p1 - pseq) / archives * 1000:.0f} ms (target <= 50 ms)")
    print("  the whole command (python -m kcheckpoint secrets ...):")
    for name, t in med.items():
        print(f"  {name:12s} {t:7.2f} s   (runs: {', '.join(f'{x:.2f}' for x in times[name])})")
    print(f"  cluster start-up: 1 worker {s1:.2f} s, 2 workers {s2:.2f} s")
    print(f"  CPU busy (command, its workers and both services) over {CORES} cores:")
    for name, shares in busy.items():
        print(f"    {name:12s} {statistics.median(shares):6.0%}")
    w1, w2, seq = med["--workers 1"], med["--workers 2"], med["sequential"]
    print(f"  2 workers / 1 worker speed-up: {w1 / w2:.2f}x")
    work1, work2 = w1 - s1, w2 - s2
    print(f"  ... without the cluster start-up: {work1 / work2:.2f}x")
    overhead = (work1 - seq) / archives
    print(f"  Dask cost per archive, start-up excluded: {overhead * 1000:.0f} ms")


def part_big(work: Path, size: int, repeat: int) -> None:
    (work / "big").mkdir()
    env = base_env(KCHECKPOINT_TOKEN=TOKEN, XDG_CONFIG_HOME=str(work / "config"))
    with capture_service(work / "big", TOKEN, 0) as node:
        name = "checkpoint-big_demo-big-2026-11-30T00:00:00Z.tar"
        path = work / "big" / "checkpoints" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_archive(path, size)
        url = f"{node.url}/checkpoints/{name}"
        # the service hashes an archive on its first download: do that before timing
        warm = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(warm, timeout=600) as answer:
            answer.read(1)
        ours_cmd = [*KCHECKPOINT, "summary", url]
        curl = (
            f"curl -s -H 'Authorization: Bearer {TOKEN}' '{url}' | "
            f"{sys.executable} -m kcheckpoint -q summary -"
        )
        ours: list[float] = []
        theirs: list[float] = []
        rss: list[int] = []
        for _ in range(repeat):
            run = run_measured(ours_cmd, env=env)
            ours.append(run.wall)
            rss.append(run.rss)
            theirs.append(run_measured(curl, env=env).wall)
    o, c = statistics.median(ours), statistics.median(theirs)
    print(f"== summary of a {size / (1 << 30):.2f} GiB plain archive over HTTP ({repeat} runs)")
    print(f"  kcheckpoint summary URL            {o:6.2f} s  (runs: {_fmt(ours)})")
    print(f"  curl -s URL | kcheckpoint summary - {c:6.2f} s  (runs: {_fmt(theirs)})")
    print(f"  ratio: {o / c:.2f}x (target <= 1.3)")
    print(f"  peak RSS: {max(rss) / (1 << 20):.0f} MiB (target <= 100 MiB)")


#: The cores this machine has: a speed-up from a second worker needs a core to run on.
CORES = os.cpu_count() or 1


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> int:
    parser = arguments(__doc__, keep=False)
    parser.add_argument("--archives", type=int, default=20)
    parser.add_argument("--big", default="1G")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-fleet", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kcp-bench-fleet-") as tmp:
        work = Path(tmp)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if not args.skip_fleet:
            part_fleet(work, args.archives, args.repeat)
        if not args.skip_big:
            part_big(work, parse_size(args.big), args.repeat)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
