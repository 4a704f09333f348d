"""POST /checkpoint against the fake runtime: the kubelet's answers, the store, the limits."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from .capture.app_fixtures import OPS, Capture, bearer, running_capture
from .capture.fake_cri import PAYLOAD

NAME = re.compile(
    r"checkpoint-web_default-app-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?(Z|[+-]\d\d:\d\d)\.tar\Z"
)


def test_success_is_exactly_the_kubelet_body(cap: Capture) -> None:
    response: Any = cap.post("default/web/app")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    (path,) = json.loads(response.text)["items"]
    assert response.text == '{"items":["' + path + '"]}'
    archive = Path(path)
    assert archive.parent == cap.directory and archive.is_absolute()
    assert NAME.match(archive.name), archive.name
    assert archive.read_bytes() == PAYLOAD
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(cap.directory.stat().st_mode) == 0o700
    assert response.headers["x-checkpoint-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    # the runtime wrote a temporary name in the same directory, never the final one
    (request,) = cap.cri.service.checkpoint_requests
    assert Path(request.location).parent == cap.directory
    assert Path(request.location).name.startswith(".tmp-")
    assert request.container_id == "ctr-app"
    assert cap.archives() == [archive.name]
    assert not [f for f in cap.files() if f.startswith(".tmp-")]


def test_the_directory_is_created_0700_at_start(tmp_path: Path) -> None:
    with running_capture(tmp_path) as capture:
        st = capture.directory.stat()
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def test_a_loose_directory_mode_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "root" / "checkpoints").mkdir(parents=True, mode=0o755)
    with running_capture(tmp_path) as capture:
        assert stat.S_IMODE(capture.directory.stat().st_mode) == 0o700


def test_archive_mode_is_forced_to_0600(cap: Capture) -> None:
    cap.cri.service.mode = 0o644
    response: Any = cap.post("default/web/app")
    assert response.status_code == 200
    path = Path(json.loads(response.text)["items"][0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("default/nope/app", "pod does not exist"),
        ("nope/web/app", "pod does not exist"),
        ("default/web/nope", "container nope does not exist"),
    ],
)
def test_not_found_is_404_with_the_kubelet_text(cap: Capture, target: str, body: str) -> None:
    response: Any = cap.post(target)
    assert (response.status_code, response.text) == (404, body)
    assert response.headers["content-type"].startswith("text/plain")
    assert "CheckpointContainer" not in cap.cri.service.calls


def test_not_running_is_500_container_not_found(cap: Capture) -> None:
    response: Any = cap.post("default/web/sidecar")
    assert response.status_code == 500
    assert (
        response.text == "checkpointing of default/web/sidecar failed (container sidecar not found)"
    )


@pytest.mark.parametrize(
    ("code", "details", "go"),
    [
        (
            grpc.StatusCode.UNIMPLEMENTED,
            "method CheckpointContainer not implemented",
            "Unimplemented",
        ),
        (grpc.StatusCode.UNKNOWN, "checkpoint/restore support not available", "Unknown"),
        (grpc.StatusCode.NOT_FOUND, 'could not find container "x"', "NotFound"),
        (grpc.StatusCode.UNAVAILABLE, "connection refused", "Unavailable"),
    ],
)
def test_runtime_failure_is_500_with_its_message_and_no_file(
    cap: Capture, code: grpc.StatusCode, details: str, go: str
) -> None:
    cap.cri.service.partial_then = (code, details)
    response: Any = cap.post("default/web/app")
    assert response.status_code == 500
    assert response.text == (
        f"checkpointing of default/web/app failed (rpc error: code = {go} desc = {details})"
    )
    assert cap.files() == []  # the half-written temporary file is gone too


def test_success_without_a_file_is_500(cap: Capture) -> None:
    cap.cri.service.write_nothing = True
    response: Any = cap.post("default/web/app")
    assert response.status_code == 500
    assert "wrote no archive" in response.text
    assert cap.files() == []


def test_timeout_leaves_no_partial_archive(tmp_path: Path) -> None:
    with running_capture(tmp_path, runtime_request_timeout=0.3) as cap:
        cap.cri.service.delay = 1.0
        response: Any = cap.post("default/web/app")
        assert response.status_code == 500
        assert "rpc error: code = DeadlineExceeded" in response.text
        assert cap.files() == []
        # a runtime that ignores its deadline writes late; the next capture sweeps it away
        cap.cri.service.delay = 0
        import time

        time.sleep(0.9)
        assert cap.post("default/web/app").status_code == 200  # type: ignore[attr-defined]
        assert not [f for f in cap.files() if f.startswith(".tmp-")]


def test_an_archive_written_after_the_deadline_is_removed_without_another_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    from kcheckpoint.capture import service

    monkeypatch.setattr(service, "LATE_WRITE_POLL", 0.05)
    with running_capture(tmp_path, runtime_request_timeout=0.3) as cap:
        cap.cri.service.delay = 0.8  # the fake runtime writes on, well past the deadline
        response: Any = cap.post("default/web/app")
        assert response.status_code == 500
        assert "DeadlineExceeded" in response.text
        time.sleep(1.5)  # the runtime has written its whole archive by now
        assert cap.files() == []
    assert "the runtime wrote it after the request failed" in caplog.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", 5),
        ("?timeout=0", 5),
        ("?timeout=3", 5),
        ("?timeout=%2B030", 30),
        ("?timeout=7", 7),
        ("?timeout=1&timeout=9", 9),
        ("?timeout=9&timeout=1", 5),
        ("?timeout=86400", 86400),  # the maximum
    ],
)
def test_timeout_only_lengthens_and_the_last_value_wins(
    tmp_path: Path, query: str, field: int
) -> None:
    with running_capture(tmp_path, runtime_request_timeout=5.0) as cap:
        assert cap.post("default/web/app", query=query).status_code == 200  # type: ignore[attr-defined]
        (request,) = cap.cri.service.checkpoint_requests
        assert request.timeout == field


UNPARSABLE = ["5s", "", "%205", "5%20", "1e3", "0x10", "1_000", "9223372036854775808", "abc"]
HUGE = ["86401", "99999999999", str(2**63 - 1)]


@pytest.mark.parametrize(
    ("value", "message"),
    [(v, "cannot parse value of timeout parameter") for v in UNPARSABLE]
    + [(v, "timeout must be at most 86400 seconds") for v in HUGE],
)
def test_an_unparsable_or_huge_timeout_is_400(cap: Capture, value: str, message: str) -> None:
    response: Any = cap.post("default/web/app", query=f"?timeout={value}")
    assert (response.status_code, response.text) == (400, message)
    assert cap.cri.service.calls == []


def test_negative_timeout_is_500_after_the_lookup(cap: Capture) -> None:
    response: Any = cap.post("default/web/app", query="?timeout=-1")
    assert response.status_code == 500
    assert response.text == (
        "checkpointing of default/web/app failed "
        "(CheckpointContainer requires the timeout value to be > 0)"
    )
    assert "CheckpointContainer" not in cap.cri.service.calls
    assert cap.post("default/nope/app", query="?timeout=-1").status_code == 404  # type: ignore[attr-defined]


def test_feature_gate_off_is_404_before_auth(tmp_path: Path) -> None:
    with running_capture(tmp_path, checkpoint_enabled=False) as cap:
        response = cap.client.post("/checkpoint/default/web/app")
        assert (response.status_code, response.text) == (404, "404 page not found\n")
        assert cap.cri.service.calls == []


def test_wrong_shape_and_method(cap: Capture) -> None:
    response = cap.client.post("/checkpoint/default/web", headers=bearer(OPS))
    assert (response.status_code, response.text) == (404, "404: Page Not Found")
    response = cap.client.get("/checkpoint/default/web/app", headers=bearer(OPS))
    assert (response.status_code, response.text) == (405, "405: Method Not Allowed")
    assert response.headers["allow"] == "POST"


def test_same_container_is_serialised_and_names_never_collide(cap: Capture) -> None:
    cap.cri.service.delay = 0.05
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: cap.post("default/web/app"), range(4)))
    assert [r.status_code for r in responses] == [200] * 4  # type: ignore[attr-defined]
    paths = {json.loads(r.text)["items"][0] for r in responses}  # type: ignore[attr-defined]
    assert len(paths) == 4
    assert cap.cri.service.max_active == 1
    assert sorted(Path(p).name for p in paths) == cap.archives()
    for p in paths:
        assert Path(p).read_bytes() == PAYLOAD


def test_different_containers_run_in_parallel(cap: Capture) -> None:
    cap.cri.service.delay = 0.3
    targets = ["default/web/app", "other/web/app", "default/twice/app"]
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(cap.post, targets))
    assert [r.status_code for r in responses] == [200] * 3  # type: ignore[attr-defined]
    assert cap.cri.service.max_active >= 2


def test_flood_gets_429_and_stays_within_the_limit(tmp_path: Path) -> None:
    with running_capture(tmp_path, max_concurrent=2, retry_after_seconds=7) as cap:
        cap.cri.service.delay = 0.4
        targets = ["default/web/app", "other/web/app", "default/twice/app"] * 4
        with ThreadPoolExecutor(12) as pool:
            responses: list[Any] = list(pool.map(cap.post, targets))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) == {200, 429}
        assert codes.count(200) >= 2
        busy = [r for r in responses if r.status_code == 429]
        assert all(r.headers["retry-after"] == "7" for r in busy)
        assert "too many checkpoints" in busy[0].text
        assert cap.cri.service.max_active <= 2
        assert len(cap.archives()) == codes.count(200)
        metrics = cap.client.get("/metrics").text
        assert 'kcheckpoint_checkpoints_total{result="busy"}' in metrics


def test_retention_after_each_capture(tmp_path: Path) -> None:
    from kcheckpoint.capture.settings import RetentionPolicy

    policy = RetentionPolicy(max_per_container=2)
    with running_capture(tmp_path, retention=policy) as cap:
        paths = [json.loads(cap.post("default/web/app").text)["items"][0] for _ in range(3)]  # type: ignore[attr-defined]
        assert cap.post("other/web/app").status_code == 200  # type: ignore[attr-defined]
        names = cap.archives()
        assert [Path(p).name for p in paths[1:]] == [n for n in names if "_default-" in n]
        assert len(names) == 3
        assert not Path(paths[0]).exists()


def test_concurrent_captures_with_retention_never_fail(tmp_path: Path) -> None:
    """Retention after each capture, many containers at once: runs must not race each other
    (two deleting the same file) nor remove another capture's temporary file."""
    from kcheckpoint.capture.settings import RetentionPolicy

    policy = RetentionPolicy(max_per_container=1, max_total_bytes=3 * len(PAYLOAD))
    with running_capture(tmp_path, retention=policy, max_concurrent=16) as cap:
        targets = ["default/web/app", "other/web/app", "default/twice/app"] * 8
        with ThreadPoolExecutor(8) as pool:
            responses: list[Any] = list(pool.map(cap.post, targets))
        assert [r.status_code for r in responses] == [200] * len(targets), [
            r.text for r in responses if r.status_code != 200
        ]
        assert len(cap.archives()) <= 3
        assert not [f for f in cap.files() if f.startswith(".tmp-")]


