"""Checkpoint images against real tools: Debian's docker-registry on loopback, skopeo, buildah."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._registry import Registry, cutting_proxy, registry, token_registry, tools_missing
from .conftest import CONTAINERD, CRIO

missing = tools_missing("docker-registry", "skopeo", "htpasswd")
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"needs {', '.join(missing)} (scripts/install-system-deps)"
)
USER, PASSWORD = "kc-user", "kc-test-password"


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def authreg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with registry(tmp_path_factory.mktemp("authreg"), USER, PASSWORD) as running:
        yield running


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True)
    return done.stdout


def push(cli: Any, archive: Path, ref: str, *extra: str) -> str:
    result = cli("image", archive, ref, "--push", "--insecure", *extra)
    assert result.exit_code == 0, result.stderr
    return str(result.stdout.split()[0])


def layer_of_layout(layout: Path) -> Path:
    """The one layer of the one image in a layout, followed from index.json."""
    blobs = layout / "blobs" / "sha256"
    desc = json.loads((layout / "index.json").read_text())["manifests"][0]
    while True:
        doc = json.loads((blobs / desc["digest"][7:]).read_text())
        if "manifests" in doc:
            desc = doc["manifests"][0]
            continue
        return blobs / doc["layers"][0]["digest"][7:]


@pytest.mark.parametrize("upload", [[], ["--upload", "chunked", "--chunk-size", "1"]])
def test_push_then_pull_back_gives_the_same_digests_and_bytes(
    cli: Any, reg: Registry, tmp_path: Path, upload: list[str]
) -> None:
    name = f"{reg.host}/shop/webapp:{'chunked' if upload else 'mono'}"
    digest = push(cli, CONTAINERD, name, "--oci-layout", str(tmp_path / "ours"), *upload)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{name}")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    assert json.loads(raw)["annotations"]["org.criu.checkpoint.container.name"] == "webapp"
    # skopeo pulls every blob back, checking each against its digest
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path}/back:1")
    assert layer_of_layout(tmp_path / "back").read_bytes() == (
        layer_of_layout(tmp_path / "ours").read_bytes()
    )


def test_summary_of_a_registry_image_by_tag_and_by_digest(
    cli: Any, reg: Registry, tmp_path: Path
) -> None:
    digest = push(cli, CRIO, f"{reg.host}/shop/crio:1")
    expected = cli("--no-times", "summary", "--format", "json", CRIO)
    for name in (f"docker://{reg.host}/shop/crio:1", f"{reg.host}/shop/crio@{digest}"):
        result = cli("--no-times", "summary", "--format", "json", name)
        assert result.exit_code == 0, result.stderr
        [row] = json.loads(result.stdout)["archives"]
        [want] = json.loads(expected.stdout)["archives"]
        assert row["summary"]["container"] == want["summary"]["container"]
        assert row["summary"]["sizes"] == want["summary"]["sizes"]
        assert row["summary"]["input"]["read_mode"] == "stream"


def test_an_absent_image_is_an_input_error(cli: Any, reg: Registry) -> None:
    result = cli("list", f"docker://{reg.host}/shop/none:1")
    assert (result.exit_code, result.stdout) == (3, "")
    assert "no such image" in result.stderr


def test_skopeo_reads_the_layout_and_the_archive(cli: Any, reg: Registry, tmp_path: Path) -> None:
    lay, arc = tmp_path / "lay", tmp_path / "img.tar"
    result = cli("image", CRIO, "ckpt:2", "--oci-layout", lay, "--oci-archive", arc)
    assert result.exit_code == 0, result.stderr
    digest = result.stdout.split()[0]
    for source in (f"oci:{lay}:2", f"oci-archive:{arc}:2"):
        info = json.loads(skopeo("inspect", source))
        assert info["Labels"]["org.criu.checkpoint.container.name"] == "webapp"
        raw = skopeo("inspect", "--raw", source)
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    # and skopeo carries the archive to the registry, where kcheckpoint reads it
    target = f"{reg.host}/shop/copied:2"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci-archive:{arc}:2", f"docker://{target}")
    listed = cli("list", f"docker://{target}")
    assert listed.exit_code == 0, listed.stderr
    assert "checkpoint/pstree.img" in listed.stdout


def test_an_image_built_by_buildah_the_checkpointctl_way_is_read(
    cli: Any, reg: Registry, tmp_path: Path
) -> None:
    if tools_missing("buildah"):
        pytest.skip("needs buildah (scripts/install-system-deps)")
    store = ["--root", str(tmp_path / "root"), "--runroot", str(tmp_path / "run")]
    buildah = ["buildah", *store, "--storage-driver", "vfs"]

    def run(*args: str) -> str:
        return subprocess.run(
            [*buildah, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    ctr = run("from", "scratch")
    run("add", ctr, str(CRIO), "/")
    run("config", "--annotation", "org.criu.checkpoint.container.name=webapp", ctr)
    run("commit", "-q", ctr, "ckpt:1")
    run("rm", ctr)
    run("push", "ckpt:1", f"oci:{tmp_path}/lay:1")
    run("push", "--tls-verify=false", "ckpt:1", f"docker://{reg.host}/shop/buildah:1")
    for name in (f"oci:{tmp_path}/lay:1", f"docker://{reg.host}/shop/buildah:1"):
        result = cli("--no-times", "summary", "--format", "json", name)
        assert result.exit_code == 0, result.stderr
        [row] = json.loads(result.stdout)["archives"]
        assert row["summary"]["container"]["engine"] == "cri-o"
        assert row["summary"]["container"]["pod"] == "webapp-7d9f8c6b5-x2kq4"


# --- failures ----------------------------------------------------------------------------------
def tag_exists(host: str, repo: str, tag: str, auth: tuple[str, str] | None = None) -> bool:
    response = httpx.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        auth=auth,
    )
    return response.status_code == 200


def test_auth_refused_is_exit_5_and_no_tag(
    cli: Any, authreg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    monkeypatch.setenv("KCHECKPOINT_REGISTRY_USER", USER)
    monkeypatch.setenv("KCHECKPOINT_REGISTRY_PASSWORD", "wrong")
    result = cli("image", CRIO, f"{authreg.host}/shop/auth:1", "--push", "--insecure")
    assert (result.exit_code, result.stdout) == (5, "")
    assert "authentication refused" in result.stderr
    assert not tag_exists(authreg.host, "shop/auth", "1", (USER, PASSWORD))
    read = cli("list", f"docker://{authreg.host}/shop/auth:1")
    assert (read.exit_code, read.stdout) == (3, "")
    # the right password, from an auth file in docker/podman login format
    monkeypatch.delenv("KCHECKPOINT_REGISTRY_PASSWORD")
    auth = tmp_path / "auth.json"
    token = __import__("base64").b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auth.write_text(json.dumps({"auths": {authreg.host: {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    assert push(cli, CRIO, f"{authreg.host}/shop/auth:1")
    assert tag_exists(authreg.host, "shop/auth", "1", (USER, PASSWORD))
    assert cli("list", f"docker://{authreg.host}/shop/auth:1").exit_code == 0


@pytest.mark.parametrize("upload", ["monolithic", "chunked"])
def test_an_upload_broken_off_is_exit_5_and_leaves_no_tag(
    cli: Any, reg: Registry, upload: str
) -> None:
    with cutting_proxy(reg.port, cut_after=3 << 20) as port:
        result = cli(
            "image",
            CONTAINERD,
            f"127.0.0.1:{port}/shop/cut:{upload}",
            "--push",
            "--insecure",
            "--upload",
            upload,
            "--chunk-size",
            "1",
        )
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr.startswith("error: 127.0.0.1:")
    assert "failed" in result.stderr and "no tag was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not tag_exists(reg.host, "shop/cut", upload)


def test_a_registry_blob_that_does_not_match_its_digest_is_exit_4(cli: Any, tmp_path: Path) -> None:
    with registry(tmp_path / "own") as reg:  # its own: the registry shares blobs between repos
        damaged_blob_is_refused(cli, reg)


def damaged_blob_is_refused(cli: Any, reg: Registry) -> None:
    digest = push(cli, CRIO, f"{reg.host}/shop/bad:1")
    index = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/shop/bad:1")
    )
    assert (
        "sha256:"
        + hashlib.sha256(
            json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
        ).hexdigest()
        == digest
    )
    manifest = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{reg.host}/shop/bad@{index['manifests'][0]['digest']}",
        )
    )
    data = reg.blob_file(manifest["layers"][0]["digest"])
    # valid gzip of the same tar, other bytes: only the digest check can tell
    data.write_bytes(gzip.compress(gzip.decompress(data.read_bytes()), compresslevel=1))
    result = cli("list", f"docker://{reg.host}/shop/bad:1")
    assert (result.exit_code, result.stdout) == (4, "")
    assert manifest["layers"][0]["digest"] in result.stderr


def test_insecure_is_refused_for_a_remote_registry(cli: Any) -> None:
    result = cli("image", CRIO, "registry.example.com/shop/x:1", "--push", "--insecure")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "loopback" in result.stderr


# --- capture --push ------------------------------------------------------------------------------
@pytest.fixture
def capture_service(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    from kcheckpoint.capture.app import create_app
    from kcheckpoint.capture.demo import bytes_writer

    from .capture.app_fixtures import running_capture
    from .capture.server import serving

    with running_capture(tmp_path) as cap, serving(create_app(cap.settings)) as url:
        cap.cri.service.writer = bytes_writer(CRIO.read_bytes())
        yield url, cap


def test_capture_push_streams_the_checkpoint_into_an_image(
    cli: Any, reg: Registry, capture_service: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from .capture.app_fixtures import OPS

    url, _ = capture_service
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    ref = f"{reg.host}/shop/captured:1"
    result = cli("capture", url, "default/web/app", "--push", ref, "--insecure", "-o", "json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["sha256"] == hashlib.sha256(CRIO.read_bytes()).hexdigest()
    assert row["image"]["reference"] == ref
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == row["image"]["digest"]
    listed = cli("--no-times", "list", "--format", "json", f"docker://{ref}")
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)["members"]) > 40


def test_capture_push_of_a_non_checkpoint_pushes_nothing(
    cli: Any, reg: Registry, capture_service: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kcheckpoint.capture.demo import bytes_writer

    from .capture.app_fixtures import OPS
    from .capture.fake_cri import PAYLOAD

    url, cap = capture_service
    cap.cri.service.writer = bytes_writer(PAYLOAD)
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    result = cli(
        "capture", url, "default/web/app", "--push", f"{reg.host}/shop/junk:1", "--insecure"
    )
    assert (result.exit_code, result.stdout) == (5, "")
    assert not tag_exists(reg.host, "shop/junk", "1")


def test_token_auth_push_and_pull(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry sends clients to a token service; the token carries the push scope."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    monkeypatch.setenv("KCHECKPOINT_REGISTRY_USER", USER)
    with token_registry(tmp_path / "tok", USER, PASSWORD) as reg:
        monkeypatch.setenv("KCHECKPOINT_REGISTRY_PASSWORD", "wrong")
        refused = cli("image", CRIO, f"{reg.host}/shop/tok:1", "--push", "--insecure")
        assert (refused.exit_code, refused.stdout) == (5, "")
        assert "authentication refused" in refused.stderr
        monkeypatch.setenv("KCHECKPOINT_REGISTRY_PASSWORD", PASSWORD)
        digest = push(cli, CRIO, f"{reg.host}/shop/tok:1", "--upload", "chunked")
        result = cli("--no-times", "summary", "--format", "json", f"{reg.host}/shop/tok@{digest}")
        assert result.exit_code == 0, result.stderr
        [row] = json.loads(result.stdout)["archives"]
        assert row["summary"]["container"]["name"] == "webapp"


def test_blobs_are_mounted_from_another_repository_or_uploaded_when_it_lacks_them(
    cli: Any, reg: Registry
) -> None:
    def pushed_blobs(repo: str, *extra: str) -> dict[str, int]:
        result = cli(
            "image", CRIO, f"{reg.host}/{repo}:1", "--push", "--insecure", "-o", "json", *extra
        )
        assert result.exit_code == 0, result.stderr
        [output] = json.loads(result.stdout)["image"]["outputs"]
        return dict(output["blobs"])

    first = pushed_blobs("mount/a")
    assert first["mounted"] == 0 and first["uploaded"] + first["present"] == 2
    assert pushed_blobs("mount/b", "--mount-from", "mount/a") == {
        "uploaded": 0,
        "present": 0,
        "mounted": 2,
    }
    assert pushed_blobs("mount/c", "--mount-from", "mount/absent") == {
        "uploaded": 2,
        "present": 0,
        "mounted": 0,
    }
    assert pushed_blobs("mount/c") == {"uploaded": 0, "present": 2, "mounted": 0}
    assert tag_exists(reg.host, "mount/b", "1") and tag_exists(reg.host, "mount/c", "1")
