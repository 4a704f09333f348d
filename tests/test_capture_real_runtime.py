"""The capture service against a real containerd 2.x that checkpoints and restores.

``.ci/run`` starts the runtime with ``scripts/cri_harness.py start DIR`` (containerd, runc and
CRIU from Debian, in a private mount namespace) and exports ``KCHECKPOINT_TEST_CRI``, the path of
the env.json it writes. By hand::

    python3 scripts/cri_harness.py start /tmp/kcp-cri
    KCHECKPOINT_TEST_CRI=/tmp/kcp-cri/env.json python3 -m pytest tests/test_capture_real_runtime.py
    python3 scripts/cri_harness.py stop /tmp/kcp-cri

Every path handed to containerd (the service's root dir, the pod logs, a restore's archive) lies
in the harness's shared directory, which containerd sees at the same path. The test that kills
containerd runs last and starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from kcheckpoint.capture.app import create_app
from kcheckpoint.capture.runtime import CriClient
from kcheckpoint.capture.settings import Settings

from ._fleet import free_port
from .capture.app_fixtures import OPS, ServiceFiles, bearer, service_settings
from .capture.real_cri import (
    COUNTER,
    ENV_FILE,
    Harness,
    RunningPod,
    container_state,
    exec_sync,
    pods,
    remove_all,
    restart_containerd,
    restore_counter,
    wait_state,
)
from .capture.server import serving
from .conftest import container_of, needs_containerd

RUNNING, EXITED = 1, 2
NS = "kcp-real"
#: planted in the worker's environment: redacted in every default output
PLANTED_PASSWORD = "hunter2-real-runtime-pw"
#: the worker: a little state on disk, then COUNTER
WORKER = (
    "echo state > /tmp/state; mkdir -p /root/x && echo y > /root/x/y; rm -f /etc/group; " + COUNTER
)
#: ~400 MB of memory: a dump that takes seconds
BIG = (
    "x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo ready > /tmp/ready; "
    "trap 'exit 0' TERM; sleep 2147483647 & wait"
)

pytestmark = needs_containerd("to test against")


@dataclass
class Fleet:
    """The pods of this module, by role."""

    harness: Harness
    work: Path
    worker: RunningPod
    decoy: RunningPod
    listener: RunningPod
    listener_port: int
    connected: RunningPod
    stopped: RunningPod
    big: RunningPod

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.harness.endpoint)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    assert ENV_FILE
    restart_containerd(Path(ENV_FILE).parent)  # a no-op unless an earlier run left it dead
    harness = Harness.load(ENV_FILE)
    remove_all(harness.endpoint)  # the harness's runtime is ours alone: start clean
    work = Path(tempfile.mkdtemp(prefix="tests-", dir=harness.share))
    # a peer on the host for a container that holds an established TCP connection
    peer = socket.create_server(("127.0.0.1", 0))
    peer_port = peer.getsockname()[1]
    listener_port = free_port()
    specs = [
        harness.pod(NS, "web", "app", ["/bin/sh", "-c", WORKER], {"DB_PASSWORD": PLANTED_PASSWORD}),
        harness.pod("kcp-decoy", "web", "app", ["/bin/sh", "-c", COUNTER]),
        harness.pod(NS, "net", "listener", ["/bin/nc", "-l", "-p", str(listener_port)]),
        harness.pod(NS, "conn", "client", ["/bin/nc", "127.0.0.1", str(peer_port)]),
        harness.pod(NS, "done", "oneshot", ["/bin/sh", "-c", "exit 0"]),
        harness.pod(NS, "big", "hog", ["/bin/sh", "-c", BIG]),
    ]
    with pods(harness.endpoint, work / "pod-logs", *specs) as started, peer:
        accepted, _ = peer.accept()
        fleet = Fleet(harness, work, *started[:3], listener_port, *started[3:])  # type: ignore[call-arg]
        with grpc.insecure_channel(harness.endpoint) as channel:
            wait_state(channel, fleet.stopped.container_id, EXITED)
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(RuntimeError, grpc.RpcError):
                    exec_sync(channel, fleet.big.container_id, "cat", "/tmp/ready")
                    break
                assert time.monotonic() < deadline, "the big container never got ready"
                time.sleep(0.2)
        with accepted:
            yield fleet
    shutil.rmtree(work, ignore_errors=True)


@dataclass
class Service(ServiceFiles):
    """The app under a real uvicorn."""

    url: str
    settings: Settings

    def post(self, target: str, query: str = "", timeout: float = 120) -> httpx.Response:
        return httpx.post(
            f"{self.url}/checkpoint/{target}{query}", headers=bearer(OPS), timeout=timeout
        )


@contextlib.contextmanager
def service(fleet: Fleet, **overrides: Any) -> Iterator[Service]:
    """The app under a real uvicorn, on a fresh root dir that containerd can see."""
    root = Path(tempfile.mkdtemp(prefix="svc-", dir=fleet.work))
    settings = service_settings(root, fleet.harness.reload().endpoint, 60.0, **overrides)
    with serving(create_app(settings)) as url:
        yield Service(url, settings)


@pytest.fixture(scope="module")
def svc(fleet: Fleet) -> Iterator[Service]:
    with service(fleet) as running:
        yield running


@pytest.fixture(scope="module")
def worker_archive(svc: Service, fleet: Fleet) -> Path:
    """One checkpoint of the worker through the API, shared by the read-back tests."""
    time.sleep(1.0)  # let the counter run a few ticks
    response = svc.post(f"{NS}/web/app")
    assert response.status_code == 200, response.text
    return Path(response.json()["items"][0])


def kubelet_name(pod: str, container: str) -> re.Pattern[str]:
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
    return re.compile(rf"checkpoint-{pod}_{NS}-{container}-{stamp}\.tar")


# --- success paths ------------------------------------------------------------------------------
def test_post_answers_200_with_the_archive_at_the_kubelets_path(
    svc: Service, worker_archive: Path
) -> None:
    assert worker_archive.parent == svc.directory
    assert kubelet_name("web", "app").fullmatch(worker_archive.name)
    assert stat.S_IMODE(os.stat(svc.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(worker_archive).st_mode) == 0o600
    with tarfile.open(worker_archive) as tar:
        names = tar.getnames()
    assert {"spec.dump", "config.dump", "status.dump", "rootfs-diff.tar"} <= set(names)
    assert "checkpoint/pstree.img" in names
    # the exact body, as the kubelet writes it
    again = svc.post(f"{NS}/web/app")
    assert again.status_code == 200
    assert again.headers["content-type"] == "application/json"
    assert again.text == json.dumps({"items": [again.json()["items"][0]]}, separators=(",", ":"))


def test_summary_and_inspect_read_the_real_archive(worker_archive: Path, cli: Any) -> None:
    result = cli("--no-times", "summary", "--format", "json", worker_archive)
    assert result.exit_code == 0, result.stderr
    assert "memory may hold passwords" in result.stderr  # the secrets warning
    summary = json.loads(result.stdout)["archives"][0]["summary"]
    assert container_of(summary) == ("containerd", NS, "web", "app")
    assert summary["container"]["runtime"] == "io.containerd.runc.v2"
    assert summary["main_command"].startswith("/bin/sh -c 'echo state > /tmp/state;")
    assert summary["processes"] >= 1
    assert summary["problems"] == []

    inspected = cli("--no-times", "inspect", "--format", "json", "--all", worker_archive)
    assert inspected.exit_code == 0, inspected.stderr
    tree = json.loads(inspected.stdout)
    first = tree["processes"][0]
    assert first["pid"] == 1 and first["comm"] == "sh"
    assert PLANTED_PASSWORD not in inspected.stdout + inspected.stderr
    env = {e["name"]: e for e in first["env"]} if isinstance(first["env"], list) else first["env"]
    assert "DB_PASSWORD" in json.dumps(env)

    listing = cli("list", "--format", "json", worker_archive)
    assert listing.exit_code == 0, listing.stderr
    rootfs = json.loads(listing.stdout)["rootfs"]
    changed = {f["path"] for f in rootfs["changed"]}
    assert {"/tmp/state", "/root/x/y", "/tmp/counter"} <= changed
    assert [d["path"] for d in rootfs["deleted"]] == ["/etc/group"]


def test_a_tcp_listener_is_checkpointed_and_inspect_shows_it(
    svc: Service, fleet: Fleet, cli: Any
) -> None:
    response = svc.post(f"{NS}/net/listener")
    if fleet.harness.criu_variant == "4.1":  # CRIU 4.1.1 cannot dump inet sockets here
        assert response.status_code == 500 and "criu failed" in response.text
        return
    assert response.status_code == 200, response.text
    archive = response.json()["items"][0]
    result = cli("inspect", "--sockets", archive)
    assert result.exit_code == 0, result.stderr
    assert re.search(rf"LISTEN.*:{fleet.listener_port}\b", result.stdout), result.stdout


def test_two_checkpoints_of_one_container_at_once_give_two_complete_archives(
    svc: Service, cli: Any
) -> None:
    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=svc.url, headers=bearer(OPS), timeout=120) as c:
            return list(await asyncio.gather(*(c.post(f"/checkpoint/{NS}/web/app") for _ in "ab")))

    first, second = asyncio.run(both())
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    paths = [Path(r.json()["items"][0]) for r in (first, second)]
    assert paths[0] != paths[1]
    for path in paths:
        assert kubelet_name("web", "app").fullmatch(path.name)
        result = cli("summary", "--format", "json", path)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["archives"][0]["summary"]["problems"] == []


def test_a_burst_beyond_the_limit_gets_429_with_retry_after(fleet: Fleet) -> None:
    with service(fleet, max_concurrent=2, retry_after_seconds=7) as limited:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=limited.url, headers=bearer(OPS), timeout=120
            ) as client:
                targets = [f"{NS}/big/hog"] * 2 + [f"{NS}/web/app"] * 4
                return list(
                    await asyncio.gather(*(client.post(f"/checkpoint/{t}") for t in targets))
                )

        responses = asyncio.run(burst())
        codes = [r.status_code for r in responses]
        assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
        assert set(codes) == {200, 429}, [r.text for r in responses]
        for response in responses:
            if response.status_code == 429:
                assert response.headers["retry-after"] == "7"
        assert len([n for n in limited.files() if n.endswith(".tar")]) == codes.count(200)


def test_capture_download_gives_the_same_bytes(svc: Service, cli: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(OPS)
    result = cli(
        "capture", svc.url, f"{NS}/web/app", "-d", tmp_path, "--token-file", token, "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    local, remote = Path(row["downloaded"]), Path(row["path"])
    assert local.read_bytes() == remote.read_bytes()
    assert row["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    assert stat.S_IMODE(local.stat().st_mode) == 0o600


# --- failure paths ------------------------------------------------------------------------------
def test_a_criu_failure_is_500_with_the_runtimes_message(svc: Service, fleet: Fleet) -> None:
    before = svc.files()
    response = svc.post(f"{NS}/conn/client")  # an established TCP connection: CRIU refuses
    assert response.status_code == 500
    assert response.text.startswith(
        f"checkpointing of {NS}/conn/client failed (rpc error: code = Unknown desc = "
    )
    assert "criu failed" in response.text
    assert svc.files() == before  # no partial file
    with fleet.channel() as channel:
        assert container_state(channel, fleet.connected.container_id) == RUNNING


def test_a_stopped_container_gets_the_kubelets_answer(svc: Service) -> None:
    response = svc.post(f"{NS}/done/oneshot")
    assert (response.status_code, response.text) == (
        500,
        f"checkpointing of {NS}/done/oneshot failed (container oneshot not found)",
    )


@pytest.mark.parametrize(
    ("target", "body"),
    [
        (f"{NS}/nope/app", "pod does not exist"),
        ("kcp-missing/web/app", "pod does not exist"),
        (f"{NS}/web/nope", "container nope does not exist"),
    ],
)
def test_an_unknown_pod_or_container_is_404(svc: Service, target: str, body: str) -> None:
    response = svc.post(target)
    assert (response.status_code, response.text) == (404, body)


def test_lookup_finds_the_labelled_pod_and_not_the_decoy(fleet: Fleet) -> None:
    async def find(namespace: str) -> str:
        cri = CriClient(fleet.harness.endpoint, request_timeout=10)
        try:
            return (await cri.find_container(namespace, "web", "app")).id
        finally:
            await cri.close()

    assert asyncio.run(find(NS)) == fleet.worker.container_id
    assert asyncio.run(find("kcp-decoy")) == fleet.decoy.container_id


def test_a_timeout_shorter_than_the_dump_leaves_no_archive(fleet: Fleet) -> None:
    with service(fleet, runtime_request_timeout=1.0) as short:
        started = time.monotonic()
        response = short.post(f"{NS}/big/hog")
        took = time.monotonic() - started
        assert response.status_code == 500, response.text
        assert "DeadlineExceeded" in response.text
        assert took < 10
        # let the runtime finish the dump it was asked for (and write late, if it does), then
        # look again
        wait_for_criu(running=False)
        time.sleep(2)
        with fleet.channel() as channel:
            assert container_state(channel, fleet.big.container_id) == RUNNING
        assert short.files() == []


# --- restore ------------------------------------------------------------------------------------
def saved_counter(archive: Path) -> int:
    """The worker's counter as the checkpoint saved it (tmp/counter in rootfs-diff.tar)."""
    with tarfile.open(archive) as outer:
        member = outer.extractfile("rootfs-diff.tar")
        assert member is not None
        diff = member.read()
    if diff[:2] == b"\x1f\x8b":  # containerd gzips it despite the name
        diff = gzip.decompress(diff)
    with tarfile.open(fileobj=io.BytesIO(diff)) as inner:
        counter = inner.extractfile("tmp/counter")
        assert counter is not None
        return int(counter.read())


