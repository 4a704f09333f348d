"""Benchmark the capture service: POST /checkpoint against the fake runtime, beside direct gRPC.

For 1, 10 and 50 concurrent clients, prints requests per second and p50/p99 latency of
``POST /checkpoint/{ns}/{pod}/{container}`` through ``kcheckpoint serve`` (a separate process,
uvicorn, bearer token, lookup by labels, temporary name, 0600 check, SHA-256, rename, sidecar,
retention), and of a direct gRPC ``CheckpointContainer`` call to the same fake runtime in the
same run. The overhead is the difference of the p50s (target: <= 5 ms at p50).

    python bench/bench_capture.py [--requests 400] [--levels 1,10,50] [--payload 64K]

Each client checkpoints its own container, so the numbers measure the service and not the
per-container queue (which serialises on purpose). The fake runtime writes ``--payload`` bytes.
The service runs with ``--max-concurrent`` above the highest level (no 429) and
``--max-per-container 3`` (a bounded directory, as an operator would configure it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import grpc.aio
import httpx

from kcheckpoint._proto.cri import api_pb2, api_pb2_grpc
from kcheckpoint.capture.demo import (
    FakeContainer,
    FakePod,
    FakeRuntimeService,
    bytes_writer,
    start_runtime_server,
)
from kcheckpoint.capture.settings import parse_size

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._fleet import free_port, wait_for

TOKEN = "bench-token-not-a-secret"
PODS = 64


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_clients(concurrency: int, total: int, one: object) -> tuple[float, list[float]]:
    """Run ``total`` calls of ``one(worker, n)`` over ``concurrency`` workers; (seconds, lats)."""
    latencies: list[float] = []
    per_worker = max(1, total // concurrency)

    async def worker(index: int) -> None:
        for n in range(per_worker):
            start = time.perf_counter()
            await one(index, n)  # type: ignore[operator]
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.perf_counter() - started, latencies


async def bench_service(url: str, concurrency: int, total: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers=headers, timeout=60
    ) as client:

        async def one(worker: int, _n: int) -> None:
            response = await client.post(f"/checkpoint/bench/pod-{worker % PODS}/app")
            if response.status_code != 200:
                raise SystemExit(f"POST failed: {response.status_code} {response.text}")

        await one(0, 0)  # warm up the connection and the service
        return await run_clients(concurrency, total, one)


async def bench_direct(
    endpoint: str, directory: Path, concurrency: int, total: int
) -> tuple[float, list[float]]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)

        async def one(worker: int, n: int) -> None:
            request = api_pb2.CheckpointContainerRequest(
                container_id=f"ctr-{worker % PODS}",
                location=str(directory / f"direct-{worker}-{n}.tar"),
                timeout=120,
            )
            await stub.CheckpointContainer(request, timeout=60)

        await one(0, 0)
        return await run_clients(concurrency, total, one)


def serve_fake_runtime(sock: Path, size: int) -> int:
    """The fake CRI runtime: PODS pods ``bench/pod-<i>``, container ``app``, until killed."""
    pods = [FakePod(f"sb-{i}", f"pod-{i}", "bench", f"u{i}", [FakeContainer(f"ctr-{i}", "app")])
            for i in range(PODS)]  # fmt: skip
    server = start_runtime_server(FakeRuntimeService(pods, bytes_writer(os.urandom(size))), sock)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per level and side")
    parser.add_argument("--levels", default="1,10,50")
    parser.add_argument("--payload", default="64K", help="bytes the fake runtime writes")
    parser.add_argument("--fake-runtime", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_runtime:
        return serve_fake_runtime(Path(args.fake_runtime), parse_size(args.payload))
    levels = [int(x) for x in args.levels.split(",")]

    work = Path(tempfile.mkdtemp(prefix="kcp-bench-"))
    # the fake runtime gets a process of its own, like a real runtime: the bench process only
    # runs the clients, so both sides are measured the same way
    runtime = subprocess.Popen(
        [sys.executable, __file__, "--fake-runtime", str(work / "cri.sock"),
         "--payload", args.payload],
    )  # fmt: skip
    while not (work / "cri.sock").exists():
        if runtime.poll() is not None:
            raise SystemExit("the fake runtime did not start")
        time.sleep(0.02)
    endpoint = f"unix://{work / 'cri.sock'}"
    (work / "tokens.csv").write_text(f"{TOKEN},bench,1,*\n")
    direct_dir = work / "direct"
    direct_dir.mkdir()
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "kcheckpoint", "serve", "--port", str(port),
         "--root-dir", str(work / "root"), "--runtime-endpoint", endpoint,
         "--token-auth-file", str(work / "tokens.csv"), "--max-concurrent", str(max(levels) * 2),
         "--max-per-container", "3", "--log-level", "warning",
         "--audit-log", str(work / "audit.jsonl")],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", service)
        print(f"fake CRI runtime, {args.payload} archives, {args.requests} requests per level")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        header = f"{'clients':>7}  {'side':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        print(header)
        print("-" * len(header))
        rows = []
        for level in levels:
            total = max(args.requests, level)
            d_secs, d_lat = asyncio.run(bench_direct(endpoint, direct_dir, level, total))
            shutil.rmtree(direct_dir)
            direct_dir.mkdir()
            s_secs, s_lat = asyncio.run(bench_service(url, level, total))
            for side, secs, lat in (
                ("direct gRPC", d_secs, d_lat),
                ("POST service", s_secs, s_lat),
            ):
                print(
                    f"{level:>7}  {side:<14} {len(lat) / secs:>8.0f} "
                    f"{percentile(lat, 0.5) * 1000:>8.2f} {percentile(lat, 0.99) * 1000:>8.2f}"
                )
            overhead50 = (percentile(s_lat, 0.5) - percentile(d_lat, 0.5)) * 1000
            overhead99 = (percentile(s_lat, 0.99) - percentile(d_lat, 0.99)) * 1000
            rows.append((level, overhead50, overhead99, statistics.mean(s_lat) * 1000))
            print(f"{'':>7}  {'overhead':<14} {'':>8} {overhead50:>8.2f} {overhead99:>8.2f}")
        print()
        for level, over50, _over99, _mean in rows:
            verdict = "meets" if over50 <= 5 else "misses"
            print(
                f"{level:>3} clients: overhead at p50 {over50:7.2f} ms ({verdict} the 5 ms target)"
            )
        print(
            "(one service process, one event loop: once it is saturated, the added latency is "
            "queueing, about clients / service req/s)"
        )
    finally:
        service.terminate()
        service.wait(10)
        runtime.terminate()
        runtime.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
