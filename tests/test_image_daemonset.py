"""The image from scripts/build-image, run as deploy/daemonset.yaml says, on a real containerd 2.x.

The DaemonSet is rendered with this node's values (the harness's socket and shared directory, a
free port, the image pushed to the harness's registry) and its pod template is translated into
CRI calls as the kubelet makes them (tests/capture/kubelet.py). The container then checkpoints
another pod of the same containerd, and the runtime's own record of what it ran (the OCI spec in
ContainerStatus) is compared with the manifest.

``.ci/run`` builds the image first and exports ``KCHECKPOINT_TEST_IMAGE``; without it this module
builds one (cached: see scripts/build_image.py). Needs the harness, as
tests/test_capture_real_runtime.py does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from kcheckpoint import __version__
from kcheckpoint._proto.cri import api_pb2, lifecycle_pb2

from ._fleet import free_port
from .capture import certs, kubelet
from .capture.app_fixtures import OPS, TOKENS, bearer
from .capture.real_cri import (
    COUNTER,
    ENV_FILE,
    Harness,
    RunningPod,
    call,
    container_status,
    exec_sync,
    pods,
    pull_image,
    remove_pod,
)
from .conftest import container_of, needs_containerd

ROOT = Path(__file__).resolve().parent.parent
NS = "kcp-image"
RUNNING = 1

pytestmark = needs_containerd("to run the image on")


def image_layout(harness_dir: Path) -> Path:
    """The OCI layout tar to test: $KCHECKPOINT_TEST_IMAGE, else a fresh (cached) build."""
    given = os.environ.get("KCHECKPOINT_TEST_IMAGE")
    if given:
        return Path(given)
    out = harness_dir / "kcheckpoint-oci.tar"
    if not out.exists():
        build = [sys.executable, str(ROOT / "scripts" / "build_image.py"), "--no-measure"]
        subprocess.run([*build, "--output", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


@dataclass
class Deployed:
    """The DaemonSet's container, running, and what it was run from."""

    harness: Harness
    ds: dict[str, Any]
    values: kubelet.NodeValues
    configs: kubelet.PodConfigs
    container_id: str
    target: RunningPod
    pki: certs.Pki
    url: str

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.harness.endpoint)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=tls(self.pki), timeout=120)