def test_a_downloaded_archive_restores_and_the_process_keeps_counting(
    svc: Service, fleet: Fleet
) -> None:
    time.sleep(2)  # the counter is well past the first ticks
    response = svc.post(f"{NS}/web/app")
    assert response.status_code == 200, response.text
    name = Path(response.json()["items"][0]).name
    # transfer: download through the service, check the digest, and restore from the copy
    download = httpx.get(f"{svc.url}/checkpoints/{name}", headers=bearer(OPS), timeout=60)
    assert download.status_code == 200
    transferred = fleet.work / "transfer" / name
    transferred.parent.mkdir(exist_ok=True)
    transferred.write_bytes(download.content)
    digest = hashlib.sha256(download.content).hexdigest()
    assert digest in json.dumps(dict(download.headers))
    saved = saved_counter(transferred)
    assert saved >= 5

    spec = fleet.harness.pod(NS, "web-restored", "app")
    with fleet.channel() as channel:
        restored = restore_counter(channel, spec, fleet.work / "pod-logs", str(transferred))
    # a fresh start would count from 1; the restored shell carries on from its saved value
    assert saved <= restored.first < saved + 25, (saved, restored.first)
    assert restored.later > restored.first
    assert restored.status.annotations["restored"] == "true"
    # the restored container keeps the planted secret in its environment, and only there
    assert PLANTED_PASSWORD not in response.text


