"""What the kubelet lacks: list, download (SHA-256, Range), delete, retention, health, metrics,
audit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from kcheckpoint.capture.names import parse_archive_name
from kcheckpoint.capture.retention import select_removals
from kcheckpoint.capture.settings import RetentionPolicy, parse_duration, parse_size
from kcheckpoint.capture.store import ArchiveInfo

from .capture.app_fixtures import ALICE, BOB, OPS, Capture, bearer, running_capture
from .capture.fake_cri import PAYLOAD


def capture_one(cap: Capture, target: str = "default/web/app") -> str:
    response: Any = cap.post(target)
    assert response.status_code == 200, response.text
    return Path(json.loads(response.text)["items"][0]).name


def test_list_shows_namespace_pod_container_time_size(cap: Capture) -> None:
    first = capture_one(cap)
    second = capture_one(cap, "other/web/app")
    items = cap.client.get("/checkpoints", headers=bearer(OPS)).json()["items"]
    assert [i["name"] for i in items] == [first, second]
    item = items[0]
    assert (item["namespace"], item["pod"], item["container"]) == ("default", "web", "app")
    assert item["size"] == len(PAYLOAD)
    assert item["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert item["time"] == parse_archive_name(first).timestamp
    # a token sees only its namespaces
    alice = cap.client.get("/checkpoints", headers=bearer(ALICE)).json()["items"]
    assert [i["name"] for i in alice] == [first]


def test_list_includes_kubelet_archives_without_sidecar(cap: Capture) -> None:
    foreign = cap.directory / "checkpoint-db_prod-postgres-2024-02-08T10:20:30Z.tar"
    foreign.write_bytes(b"x" * 10)
    ambiguous = cap.directory / "checkpoint-db_kube-system-core-dns-2024-02-08T10:20:30Z.tar"
    ambiguous.write_bytes(b"y")
    (cap.directory / "notes.txt").write_text("ignored")
    items = {
        i["name"]: i for i in cap.client.get("/checkpoints", headers=bearer(OPS)).json()["items"]
    }
    assert items[foreign.name]["namespace"] == "prod"
    assert items[foreign.name]["container"] == "postgres"
    assert items[ambiguous.name]["namespace"] is None  # '-' in both: cannot split
    assert "notes.txt" not in items
    # only a '*' token may see archives whose namespace is unknown
    alice = cap.client.get("/checkpoints", headers=bearer(ALICE)).json()["items"]
    assert ambiguous.name not in {i["name"] for i in alice}


def test_download_streams_with_sha256(cap: Capture) -> None:
    name = capture_one(cap)
    response = cap.client.get(f"/checkpoints/{name}", headers=bearer(ALICE))
    assert response.status_code == 200
    assert response.content == PAYLOAD
    digest = hashlib.sha256(PAYLOAD)
    assert response.headers["x-checkpoint-sha256"] == digest.hexdigest()
    assert (
        response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
    )
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/x-tar"


def test_download_supports_range_for_resuming(cap: Capture) -> None:
    name = capture_one(cap)
    headers = {**bearer(OPS), "Range": "bytes=100-"}
    response = cap.client.get(f"/checkpoints/{name}", headers=headers)
    assert response.status_code == 206
    assert response.content == PAYLOAD[100:]
    assert response.headers["content-range"] == f"bytes 100-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
    # the digest is that of the whole archive, so the resumed whole can be verified
    assert response.headers["x-checkpoint-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    middle = cap.client.get(f"/checkpoints/{name}", headers={**bearer(OPS), "Range": "bytes=5-9"})
    assert (middle.status_code, middle.content) == (206, PAYLOAD[5:10])
    bad = cap.client.get(f"/checkpoints/{name}", headers={**bearer(OPS), "Range": "bytes=9999-"})
    assert bad.status_code == 416


def test_download_and_delete_are_scoped_to_namespaces(cap: Capture) -> None:
    name = capture_one(cap, "other/web/app")
    assert cap.client.get(f"/checkpoints/{name}", headers=bearer(ALICE)).status_code == 403
    assert cap.client.delete(f"/checkpoints/{name}", headers=bearer(ALICE)).status_code == 403
    assert (cap.directory / name).exists()
    assert cap.client.get(f"/checkpoints/{name}", headers=bearer(BOB)).status_code == 200


def test_delete(cap: Capture) -> None:
    name = capture_one(cap)
    assert cap.client.delete(f"/checkpoints/{name}", headers=bearer(OPS)).status_code == 204
    assert cap.files() == []  # the archive and its sidecar
    missing = cap.client.delete(f"/checkpoints/{name}", headers=bearer(OPS))
    assert (missing.status_code, missing.text) == (404, f"archive {name} not found")
    assert cap.client.get(f"/checkpoints/{name}", headers=bearer(OPS)).status_code == 404


def test_a_changed_archive_gets_a_fresh_digest(cap: Capture) -> None:
    name = capture_one(cap)
    (cap.directory / name).write_bytes(b"changed")
    response = cap.client.get(f"/checkpoints/{name}", headers=bearer(OPS))
    assert response.headers["x-checkpoint-sha256"] == hashlib.sha256(b"changed").hexdigest()


def test_healthz(cap: Capture) -> None:
    body = cap.client.get("/healthz").json()
    assert body["status"] == "ok" and body["runtime"]["name"] == "kcheckpoint-demo"
    cap.cri.service.fail["Version"] = (grpc.StatusCode.UNAVAILABLE, "down")
    response = cap.client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_metrics(cap: Capture) -> None:
    capture_one(cap)
    cap.post("default/nope/app")
    text = cap.client.get("/metrics").text
    assert 'kcheckpoint_checkpoints_total{result="ok"} 1.0' in text
    assert 'kcheckpoint_checkpoints_total{result="not_found"} 1.0' in text
    assert f"kcheckpoint_archive_bytes_total {float(len(PAYLOAD))}" in text
    assert "kcheckpoint_checkpoint_duration_seconds_count 1.0" in text
    assert 'route="checkpoint"' in text
    cap.cri.service.fail["CheckpointContainer"] = (grpc.StatusCode.UNIMPLEMENTED, "no")
    cap.post("default/web/app")
    text = cap.client.get("/metrics").text
    assert 'kcheckpoint_runtime_errors_total{error="CheckpointUnsupported"} 1.0' in text
    assert 'kcheckpoint_checkpoints_total{result="unsupported"} 1.0' in text


def test_openapi_documents_the_routes(cap: Capture) -> None:
    spec = cap.client.get("/openapi.json").json()
    assert "/checkpoint/{namespace}/{pod}/{container}" in spec["paths"]
    assert {"get", "delete"} <= set(spec["paths"]["/checkpoints/{name}"])


def test_audit_log_records_who_what_result_path_and_digest(cap: Capture) -> None:
    name = capture_one(cap)
    cap.post("default/nope/app", token=ALICE)
    cap.client.get(f"/checkpoints/{name}", headers=bearer(OPS))
    cap.client.delete(f"/checkpoints/{name}", headers=bearer(OPS))
    lines = [json.loads(x) for x in cap.settings.audit_log.read_text().splitlines()]  # type: ignore[union-attr]
    ok, missing, download, delete = lines
    assert ok["action"] == "checkpoint" and ok["user"] == "ops" and ok["result"] == "ok"
    assert ok["path"].endswith(name) and ok["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert ok["target"] == "default/web/app" and "time" in ok and ok["status"] == 200
    assert missing["status"] == 404 and missing["user"] == "alice"
    assert missing["error"] == "pod does not exist"
    assert (download["action"], delete["action"]) == ("download", "delete")
    mode = os.stat(cap.settings.audit_log).st_mode & 0o777  # type: ignore[arg-type]
    assert mode == 0o600


def _info(name: str, size: int = 10) -> ArchiveInfo:
    parsed = parse_archive_name(name)
    return ArchiveInfo(
        name, "/x/" + name, parsed.namespace, parsed.pod, parsed.container, "", size, None
    )


def _names(container: str, count: int) -> list[str]:
    return [
        f"checkpoint-web_default-{container}-2024-01-0{i + 1}T00:00:00Z.tar" for i in range(count)
    ]


def test_retention_per_container_keeps_the_newest() -> None:
    names = _names("app", 4) + _names("db", 2)
    pairs = [(_info(n), float(i)) for i, n in enumerate(names)]
    removed = select_removals(pairs, RetentionPolicy(max_per_container=2), now=100.0)
    assert sorted(r.info.name for r in removed) == names[:2]


def test_retention_total_bytes_and_age() -> None:
    names = _names("app", 5)
    pairs = [(_info(n, size=100), float(i)) for i, n in enumerate(names)]
    by_size = select_removals(pairs, RetentionPolicy(max_total_bytes=250), now=10.0)
    assert [r.info.name for r in by_size] == names[:3]
    by_age = select_removals(pairs, RetentionPolicy(max_age_seconds=8.5), now=10.0)
    assert [r.info.name for r in by_age] == names[:2]


def test_retention_never_removes_the_archive_it_keeps() -> None:
    names = _names("app", 3)
    pairs = [(_info(n, size=100), float(i)) for i, n in enumerate(names)]
    policy = RetentionPolicy(max_per_container=1, max_total_bytes=1, max_age_seconds=0)
    removed = select_removals(pairs, policy, now=1000.0, keep=frozenset({names[2]}))
    assert sorted(r.info.name for r in removed) == names[:2]


def test_retention_by_age_applies_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "root" / "checkpoints"
    directory.mkdir(parents=True, mode=0o700)
    old = directory / _names("app", 1)[0]
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    stale_temp = directory / ".tmp-checkpoint-web_default-app-x.tar"
    stale_temp.write_bytes(b"half")
    with running_capture(tmp_path, retention=RetentionPolicy(max_age_seconds=60)) as cap:
        assert cap.files() == []


def test_size_and_duration_parsing() -> None:
    assert parse_size("1048576") == 1048576
    assert parse_size("500M") == 500_000_000
    assert parse_size("10Gi") == 10 * 2**30
    assert parse_size("2kib") == 2048
    assert parse_duration("90") == 90 and parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * 86400 and parse_duration("1.5h") == 5400
    for bad in ("", "10X", "-1", "1 GB extra"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(ValueError):
        parse_duration("soon")
