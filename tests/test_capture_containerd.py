"""Integration against a real containerd CRI (1.6 on Debian 12), started by .ci/run.

containerd 1.6 has no checkpoint support: its CheckpointContainer answers UNIMPLEMENTED, which
must come back as the kubelet's 500 with containerd's own message. The lookup runs through the
real ListPodSandbox and ListContainers, with a decoy pod of the same name in another namespace.
Start containerd by hand with ``python3 scripts/containerd_env.py start DIR`` and export the
KCHECKPOINT_TEST_CRI_ENDPOINT line it prints.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kcheckpoint._proto.cri import api_pb2, api_pb2_grpc
from kcheckpoint.capture.runtime import CriClient

from .capture.app_fixtures import OPS, TOKENS, bearer
from .capture.real_cri import RunningPod, pods

ENDPOINT = os.environ.get("KCHECKPOINT_TEST_CRI_ENDPOINT")

pytestmark = [
    pytest.mark.containerd,
    pytest.mark.skipif(
        not ENDPOINT,
        reason="KCHECKPOINT_TEST_CRI_ENDPOINT is not set: no containerd to test against "
        "(.ci/run starts one; by hand: python3 scripts/containerd_env.py start DIR)",
    ),
]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningPod]]:
    assert ENDPOINT
    logs = tmp_path_factory.mktemp("pod-logs")
    specs = [("kcp-it", "web", "app"), ("kcp-decoy", "web", "app")]
    with pods(ENDPOINT, logs, *specs) as started:
        yield started


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    from dataclasses import replace

    from kcheckpoint.capture.app import create_app
    from kcheckpoint.capture.settings import Settings

    from .capture.app_fixtures import TestClient

    tokens = tmp_path / "tokens.csv"
    tokens.write_text(TOKENS)
    settings = replace(
        Settings(root_dir=tmp_path / "root", runtime_endpoint=ENDPOINT),
        token_auth_file=tokens,
        runtime_request_timeout=30.0,
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.checkpoint_dir = settings.checkpoint_dir  # type: ignore[attr-defined]
        yield test_client


def test_lookup_finds_the_labelled_pod_and_not_the_decoy(running: list[RunningPod]) -> None:
    wanted, decoy = running

    async def find(namespace: str) -> str:
        cri = CriClient(ENDPOINT or "", request_timeout=10)
        try:
            return (await cri.find_container(namespace, "web", "app")).id
        finally:
            await cri.close()

    assert asyncio.run(find("kcp-it")) == wanted.container_id
    assert asyncio.run(find("kcp-decoy")) == decoy.container_id != wanted.container_id


def test_unimplemented_checkpoint_is_500_with_containerds_message(
    running: list[RunningPod], client: Any
) -> None:
    wanted = running[0]
    with grpc.insecure_channel(ENDPOINT or "") as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as direct:
            stub.CheckpointContainer(
                api_pb2.CheckpointContainerRequest(
                    container_id=wanted.container_id, location="/nonexistent/x.tar"
                ),
                timeout=10,
            )
    assert direct.value.code() == grpc.StatusCode.UNIMPLEMENTED
    details = direct.value.details()

    response = client.post("/checkpoint/kcp-it/web/app", headers=bearer(OPS))
    assert response.status_code == 500
    assert response.text == (
        f"checkpointing of kcp-it/web/app failed (rpc error: code = Unimplemented desc = {details})"
    )
    assert "CheckpointContainer" in details
    assert list(client.checkpoint_dir.iterdir()) == []  # nothing partial left behind


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("kcp-it/nope/app", "pod does not exist"),
        ("kcp-missing/web/app", "pod does not exist"),
        ("kcp-it/web/nope", "container nope does not exist"),
    ],
)
def test_unknown_pod_or_container_is_404(
    running: list[RunningPod], client: Any, target: str, body: str
) -> None:
    response = client.post(f"/checkpoint/{target}", headers=bearer(OPS))
    assert (response.status_code, response.text) == (404, body)


def test_healthz_names_containerd(running: list[RunningPod], client: Any) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["runtime"]["name"] == "containerd"
    assert json.dumps(health)