def tls(pki: certs.Pki, client: bool = True) -> ssl.SSLContext:
    """Trust the test CA; present the client certificate unless told not to."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def _wait_healthy(url: str, pki: certs.Pki, container: str, channel: grpc.Channel) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{url}/healthz", verify=tls(pki), timeout=2)
            if response.status_code == 200:
                return
        status = container_status(channel, container)
        if status.state != RUNNING or time.monotonic() > deadline:
            log = Path(status.log_path).read_text(errors="replace") if status.log_path else ""
            raise AssertionError(f"the service never got healthy (state {status.state}):\n{log}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    assert ENV_FILE
    harness = Harness.load(ENV_FILE)
    registry_port = json.loads(Path(ENV_FILE).read_text())["registry_port"]
    layout = image_layout(harness.dir)
    reference = f"127.0.0.1:{registry_port}/kcheckpoint:{__version__}"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
         f"oci-archive:{layout}", f"docker://{reference}"],
        check=True, capture_output=True,
    )  # fmt: skip
    image_ref = pull_image(harness.endpoint, reference)
    work = Path(tempfile.mkdtemp(prefix="image-", dir=harness.share))
    pki = certs.make_pki(work)
    values = kubelet.NodeValues(
        image=reference,
        root_dir=work / "node" / "var/lib/kubelet",
        socket=harness.share / "containerd.sock",
        audit_dir=work / "node" / "var/log/kcheckpoint",
        port=free_port(),
    )
    docs = kubelet.render((ROOT / "deploy" / "daemonset.yaml").read_text(), values)
    ds = kubelet.daemonset(docs)
    configs = kubelet.pod_configs(
        ds,
        image_ref=image_ref,
        uid="uid-kcheckpoint-node",
        pod_dir=work / "pod",
        cgroup_parent=harness.cgroup_parent,
        secrets={
            "kcheckpoint-tokens": {"tokens.csv": TOKENS.encode()},
            "kcheckpoint-tls": {
                "tls.crt": pki.server_cert.read_bytes(),
                "tls.key": pki.server_key.read_bytes(),
            },
        },
        config_maps={"kcheckpoint-client-ca": {"ca.crt": pki.ca.read_bytes()}},
    )
    target_spec = harness.pod(NS, "web", "app", ["/bin/sh", "-c", COUNTER])
    with (
        pods(harness.endpoint, work / "pod-logs", target_spec) as (target,),
        grpc.insecure_channel(harness.endpoint) as channel,
    ):
        sandbox = call(
            channel,
            "RunPodSandbox",
            lifecycle_pb2.RunPodSandboxRequest(config=configs.sandbox),
            lifecycle_pb2.RunPodSandboxResponse,
        ).pod_sandbox_id
        try:
            container = call(
                channel,
                "CreateContainer",
                lifecycle_pb2.CreateContainerRequest(
                    pod_sandbox_id=sandbox, config=configs.container, sandbox_config=configs.sandbox
                ),
                lifecycle_pb2.CreateContainerResponse,
            ).container_id
            call(
                channel,
                "StartContainer",
                lifecycle_pb2.StartContainerRequest(container_id=container),
                lifecycle_pb2.StartContainerResponse,
            )
            url = f"https://127.0.0.1:{values.port}"
            _wait_healthy(url, pki, container, channel)
            yield Deployed(harness, ds, values, configs, container, target, pki, url)
        finally:
            with contextlib.suppress(grpc.RpcError):
                remove_pod(channel, sandbox)
    shutil.rmtree(work, ignore_errors=True)


def test_post_from_the_container_checkpoints_another_pod(deployed: Deployed, cli: Any) -> None:
    time.sleep(1)  # the counter ticks a few times
    with deployed.client() as client:
        response = client.post(f"/checkpoint/{NS}/web/app", headers=bearer(OPS))
    assert response.status_code == 200, response.text
    (archive,) = (Path(p) for p in response.json()["items"])
    # the path the service named in its container is the file on the host
    checkpoints = deployed.values.root_dir / "checkpoints"
    assert archive.parent == checkpoints
    assert archive.name.startswith(f"checkpoint-web_{NS}-app-")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.stat().st_uid == 0
    result = cli("--no-times", "summary", "--format", "json", str(archive))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["archives"][0]["summary"]
    assert container_of(summary) == ("containerd", NS, "web", "app")
    assert summary["processes"] >= 1 and summary["problems"] == []
    # the audit log went to the host path the manifest mounts
    audit = [json.loads(line) for line in (deployed.values.audit_dir / "audit.jsonl").open()]
    assert {"action": "checkpoint", "status": 200, "user": "ops", "path": str(archive)}.items() <= (
        next(e for e in audit if e.get("path") == str(archive)).items()
    )


def test_the_service_refuses_without_a_token_or_a_client_certificate(deployed: Deployed) -> None:
    with deployed.client() as client:
        assert client.post(f"/checkpoint/{NS}/web/app").status_code == 401
    with pytest.raises(httpx.HTTPError):  # no client certificate: the TLS handshake fails
        httpx.get(f"{deployed.url}/healthz", verify=tls(deployed.pki, client=False), timeout=5)


def _runtime_spec(deployed: Deployed) -> dict[str, Any]:
    with deployed.channel() as channel:
        response = call(
            channel,
            "ContainerStatus",
            api_pb2.ContainerStatusRequest(container_id=deployed.container_id, verbose=True),
            api_pb2.ContainerStatusResponse,
        )
    return dict(json.loads(response.info["info"])["runtimeSpec"])


def test_what_ran_is_what_the_manifest_says(deployed: Deployed) -> None:
    """The runtime's OCI spec of the running container, against the rendered manifest."""
    spec = deployed.ds["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    runtime = _runtime_spec(deployed)
    process = runtime["process"]
    # args: the image's entrypoint, then the manifest's args (serve first)
    assert process["args"] == ["/usr/local/bin/kcheckpoint", *container["args"]]
    args = dict(a.split("=", 1) for a in container["args"][1:])
    assert args["--port"] == str(deployed.values.port)
    assert args["--runtime-endpoint"] == f"unix://{deployed.harness.share}/containerd.sock"
    assert args["--root-dir"] == str(deployed.values.root_dir)
    for env in container["env"]:
        assert f"{env['name']}={env['value']}" in process["env"]
    # security context: uid 0, no capabilities at all, no new privileges, read-only root, seccomp
    assert (process["user"]["uid"], process["user"]["gid"]) == (0, 0)
    assert all(not process.get("capabilities", {}).get(s) for s in ("bounding", "effective",
               "permitted", "inheritable", "ambient"))  # fmt: skip
    assert process["noNewPrivileges"] is True
    assert runtime["root"]["readonly"] is True
    assert runtime["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    # mounts: each volumeMount at its path, from the manifest's host path, read-only as it says
    volumes = {v["name"]: v for v in spec["volumes"]}
    by_destination = {m["destination"]: m for m in runtime["mounts"]}
    for mount in container["volumeMounts"]:
        ran = by_destination[mount["mountPath"]]
        host = deployed.configs.volume_paths[mount["name"]]
        if "hostPath" in volumes[mount["name"]]:
            assert host == Path(volumes[mount["name"]]["hostPath"]["path"])
        assert ran["source"] == str(host)
        assert ("ro" in ran["options"]) is bool(mount.get("readOnly", False)), ran
    # the checkpoints directory and the socket: the same path inside as on the host
    assert by_destination[str(deployed.values.root_dir / "checkpoints")]["source"] == str(
        deployed.values.root_dir / "checkpoints"
    )
    assert by_destination[str(deployed.values.socket)]["source"] == str(deployed.values.socket)


def test_inside_the_container_root_is_read_only_and_pid_1_has_no_capabilities(
    deployed: Deployed,
) -> None:
    with deployed.channel() as channel:
        status = exec_sync(channel, deployed.container_id, "cat", "/proc/1/status")
        caps = {
            k: int(v, 16)
            for k, v in (
                line.split(":\t") for line in status.splitlines() if line.startswith("Cap")
            )
        }
        assert caps == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
        assert "NoNewPrivs:\t1" in status
        with pytest.raises(RuntimeError, match="Read-only file system"):
            exec_sync(channel, deployed.container_id, "touch", "/usr/written")
        # the token file arrived as the Secret's file, read-only and 0400
        mode = exec_sync(channel, deployed.container_id, "stat", "-c", "%a",
                         "/etc/kcheckpoint/tokens/tokens.csv")  # fmt: skip
        assert mode.strip() == "400"
        with pytest.raises(RuntimeError, match="Read-only file system"):
            exec_sync(channel, deployed.container_id, "touch", "/etc/kcheckpoint/tokens/x")
        # the image's own health check agrees
        exec_sync(
            channel, deployed.container_id, "env", f"KCHECKPOINT_PORT={deployed.values.port}",
            "KCHECKPOINT_TLS_CERT_FILE=/etc/kcheckpoint/tls/tls.crt",
            # mutual TLS: the server's own pair, which the client CA signed, serves as client
            "KCHECKPOINT_HEALTHCHECK_CERT=/etc/kcheckpoint/tls/tls.crt",
            "KCHECKPOINT_HEALTHCHECK_KEY=/etc/kcheckpoint/tls/tls.key",
            "/usr/local/bin/kcheckpoint-healthcheck",
        )  # fmt: skip
