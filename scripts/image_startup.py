"""Start-up time of the image built by scripts/build-image (imported by it).

``kcheckpoint serve`` runs from the image's root, mounted read-only (an overlay of the layers'
directories with no upper directory), in its own mount and pid namespaces with a private /proc,
a tmpfs /tmp, the devices a runtime gives every container and the CRI socket bound in, until
``/healthz`` answers 200. Beside it, ``python3 -c pass`` in the same root: the baseline.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

#: the devices a container runtime gives every container
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthz(port: int) -> int | None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        finally:
            connection.close()
    return None


def _in_image(
    base: Path, upper: Path, merged: Path, socket_path: Path | None, argv: list[str]
) -> str:
    """A shell command that runs ARGV in the image's root, read-only, at MERGED."""
    bind = ""
    if socket_path is not None:
        bind = (
            "mount -t tmpfs tmpfs run; mkdir -p run/containerd; "
            f": > run/containerd/containerd.sock; mount --bind {socket_path} "
            "run/containerd/containerd.sock; "
        )
    inner = " ".join(_quote(a) for a in argv)
    return (
        f"set -e; mount -t overlay overlay -o lowerdir={upper}:{base} {merged}; cd {merged}; "
        "mount -t proc proc proc; mount -t tmpfs tmpfs tmp; mount -t tmpfs -o size=1m tmpfs dev; "
        f"for d in {' '.join(DEVICES)}; do : > dev/$d; mount --bind /dev/$d dev/$d; done; {bind}"
        f"exec chroot . /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin "
        f"PYTHONDONTWRITEBYTECODE=1 {inner}"
    )


def measure_startup(
    base: Path, upper: Path, work: Path, socket_path: Path | None, runs: int = 3
) -> dict[str, Any]:
    """Seconds from exec to a 200 from /healthz (without a CRI socket: to its 503)."""
    want = 200 if socket_path is not None else 503
    merged = work / "merged-ro"
    merged.mkdir()
    timings, baseline = [], []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(
            ["unshare", "-m", "-p", "-f", "--propagation", "private", "sh", "-c",
             _in_image(base, upper, merged, None, ["python3", "-c", "pass"])],
            check=True,
        )  # fmt: skip
        baseline.append(time.monotonic() - started)
        port = _free_port()
        argv = ["kcheckpoint", "serve", "--host=127.0.0.1", f"--port={port}",
                "--root-dir=/tmp/kubelet", "--allow-anonymous",
                "--runtime-endpoint=unix:///run/containerd/containerd.sock"]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.Popen(
            ["unshare", "-m", "-p", "-f", "--kill-child", "--propagation", "private", "sh", "-c",
             _in_image(base, upper, merged, socket_path, argv)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            while (status := _healthz(port)) != want:
                if proc.poll() is not None or time.monotonic() - started > 30:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise SystemExit(f"build-image: the service never answered {want}: {err}")
                time.sleep(0.02)
            timings.append(time.monotonic() - started)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    return {
        "healthy": socket_path is not None,
        "status": status,
        "seconds": statistics.median(timings),
        "runs": [round(t, 3) for t in timings],
        "python_start_seconds": statistics.median(baseline),
    }


def harness_socket() -> Path | None:
    env_file = os.environ.get("KCHECKPOINT_TEST_CRI")
    if not env_file or not Path(env_file).exists():
        return None
    endpoint = json.loads(Path(env_file).read_text()).get("endpoint", "")
    path = Path(endpoint.removeprefix("unix://"))
    return path if path.is_socket() else None
