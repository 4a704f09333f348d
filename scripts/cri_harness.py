#!/usr/bin/env python3
"""A real containerd >= 2.0 with runc and CRIU, for the capture tests and benchmarks.

    python3 scripts/cri_harness.py start DIR [--criu 4.2|4.1]  # prints KCHECKPOINT_TEST_CRI=...
    python3 scripts/cri_harness.py stop DIR
    python3 scripts/cri_harness.py restart-containerd DIR       # after a test killed it
    python3 scripts/cri_harness.py root [--criu 4.2|4.1]        # only build the cached root

Debian 12 ships containerd 1.6, which cannot checkpoint. So the runtime runs from a Debian trixie
root that carries forky's containerd and runc (pinned at priority 100, so nothing else comes from
forky) and CRIU 4.2.1 from forky (it dumps TCP sockets; ``--criu 4.1`` takes trixie's 4.1.1,
which cannot on recent kernels). The root is built once with debootstrap and kept under
``/var/cache/kcheckpoint-cri/`` (or ``$KCHECKPOINT_CRI_CACHE``); later runs reuse it. A rebuild
replaces the root under a running harness's feet: rebuild only when none runs from that cache.

A holder process enters the root with ``pivot_root`` in a private mount namespace, with /proc,
/sys, /dev, a private /run and /tmp, and one shared directory, ``DIR/share``, bind-mounted at the
same absolute path inside. The containerd socket, its root and every checkpoint location live
there, so a path sent over CRI names the same file on both sides. containerd is started in the
holder's namespace (so it can be killed and restarted while the mounts stay).

Debian's ``docker-registry`` runs on 127.0.0.1 with a busybox image built here (no outside
registry), pulled over CRI: containerd re-pulls a checkpoint's base image by NAME@DIGEST when it
restores, so the image must come from a registry.

``stop`` removes the pods over CRI, then stops containerd, the registry and the holder by pid,
kills by pid anything left in the namespace or in the test cgroup parent, and removes DIR. Every
pid is recorded in ``DIR/env.json``; nothing system-wide is configured. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from debian_root import installed_versions

# the registry runs as the tests run theirs (tests/_registry.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._registry import registry_process

CACHE = Path(os.environ.get("KCHECKPOINT_CRI_CACHE", "/var/cache/kcheckpoint-cri"))
MIRROR = os.environ.get("KCHECKPOINT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"
#: where containerd and runc come from; sid is the fallback when a testing transition breaks forky
RUNTIME_SUITES = ("forky", "sid")
CRIU_SUITES = {"4.2": ("forky", "sid"), "4.1": ("trixie",)}
ROOT_FORMAT = 1  # bump when the root's recipe changes, so cached roots are rebuilt
IMAGE_REPO = "kcheckpoint-test/busybox"
#: pods of one harness run go below CGROUP_PARENT/<DIR's name>, so stop() finds its own
CGROUP_PARENT = "/kcheckpoint-cri"
ENTRYPOINT = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]
BUSYBOX_APPLETS = ("sh", "sleep", "cat", "echo", "ls", "mkdir", "rm", "nc", "head", "tr", "dd")

ENTER = r"""
set -e
mount --make-rprivate /
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
umount "$ROOT/sys/fs/cgroup/unified" 2>/dev/null || true
mount --rbind /dev "$ROOT/dev"
mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
mkdir -p "$ROOT$SHARE"
mount --bind "$SHARE" "$ROOT$SHARE"
mkdir -p "$ROOT/.old-root"
cd "$ROOT"
pivot_root . .old-root
umount -l /.old-root
cd /
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
exec "$@"
"""

CONFIG = """\
version = 3
root = '{share}/containerd'
state = '/run/containerd'
disabled_plugins = ['io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.devmapper',
                    'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.erofs',
                    'io.containerd.snapshotter.v1.blockfile', 'io.containerd.differ.v1.erofs']