def criu_running() -> bool:
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "criu":
                return True
    return False


def wait_for_criu(*, running: bool = True, seconds: float = 60) -> None:
    """Until a CRIU process runs (the runtime is dumping), or until none does."""
    deadline = time.monotonic() + seconds
    while criu_running() != running:
        if time.monotonic() > deadline:
            raise TimeoutError("no CRIU process appeared" if running else "CRIU never finished")
        time.sleep(0.02)


# --- last: containerd dies under a request ------------------------------------------------------
def test_containerd_killed_during_a_request_is_500_and_the_service_recovers(
    fleet: Fleet,
) -> None:
    with service(fleet) as running:
        wait_for_criu(running=False)  # a dump of an earlier test would be mistaken for ours

        async def post_then_kill() -> httpx.Response:
            async with httpx.AsyncClient(base_url=running.url, headers=bearer(OPS)) as client:
                request = asyncio.create_task(client.post(f"/checkpoint/{NS}/big/hog", timeout=120))
                await asyncio.to_thread(wait_for_criu)  # the dump is under way
                os.kill(fleet.harness.reload().containerd_pid, signal.SIGKILL)
                return await request

        try:
            response = asyncio.run(post_then_kill())
            assert response.status_code == 500, response.text
            assert response.text.startswith(f"checkpointing of {NS}/big/hog failed (rpc error: ")
            assert [n for n in running.files() if not n.startswith(".")] == []
            # the service answers, and says the runtime is gone
            down = httpx.get(f"{running.url}/healthz", timeout=10)
            assert down.status_code == 503
        finally:
            restart_containerd(fleet.harness.dir)
        deadline = time.monotonic() + 30
        while httpx.get(f"{running.url}/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the service never saw containerd again"
            time.sleep(0.2)
        again = running.post(f"{NS}/web/app")
        assert again.status_code == 200, again.text
        # nothing half-written: the failed capture left no archive and no temporary file
        assert [n for n in running.files() if n.endswith(".tar")] == [
            Path(again.json()["items"][0]).name
        ]
        # (containerd 2.1.9 itself leaves the dumped container paused: it froze the task for
        # the dump and died before thawing it; its status then fails to load. Not ours to fix.)
