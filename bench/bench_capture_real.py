"""Benchmark the capture service against a real containerd 2.x, beside a direct CRI call.

Starts the harness (``scripts/cri_harness.py``), runs one small busybox container, then takes
``--repeat`` checkpoints of it, alternating two ways in the same run:

- direct: a gRPC ``CheckpointContainer`` to containerd, as the kubelet's CRI client makes it;
- service: ``POST /checkpoint/{ns}/{pod}/{container}`` to ``kcheckpoint serve`` (its own
  process, uvicorn, bearer token), which looks the container up, calls the same RPC, checks,
  hashes and names the archive.

Prints p50 and p95 of both and the service's overhead (target: <= 10 % of the direct call, or
<= 20 ms). With ``--harness-times`` it also times the harness itself: from scratch (debootstrap
and apt into a fresh cache directory; needs the Debian mirror) and with the cached root.

    python bench/bench_capture_real.py [--repeat 30] [--harness-times]

Needs root, like the harness. Set KCHECKPOINT_TEST_CRI to use a harness that already runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "scripts" / "cri_harness.py"
sys.path.insert(0, str(ROOT / "tests"))

from capture.real_cri import Harness, harness_from_env, pods  # noqa: E402

from kcheckpoint._proto.cri import api_pb2  # noqa: E402

TOKEN = "bench-token-not-a-secret"
NS, POD, CONTAINER = "bench", "small", "app"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def service(h: Harness, root: Path) -> Iterator[str]:
    root.mkdir(parents=True, exist_ok=True)
    tokens = root / "tokens.csv"
    tokens.write_text(f"{TOKEN},bench,1,*\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcheckpoint", "serve", "--runtime-endpoint", h.endpoint,
         "--root-dir", str(root), "--token-auth-file", str(tokens), "--host", "127.0.0.1",
         "--port", str(port), "--max-per-container", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("kcheckpoint serve did not come up")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def measure(h: Harness, repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=h.share))
    spec = h.pod(
        NS, POD, CONTAINER, ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]
    )
    direct: list[float] = []
    served: list[float] = []
    try:
        with pods(h.endpoint, work / "logs", spec) as (pod,), service(h, work / "svc") as url:
            channel = grpc.insecure_channel(h.endpoint)
            checkpoint = channel.unary_unary(
                "/runtime.v1.RuntimeService/CheckpointContainer",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=api_pb2.CheckpointContainerResponse.FromString,
            )
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
            (work / "direct").mkdir()
            for i in range(repeat + 2):  # two warm-up rounds
                location = work / "direct" / f"{i}.tar"
                start = time.perf_counter()
                checkpoint(
                    api_pb2.CheckpointContainerRequest(
                        container_id=pod.container_id, location=str(location)
                    ),
                    timeout=60,
                )
                took_direct = time.perf_counter() - start
                location.unlink()
                start = time.perf_counter()
                response = client.post(f"/checkpoint/{NS}/{POD}/{CONTAINER}", timeout=60)
                took_served = time.perf_counter() - start
                if response.status_code != 200:
                    raise SystemExit(f"POST failed: {response.status_code} {response.text}")
                if i >= 2:
                    direct.append(took_direct)
                    served.append(took_served)
            client.close()
            channel.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    versions = ", ".join(f"{k} {h.versions[k]}" for k in ("containerd", "runc", "criu"))
    print(f"POST /checkpoint against a real runtime ({versions}), {repeat} rounds, alternating")
    print(f"{'':10} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, values in (("direct", direct), ("service", served)):
        print(
            f"{name:10} {percentile(values, 0.5) * 1e3:8.1f} {percentile(values, 0.95) * 1e3:8.1f}"
            f" {statistics.fmean(values) * 1e3:8.1f}"
        )
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        over = percentile(served, q) - percentile(direct, q)
        ratio = over / percentile(direct, q)
        verdict = "meets" if over <= 0.020 or ratio <= 0.10 else "MISSES"
        print(
            f"overhead at {label}: {over * 1e3:+.1f} ms ({ratio:+.1%} of the direct call); "
            f"target <= 10 % or <= 20 ms: {verdict}"
        )


def time_harness() -> None:
    """The harness from scratch (fresh cache) and with the cached root, start to stop."""
    cache = Path(tempfile.mkdtemp(prefix="kcp-bench-cache-"))
    try:
        for label in ("from scratch", "cached root"):
            directory = Path(tempfile.mkdtemp(prefix="kcp-bench-h-"))
            env = {**os.environ, "KCHECKPOINT_CRI_CACHE": str(cache)}
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, str(HARNESS), "start", str(directory)],
                check=True,
                env=env,
                capture_output=True,
            )
            started = time.perf_counter() - start
            recorded = json.loads((directory / "env.json").read_text())
            stop_start = time.perf_counter()
            subprocess.run([sys.executable, str(HARNESS), "stop", str(directory)], check=True)
            stopped = time.perf_counter() - stop_start
            print(
                f"harness {label}: up in {started:.1f} s (root {recorded['root_seconds']} s), "
                f"stopped in {stopped:.1f} s"
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--harness-times", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root, like scripts/cri_harness.py")
    if args.harness_times:
        time_harness()
    with harness_from_env("kcp-bench-cri-") as h:
        measure(h, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