[grpc]
  address = '{share}/containerd.sock'
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{image}'
  [plugins.'io.containerd.cri.v1.runtime']
    # without CAP_SYS_RESOURCE in a nested setup runc fails to set oom_score_adj
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_cdi = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
"""


def say(message: str) -> None:
    print(f"cri-harness: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


# --- the Debian root --------------------------------------------------------------------------
def _apt_sources(root: Path, suites: set[str]) -> None:
    (root / "etc/apt/apt.conf.d/99kcheckpoint").write_text(
        # testing's Release files on a mirror can be past Valid-Until
        'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n'
    )
    for suite in sorted(suites - {SUITE}):
        (root / f"etc/apt/sources.list.d/{suite}.sources").write_text(
            f"Types: deb\nURIs: {MIRROR}\nSuites: {suite}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        (root / f"etc/apt/preferences.d/{suite}").write_text(
            f"Package: *\nPin: release n={suite}\nPin-Priority: 100\n"
        )


def _chroot(root: Path, script: str, log: Path) -> bool:
    """Run a shell script in the root (plain chroot with /proc and /dev: enough for apt)."""
    with open(log, "a") as out:
        wrapped = (
            "set -e; mount -t proc proc proc; mount --rbind /dev dev; "
            f"chroot . /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "
            f"DEBIAN_FRONTEND=noninteractive sh -ec {_quote(script)}"
        )
        done = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", wrapped],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return done.returncode == 0


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def build_root(criu: str, *, rebuild: bool = False) -> Path:
    """The cached root for this CRIU variant, built when missing (under a lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / f"root-criu{criu}"
    marker = root / ".kcheckpoint-root.json"
    with open(CACHE / f".lock-criu{criu}", "w") as lock:  # one build of each variant at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rebuild and marker.exists():
            recorded = json.loads(marker.read_text())
            if recorded.get("format") == ROOT_FORMAT:
                say(f"reusing the cached root {root} ({_versions_line(recorded['versions'])})")
                return root
        started = time.monotonic()
        staging = CACHE / f".staging-criu{criu}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        log = CACHE / f"build-criu{criu}.log"
        log.write_text("")
        say(f"debootstrap {SUITE} into {staging} (log: {log})")
        script = Path("/usr/share/debootstrap/scripts") / SUITE
        if not script.exists():
            script = script.with_name("sid")  # sid's script fits every newer suite
        with open(log, "a") as out:
            run(
                ["debootstrap", "--variant=minbase", SUITE, str(staging), MIRROR, str(script)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # a host-network sandbox copies the node's /etc/hosts; minbase has none
        (staging / "etc/hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        shutil.copy("/etc/resolv.conf", staging / "etc/resolv.conf")
        versions = _install_runtime(staging, criu, log)
        marker_data = {
            "format": ROOT_FORMAT,
            "criu_variant": criu,
            "versions": versions,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / marker.name).write_text(json.dumps(marker_data, indent=1))
        staging.rename(root)
        say(f"built {root} in {marker_data['build_seconds']} s ({_versions_line(versions)})")
        return root


def _install_runtime(root: Path, criu: str, log: Path) -> dict[str, str]:
    """containerd and runc from forky (else sid), CRIU from the variant's suite."""
    for runtime_suite in RUNTIME_SUITES:
        for criu_suite in CRIU_SUITES[criu]:
            _apt_sources(root, {runtime_suite, criu_suite})
            script = (
                "apt-get update -qq && apt-get install -y -q "
                f"containerd/{runtime_suite} runc/{runtime_suite} criu/{criu_suite}"
            )
            if _chroot(root, script, log):
                versions = installed_versions(root, ("containerd", "runc", "criu"))
                versions["from"] = f"containerd+runc {runtime_suite}, criu {criu_suite}"
                return versions
            say(f"installing from {runtime_suite}/{criu_suite} failed; trying the next suite")
            for stale in (root / "etc/apt/sources.list.d").glob("*.sources"):
                stale.unlink()
            for stale in (root / "etc/apt/preferences.d").iterdir():
                stale.unlink()
    raise SystemExit(f"cri-harness: cannot install containerd, runc and CRIU (see {log})")


def _versions_line(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {versions[k]}" for k in ("containerd", "runc", "criu"))


# --- the busybox image and the registry -------------------------------------------------------
def _blob(layout: tarfile.TarFile, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    _add(layout, f"blobs/sha256/{digest}", data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def build_image(path: Path, busybox: Path = Path("/bin/busybox")) -> None:
    """An OCI image-layout tar: one uncompressed layer with a static busybox."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for directory in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            layer.addfile(info)
        _add(layer, "bin/busybox", busybox.read_bytes(), 0o755)
        for tool in BUSYBOX_APPLETS:
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            layer.addfile(info)
        _add(layer, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
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
                    "annotations": {"org.opencontainers.image.ref.name": "1"},
                }
            ],
        }
        _add(layout, "index.json", json.dumps(index).encode())
        _add(layout, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')


def _wait(what: str, ready: Any, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.stderr.write(log.read_text(errors="replace")[-3000:])
            raise SystemExit(f"cri-harness: {what} did not start")
        time.sleep(0.05)


def start_registry(directory: Path) -> tuple[int, int]:
    """Debian's docker-registry on a free loopback port. Returns (pid, port)."""
    storage = directory / "registry"
    storage.mkdir(exist_ok=True)
    proc, port = registry_process(directory, storage, detach=True)

    def ready() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    _wait("docker-registry", ready, proc, directory / "registry.log", 30)
    return proc.pid, port


def push_image(layout: Path, reference: str) -> None:
    run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
         f"oci-archive:{layout}", f"docker://{reference}"],
        capture_output=True,
    )  # fmt: skip


# --- containerd ---------------------------------------------------------------------------------
def start_holder(root: Path, share: Path, log: Path) -> int:
    """A process that enters the root and holds the private mount namespace open."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "bash", "-c", ENTER, "enter",
             "sleep", "infinity"],
            env={**os.environ, "ROOT": str(root), "SHARE": str(share)},
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    host_ns = os.readlink("/proc/self/ns/mnt")

    def entered() -> bool:
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/mnt") == host_ns:
                return False
            return Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"
        except OSError:
            return False

    _wait("the namespace holder", entered, proc, log, 30)
    return proc.pid


def start_containerd(env: dict[str, Any]) -> int:
    share = Path(env["share"])
    log = Path(env["dir"]) / "containerd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["nsenter", "-t", str(env["holder_pid"]), "-m", "--",
             "containerd", "--config", str(share / "config.toml")],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    sock = share / "containerd.sock"

    def serving() -> bool:
        if not sock.exists():
            return False
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(sock))
            return True
        return False

    _wait("containerd", serving, proc, log, 60)
    return proc.pid  # nsenter execs, so this is containerd itself


def _cri(env: dict[str, Any]) -> Any:
    """The tests' CRI helper (tests/capture/real_cri.py), imported from the checkout."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    from capture import real_cri  # type: ignore[import-not-found]

    return real_cri


def start(directory: Path, criu: str, rebuild: bool) -> None:
    env_file = directory / "env.json"
    if env_file.exists():
        env = json.loads(env_file.read_text())
        if _alive(env.get("containerd_pid", 0)) and _alive(env.get("registry_pid", 0)):
            say(f"already running in {directory}")
            print(f"KCHECKPOINT_TEST_CRI={env_file}")
            return
        stop(directory)
    started = time.monotonic()
    root = build_root(criu, rebuild=rebuild)
    root_ready = time.monotonic()
    recorded = json.loads((root / ".kcheckpoint-root.json").read_text())
    directory.mkdir(parents=True, exist_ok=True)
    share = directory / "share"
    share.mkdir(exist_ok=True)
    env: dict[str, Any] = {
        "dir": str(directory),
        "share": str(share),
        "root": str(root),
        "criu_variant": criu,
        "versions": recorded["versions"],
        "cgroup_parent": f"{CGROUP_PARENT}/{directory.name}",
    }
    try:
        env["registry_pid"], env["registry_port"] = start_registry(directory)
        _save(env_file, env)
        image = f"127.0.0.1:{env['registry_port']}/{IMAGE_REPO}:1"
        layout = directory / "busybox-oci.tar"
        build_image(layout)
        push_image(layout, image)
        env["image"] = image
        (share / "config.toml").write_text(CONFIG.format(share=share, image=image))
        env["holder_pid"] = start_holder(root, share, directory / "holder.log")
        env["mount_ns"] = os.readlink(f"/proc/{env['holder_pid']}/ns/mnt")
        _save(env_file, env)
        env["containerd_pid"] = start_containerd(env)
        env["endpoint"] = f"unix://{share / 'containerd.sock'}"
        _save(env_file, env)
        _cri(env).pull_image(env["endpoint"], image)
    except BaseException:
        stop(directory)
        raise
    env["start_seconds"] = round(time.monotonic() - started, 1)
    env["root_seconds"] = round(root_ready - started, 1)
    _save(env_file, env)
    say(
        f"containerd {recorded['versions']['containerd']} up in {env['start_seconds']} s "
        f"(root {env['root_seconds']} s): {env['endpoint']}, image {image}"
    )
    print(f"KCHECKPOINT_TEST_CRI={env_file}")


def restart_containerd(directory: Path) -> None:
    """Start containerd again in the same namespace (after a test killed it)."""
    env_file = directory / "env.json"
    env = json.loads(env_file.read_text())
    if _alive(env.get("containerd_pid", 0)):
        return
    env["containerd_pid"] = start_containerd(env)
    _save(env_file, env)


def _save(path: Path, env: dict[str, Any]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(env, indent=1, sort_keys=True))
    temp.rename(path)


# --- stopping -------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting for its parent counts as gone)."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _terminate(pid: int, seconds: float = 10) -> None:
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _leftovers(mount_ns: str | None, cgroup_parent: str | None) -> list[int]:
    """Pids started by this harness: in its mount namespace, or in its cgroup parent."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            in_ns = mount_ns is not None and os.readlink(entry / "ns/mnt") == mount_ns
            in_cgroup = (
                bool(cgroup_parent) and f":{cgroup_parent}/" in (entry / "cgroup").read_text()
            )
        except OSError:
            continue
        if in_ns or in_cgroup:
            found.append(int(entry.name))
    return found


def stop(directory: Path) -> None:
    env_file = directory / "env.json"
    env: dict[str, Any] = json.loads(env_file.read_text()) if env_file.exists() else {}
    if _alive(env.get("containerd_pid", 0)):
        try:
            _cri(env).remove_all(env["endpoint"])
        except Exception as exc:  # stopping goes on whatever happens
            say(f"could not remove the pods over CRI: {exc}")
        _terminate(env["containerd_pid"])
    _terminate(env.get("registry_pid", 0))
    for pid in _leftovers(env.get("mount_ns"), env.get("cgroup_parent")):
        if pid != env.get("holder_pid"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _terminate(env.get("holder_pid", 0), 2)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for parent in (env.get("cgroup_parent"), CGROUP_PARENT):  # ours, then the common one
            directory_ = hierarchy / (parent or "").lstrip("/")
            if parent and directory_.is_dir():
                for sub in sorted(directory_.rglob("*"), key=lambda p: -len(p.parts)):
                    if sub.is_dir():
                        with contextlib.suppress(OSError):
                            sub.rmdir()
                with contextlib.suppress(OSError):
                    directory_.rmdir()  # the common parent goes only when no other run uses it
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "restart-containerd", "root"])
    parser.add_argument("directory", type=Path, nargs="?")
    parser.add_argument("--criu", choices=sorted(CRIU_SUITES), default="4.2")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached root")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (mount namespaces, debootstrap, containerd)")
    if args.action == "root":
        build_root(args.criu, rebuild=args.rebuild)
        return 0
    if args.directory is None:
        parser.error(f"{args.action} needs DIR")
    directory = args.directory.absolute()
    if args.action == "start":
        start(directory, args.criu, args.rebuild)
    elif args.action == "stop":
        stop(directory)
    else:
        restart_containerd(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
