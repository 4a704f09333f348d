"""A real containerd 2.x restores a container from a checkpoint image kcheckpoint pushed.

The flow of "Moving a checkpoint" in the README: a running counter is checkpointed through the
capture service and pushed as an image in one step (``capture --push``); containerd pulls the
image from Debian's docker-registry over CRI and restores it in a new pod, where the counter
carries on from its saved value. Needs the harness (``KCHECKPOINT_TEST_CRI``, see
tests/test_capture_real_runtime.py); paths handed to containerd lie in its shared directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from kcheckpoint.capture.app import create_app

from .capture.app_fixtures import OPS, service_settings
from .capture.real_cri import (
    COUNTER,
    ENV_FILE,
    Harness,
    RunningPod,
    pods,
    pull_image,
    restart_containerd,
    restore_counter,
)
from .capture.server import serving
from .conftest import needs_containerd

NS = "kcp-oci"

pytestmark = needs_containerd("to test against")


@pytest.fixture(scope="module")
def harness() -> Harness:
    assert ENV_FILE
    restart_containerd(Path(ENV_FILE).parent)  # the capture tests kill it once
    return Harness.load(ENV_FILE)


@pytest.fixture(scope="module")
def registry_host() -> str:
    assert ENV_FILE
    return f"127.0.0.1:{json.loads(Path(ENV_FILE).read_text())['registry_port']}"


@pytest.fixture(scope="module")
def work(harness: Harness) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="oci-", dir=harness.share))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def counter(harness: Harness, work: Path) -> Iterator[RunningPod]:
    spec = harness.pod(NS, "counter", "app", ["/bin/sh", "-c", COUNTER])
    with pods(harness.endpoint, work / "pod-logs", spec) as [pod]:
        time.sleep(2)  # the counter is well past its first ticks
        yield pod


@pytest.fixture(scope="module")
def pushed(harness: Harness, work: Path, counter: RunningPod, registry_host: str) -> dict[str, Any]:
    """capture --push through the service: the checkpoint image on the harness's registry."""
    from kcheckpoint.cli import main

    root = work / "svc"
    root.mkdir()
    settings = service_settings(root, harness.endpoint, 60.0)
    out = work / "capture.json"
    os.environ["KCHECKPOINT_TOKEN"] = OPS
    try:
        with serving(create_app(settings)) as url:
            ref = f"{registry_host}/kcp-oci/counter:ckpt"
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = main(
                    ["capture", url, f"{NS}/counter/app", "--push", ref, "--insecure", "-o", "json"]
                )
            assert code == 0, buffer.getvalue()
    finally:
        os.environ.pop("KCHECKPOINT_TOKEN", None)
    out.write_text(buffer.getvalue())
    return dict(json.loads(buffer.getvalue()))


def saved_counter(cli: Any, image: str, tmp_path: Path) -> int:
    """The counter as the checkpoint saved it, read from the image itself."""
    result = cli("extract", image, "rootfs-diff/tmp/counter", "-d", tmp_path / "x")
    assert result.exit_code == 0, result.stderr
    return int((tmp_path / "x" / "rootfs-diff" / "tmp" / "counter").read_text())


def import_archive(cli: Any, harness: Harness, source: str, name: str, work: Path) -> str:
    """Rebuild the image from ``source`` into an oci-archive and ``ctr images import`` it (in
    containerd's mount namespace, from the shared directory), as an air-gapped node would."""
    archive = work / "imported.tar"
    result = cli("image", source, name, "--oci-archive", archive)
    assert result.exit_code == 0, result.stderr
    env = json.loads((harness.dir / "env.json").read_text())
    socket_path = harness.endpoint.removeprefix("unix://")
    command = ["nsenter", "-t", str(env["holder_pid"]), "-m", "--", "ctr", "-a", socket_path]
    subprocess.run(
        [*command, "-n", "k8s.io", "images", "import", str(archive)],
        check=True,
        capture_output=True,
    )
    return str(result.stdout.split()[0])


@pytest.mark.parametrize("by", ["tag", "manifest-digest", "imported-archive"])
def test_containerd_pulls_the_image_and_restores_the_counter(
    cli: Any,
    harness: Harness,
    work: Path,
    pushed: dict[str, Any],
    registry_host: str,
    tmp_path: Path,
    by: str,
) -> None:
    name = f"{registry_host}/kcp-oci/counter"
    if by == "imported-archive":
        # the same image, rebuilt from the registry copy (the digests must agree) and imported
        image = f"{registry_host}/kcp-oci/imported:1"
        digest = import_archive(cli, harness, f"docker://{name}:ckpt", image, work)
        assert digest == pushed["image"]["digest"]
    elif by == "tag":
        image = f"{name}:ckpt"  # the tag names the index: the annotations are on the index
    else:
        answer = httpx.get(
            f"http://{registry_host}/v2/kcp-oci/counter/manifests/ckpt",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        )
        index = answer.json()
        # the manifest alone, by digest: the annotations are on the manifest (as buildah puts them)
        image = f"{name}@{index['manifests'][0]['digest']}"
    # what the checkpoint saved, read from the very image containerd restores
    source = {"tag": f"docker://{image}", "manifest-digest": image}.get(by)
    saved = saved_counter(cli, source or f"oci-archive:{work / 'imported.tar'}", tmp_path)
    assert saved >= 5
    if by != "imported-archive":  # pulled over CRI, as the kubelet does
        assert pull_image(harness.endpoint, image).startswith("sha256:")
    spec = harness.pod(NS, f"restored-{by}", "app")
    with grpc.insecure_channel(harness.endpoint) as channel:
        restored = restore_counter(channel, spec, work / "pod-logs", image)
    # a fresh start would count from 1; the restored shell carries on from its saved value
    assert saved <= restored.first < saved + 25, (saved, restored.first)
    assert restored.later > restored.first
    assert restored.status.annotations["restored"] == "true"
