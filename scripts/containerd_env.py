#!/usr/bin/env python3
"""Start or stop a private containerd (CRI) for the capture integration tests.

    python3 scripts/containerd_env.py start DIR   # prints KCHECKPOINT_TEST_CRI_ENDPOINT=unix://...
    python3 scripts/containerd_env.py stop DIR

Everything lives under DIR (root, state, socket, runc root, logs); nothing system-wide is
configured. A busybox image is built locally (no registry is needed) and imported into the
``k8s.io`` namespace; it serves as sandbox and container image. ``stop`` removes the pods the
tests may have left, stops containerd by its recorded PID, and removes what containerd 1.6
leaves outside DIR (``/run/containerd`` if it did not exist before, and the test cgroup parent).
Needs root and the Debian packages containerd, runc and busybox-static.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

IMAGE = "localhost/kcheckpoint-test/busybox:1"
CGROUP_PARENT = "/kcheckpoint-test"
ENTRYPOINT = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]

CONFIG = """\
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # required: without CAP_SYS_RESOURCE runc fails with "can't get final child's PID from pipe"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"""


def _blob(layout: tarfile.TarFile, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    layout.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def build_image(path: Path, busybox: Path = Path("/bin/busybox")) -> None:
    """An OCI image-layout tar: one uncompressed layer with a static busybox."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for directory in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            layer.addfile(info)
        _add(layer, "bin/busybox", busybox.read_bytes(), 0o755)
        for tool in ("sh", "sleep"):
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            layer.addfile(info)
        _add(layer, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
        _add(layer, "etc/group", b"root:x:0:\n")
    layer_bytes = layer_buf.getvalue()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    with tarfile.open(path, "w") as layout:
        layer_desc = _blob(layout, layer_bytes)
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Entrypoint": ENTRYPOINT, "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        }
        config_desc = _blob(layout, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
        }
        manifest_desc = _blob(layout, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **manifest_desc,
                    "platform": {"architecture": arch, "os": "linux"},
                    "annotations": {"io.containerd.image.name": IMAGE},
                }
            ],
        }
        _add(layout, "index.json", json.dumps(index).encode())
        _add(layout, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')


def start(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("root", "state", "opt", "runc", "cni/bin", "cni/conf", "logs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    if not Path("/run/containerd").exists():
        (directory / "created-run-containerd").touch()
    (directory / "config.toml").write_text(CONFIG.format(d=directory, image=IMAGE))
    log = open(directory / "containerd.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        ["containerd", "--config", str(directory / "config.toml")],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    (directory / "containerd.pid").write_text(str(proc.pid))
    sock = directory / "containerd.sock"
    ctr = ["ctr", "--address", str(sock), "-n", "k8s.io"]
    deadline = time.monotonic() + 30
    while subprocess.run([*ctr, "version"], capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.stderr.write((directory / "containerd.log").read_text()[-3000:])
            raise SystemExit("containerd did not start")
        time.sleep(0.1)
    image = directory / "image.tar"
    build_image(image)
    subprocess.run([*ctr, "images", "import", str(image)], check=True, capture_output=True)
    print(f"KCHECKPOINT_TEST_CRI_ENDPOINT=unix://{sock}")


def _remove_pods(sock: Path) -> None:
    """Stop and remove every pod the tests left (so no shim or runc process stays behind)."""
    try:
        import grpc

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from capture.real_cri import remove_all_pods  # type: ignore[import-not-found]

        with grpc.insecure_channel(f"unix://{sock}") as channel:
            remove_all_pods(channel)
    except Exception as exc:  # stopping must go on whatever happens
        print(f"warning: could not remove pods: {exc}", file=sys.stderr)


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def stop(directory: Path) -> None:
    pid_file = directory / "containerd.pid"
    if pid_file.exists():
        _remove_pods(directory / "containerd.sock")
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink()
    if (directory / "created-run-containerd").exists():
        shutil.rmtree("/run/containerd", ignore_errors=True)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError as exc:
                print(f"warning: cannot remove {parent}: {exc}", file=sys.stderr)
    subprocess.run(["umount", "-R", str(directory / "root")], capture_output=True)
    subprocess.run(["umount", "-R", str(directory / "state")], capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    directory = args.directory.absolute()
    if args.action == "start":
        start(directory)
    else:
        stop(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