def test_a_name_is_not_reused_right_after_its_archive_is_deleted(cap: Capture) -> None:
    first = json.loads(cap.post("default/web/app").text)["items"][0]  # type: ignore[attr-defined]
    deleted = cap.client.delete(f"/checkpoints/{Path(first).name}", headers=bearer(OPS))
    assert deleted.status_code == 204
    second = json.loads(cap.post("default/web/app").text)["items"][0]  # type: ignore[attr-defined]
    assert second != first


def test_sweep_keeps_files_of_captures_in_flight(tmp_path: Path) -> None:
    from datetime import datetime

    from kcheckpoint.capture.store import ArchiveStore

    store = ArchiveStore(tmp_path / "checkpoints")
    res = store.reserve("default", "web", "app", datetime.now())
    res.temp.write_bytes(b"being written")
    assert store.sweep_temporaries() == []
    assert res.temp.exists()
    store.discard(res)
    res.temp.write_bytes(b"written late by a runtime that ignored its deadline")
    assert store.sweep_temporaries() == [res.temp.name]
    assert not res.temp.exists()


def test_a_symlinked_checkpoint_directory_is_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "bigdisk"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "checkpoints").symlink_to(elsewhere)
    with running_capture(tmp_path) as cap:
        response: Any = cap.post("default/web/app")
        assert response.status_code == 200
        assert len(list(elsewhere.glob("checkpoint-*.tar"))) == 1


def test_without_hard_links_the_archive_is_renamed(
    cap: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    def no_links(*_args: object) -> None:
        raise OSError(errno.EPERM, "hard links not allowed here")

    monkeypatch.setattr(os, "link", no_links)
    response: Any = cap.post("default/web/app")
    assert response.status_code == 200
    assert Path(json.loads(response.text)["items"][0]).read_bytes() == PAYLOAD
    assert not [f for f in cap.files() if f.startswith(".tmp-")]
