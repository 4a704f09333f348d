#!/usr/bin/env python3
"""Build the capture service's container image without a registry: ``scripts/build-image``.

    scripts/build-image [--output PATH] [--rebuild-base] [--no-measure]

The same image as the top-level Containerfile, for tests and air-gapped users: base registries
are not needed. Two layers, written as an OCI image-layout tar:

1. a Debian 12 root: debootstrap ``--variant=minbase`` with ``python3`` and ``python3-venv``
   (the build root), and a copy with every package that RUNTIME_PACKAGES do not need purged
   and the documentation left out (the runtime root, which is the layer). Built once and kept
   under ``/var/cache/kcheckpoint-image/`` (or ``$KCHECKPOINT_IMAGE_CACHE``);
2. ``/opt/kcheckpoint``: a venv holding this checkout's wheel and its dependencies from PyPI,
   binary wheels fetched by this machine's pip into a cache beside the roots and installed
   offline in the chroot; pip itself removed, shared objects stripped, and
   ``/usr/local/bin/kcheckpoint``. It is built in an overlay on the build root, so the overlay's
   upper directory is the layer.

It prints the image's size (the layers, uncompressed) and its start-up time: ``kcheckpoint
serve`` run from the image's root, mounted read-only, until ``/healthz`` answers 200. That needs
a CRI socket: the harness's (``KCHECKPOINT_TEST_CRI``) or ``--runtime-socket``; without one it
times the first answer (503) and says so. Needs root (debootstrap, mounts).
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
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian_root import installed_versions
from image_startup import harness_socket, measure_startup

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KCHECKPOINT_IMAGE_CACHE", "/var/cache/kcheckpoint-image"))
MIRROR = os.environ.get("KCHECKPOINT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: Debian 12: python3 is 3.11, the oldest Python kcheckpoint supports
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv")
#: what the image keeps, with what they depend on: the interpreter, a shell and the tools that
#: `kubectl exec` and `kubectl cp` use (tar); dpkg stays so that scanners can list the packages
RUNTIME_PACKAGES = (
    "python3", "base-files", "base-passwd", "netbase", "tzdata", "dpkg", "dash", "bash",
    "coreutils", "tar", "grep", "sed", "findutils", "diffutils", "libc-bin", "mawk",
    # grpcio's and zstandard's extension modules link libstdc++
    "libstdc++6",
)  # fmt: skip
BASE_FORMAT = 2  # bump when the base's recipe changes, so cached bases are rebuilt
VENV = "/opt/kcheckpoint"
LICENSE = "Apache-2.0"
PORT = 10270
#: what the base layer leaves out (documentation but the copyright files, apt's lists, caches)
PRUNE = (
    "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
    "usr/share/linda", "var/cache/apt", "var/lib/apt/lists", "var/cache/debconf/templates.dat-old",
    "var/log",
    # iconv's converters: Python has its own codecs
    f"usr/lib/{platform.machine()}-linux-gnu/gconv",
)  # fmt: skip
#: the runtime provides these; the layer carries the empty directories only
EMPTY = ("dev", "proc", "sys", "run", "tmp")
#: how the app layer is made, in the overlay chroot (PIP_CACHE_DIR and /tmp/in are bind mounts)
APP_SCRIPT = f"""
python3 -m venv {VENV}
{VENV}/bin/pip install --quiet --no-input --disable-pip-version-check --no-index \\
    --find-links /tmp/in/wheels /tmp/in/$WHEEL
{VENV}/bin/pip freeze --all --disable-pip-version-check > /tmp/in/freeze.txt
{VENV}/bin/pip uninstall --quiet --yes pip setuptools
rm -f {VENV}/bin/activate* {VENV}/bin/Activate.ps1
mkdir -p /usr/local/bin
ln -s {VENV}/bin/kcheckpoint /usr/local/bin/kcheckpoint
install -m 0755 /tmp/in/healthcheck.py /usr/local/bin/kcheckpoint-healthcheck
"""


def say(message: str) -> None:
    print(f"build-image: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, show what it wrote (if captured) and stop."""
    done = subprocess.run(cmd, text=True, **kwargs)
    if done.returncode:
        sys.stderr.write((done.stdout or "")[-3000:] + (done.stderr or "")[-3000:])
        raise SystemExit(f"build-image: {' '.join(cmd[:4])} ... failed ({done.returncode})")
    return done


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# --- layer 1: the Debian root ----------------------------------------------------------------
@dataclass(frozen=True)
class Base:
    """The cached base: the build root (with python3-venv, to make the venv), the runtime root
    (only what python3 and a shell need) and the runtime root's layer tar."""

    build: Path
    runtime: Path
    layer: Path
    versions: dict[str, str]


def build_base(*, rebuild: bool = False) -> Base:
    """The cached base, built when missing (under a lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    base = CACHE / f"base-{SUITE}"
    marker = base / "base.json"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rebuild and marker.exists():
            recorded = json.loads(marker.read_text())
            if recorded.get("format") == BASE_FORMAT:
                say(f"reusing the cached base {base}")
                return Base(base / "build", base / "runtime", base / "layer.tar",
                            recorded["versions"])  # fmt: skip
        started = time.monotonic()
        staging = CACHE / f".staging-{SUITE}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        build, runtime = staging / "build", staging / "runtime"
        build.mkdir(parents=True)
        log = CACHE / f"build-{SUITE}.log"
        say(f"debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} (log: {log})")
        with open(log, "w") as out:
            run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                 SUITE, str(build), MIRROR],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _prune(build)
        run(["cp", "-a", str(build), str(runtime)])
        removed = _purge_unneeded(runtime, log)
        _tar_layer(runtime, staging / "layer.tar", ["."], exclude_contents=EMPTY)
        versions = installed_versions(runtime, ("python3", "libc6"))
        (staging / "base.json").write_text(
            json.dumps(
                {"format": BASE_FORMAT, "suite": SUITE, "versions": versions,
                 "purged": removed, "build_seconds": round(time.monotonic() - started, 1)},
                indent=1,
            )
        )  # fmt: skip
        staging.rename(base)
        say(f"built the base in {time.monotonic() - started:.0f} s (python3 {versions['python3']})")
        return Base(base / "build", base / "runtime", base / "layer.tar", versions)


def _installed(root: Path) -> dict[str, set[str]]:
    """Installed package -> the packages it depends on (every alternative counted)."""
    depends: dict[str, set[str]] = {}
    status = (root / "var/lib/dpkg/status").read_text()
    for stanza in status.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "install ok installed" not in fields.get("Status", ""):
            continue
        wanted = ",".join(fields.get(k, "") for k in ("Pre-Depends", "Depends"))
        names = {
            alt.split()[0].split(":")[0]
            for dep in wanted.split(",")
            for alt in dep.split("|")
            if alt.strip()
        }
        depends[fields["Package"]] = names
    return depends


def _purge_unneeded(root: Path, log: Path) -> list[str]:
    """Purge every package that RUNTIME_PACKAGES do not need (apt, perl, util-linux...)."""
    depends = _installed(root)
    keep: set[str] = set()
    todo = [p for p in RUNTIME_PACKAGES if p in depends]
    while todo:
        name = todo.pop()
        if name in keep or name not in depends:
            continue
        keep.add(name)
        todo.extend(depends[name])
    removed = sorted(set(depends) - keep)
    # maintainer scripts call update-rc.d and debconf, both of which are perl: those go last
    last = [p for p in ("init-system-helpers", "debconf", "perl-base") if p in removed]
    batches = [[p for p in removed if p not in last], *([p] for p in last)]
    with open(log, "a") as out:
        for batch in batches:
            run(
                ["chroot", str(root), "/usr/bin/env", "DEBIAN_FRONTEND=noninteractive",
                 "dpkg", "--purge", "--force-remove-essential", "--force-depends",
                 "--force-remove-protected", *batch],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
    _prune(root)
    return removed


def _prune(root: Path) -> None:
    for rel in PRUNE:
        target = root / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    doc = root / "usr/share/doc"
    for package in doc.iterdir() if doc.is_dir() else []:
        for child in package.iterdir() if package.is_dir() else []:
            if child.name != "copyright":  # the licences stay with the binaries
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    # the host's resolver was copied in for the install; the runtime mounts the node's
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/hostname").write_text("")


def _tar_layer(
    directory: Path, out: Path, members: list[str], exclude_contents: tuple[str, ...] = ()
) -> None:
    """A layer tar: names sorted, owners numeric, the runtime's directories left empty."""
    excludes = [f"--exclude=./{name}/*" for name in exclude_contents]
    run(
        ["tar", "--create", "--file", str(out), "--directory", str(directory), "--sort=name",
         "--numeric-owner", "--format=gnu", *excludes, *members],
    )  # fmt: skip


# --- layer 2: the venv ------------------------------------------------------------------------
def build_wheel(out: Path) -> Path:
    """This checkout's wheel (no dependencies: they come from PyPI in the chroot)."""
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--wheel-dir", str(out), str(ROOT)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (wheel,) = out.glob("kcheckpoint-*.whl")
    return wheel


def download_wheels(wheel: Path, base_versions: dict[str, str], dest: Path) -> None:
    """The dependencies' wheels for the base's Python and glibc, fetched by this machine's pip
    (with its own index and certificate settings), into a cache the chroot installs from."""
    python = ".".join(base_versions["python3"].split(".")[:2])
    glibc_minor = int(base_versions["libc6"].split("-")[0].split(".")[1])
    machine = platform.machine()
    # every manylinux tag this glibc runs (pip does not expand a given one downwards)
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 4, -1)]
    tags += [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")]
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    # pip download reuses a file of the same name in --dest: an older build of our wheel, with
    # the same version but older dependencies, would be resolved instead of this one
    for stale in dest.glob("kcheckpoint-*.whl"):
        stale.unlink()
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--dest", str(dest), "--python-version", python,
         "--implementation", "cp", "--abi", f"cp{python.replace('.', '')}",
         *platforms, str(wheel)],
        capture_output=True,
    )  # fmt: skip


def build_app_layer(base: Base, work: Path, wheel: Path) -> tuple[Path, Path, list[str]]:
    """The venv layer, made in an overlay over the build root. Returns (upper dir, layer,
    freeze). Shared objects are stripped of their symbols: about a third of the venv."""
    upper, ovl, merged, inputs = (work / n for n in ("upper", "ovl-work", "merged", "in"))
    for directory in (upper, ovl, merged, inputs):
        directory.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "healthcheck.py", inputs / "healthcheck.py")
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    shutil.copy(wheel, inputs / wheel.name)
    download_wheels(inputs / wheel.name, base.versions, wheels)
    script = (
        f"set -e; mount -t overlay overlay -o lowerdir={base.build},upperdir={upper},workdir={ovl} "
        f"{merged}; cd {merged}; mount -t proc proc proc; mount --rbind /dev dev; "
        "mount -t tmpfs tmpfs tmp; mkdir tmp/in; "
        f"mount --bind {inputs} tmp/in; mkdir tmp/in/wheels; mount --bind {wheels} tmp/in/wheels; "
        f"chroot . /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin WHEEL={wheel.name} "
        f"PIP_NO_CACHE_DIR=1 HOME=/tmp sh -ec {_quote(APP_SCRIPT)}"
    )
    log = work / "app.log"
    with open(log, "w") as out:
        done = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        sys.stderr.write(log.read_text(errors="replace")[-3000:])
        raise SystemExit("build-image: installing the wheel into the image failed")
    libraries = [str(p) for p in upper.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    if libraries:
        run(["strip", "--strip-unneeded", *libraries])
    whiteouts = [p for p in upper.rglob("*") if p.is_char_device()]
    if whiteouts:  # the recipe only adds files; a deletion would need OCI whiteouts
        raise SystemExit(f"build-image: the app layer deletes base files: {whiteouts[:5]}")
    layer = work / "app-layer.tar"
    _tar_layer(upper, layer, sorted(p.name for p in upper.iterdir()))
    freeze = (inputs / "freeze.txt").read_text().splitlines()
    skip = ("pip==", "setuptools==", "kcheckpoint ")
    return upper, layer, [line for line in freeze if not line.startswith(skip)]


# --- the OCI image layout ---------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}" if name == "blob" else name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _git(*args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return (
            subprocess.run(
                ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
            ).stdout.strip()
            or None
        )
    return None


def source_url() -> str | None:
    """Where the source lives: $KCHECKPOINT_IMAGE_SOURCE, else the checkout's origin remote."""
    return os.environ.get("KCHECKPOINT_IMAGE_SOURCE") or _git("remote", "get-url", "origin")


def labels(version: str) -> dict[str, str]:
    """The OCI labels, as the Containerfile sets them (source: when it is known)."""
    found = {
        "org.opencontainers.image.title": "kcheckpoint",
        "org.opencontainers.image.description": "kcheckpoint capture service: the kubelet's "
        "Checkpoint API over CRI, with download, retention and audit",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": LICENSE,
    }
    source, revision = source_url(), _git("rev-parse", "HEAD")
    if source:
        found["org.opencontainers.image.source"] = source
    if revision:
        found["org.opencontainers.image.revision"] = revision
    return found


def image_config(version: str, diff_ids: list[str]) -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/local/bin/kcheckpoint"],
            "Cmd": ["serve", "--host=0.0.0.0", f"--port={PORT}"],
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
            ],
            "User": "0:0",
            "WorkingDir": "/",
            "ExposedPorts": {f"{PORT}/tcp": {}},
            "Labels": labels(version),
            # Docker's field, kept by podman; Kubernetes uses the DaemonSet's probes instead
            "Healthcheck": {
                "Test": ["CMD", "/usr/local/bin/kcheckpoint-healthcheck"],
                "Interval": 30 * 10**9,
                "Timeout": 5 * 10**9,
                "StartPeriod": 10 * 10**9,
                "Retries": 3,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created_by": f"debootstrap --variant=minbase {SUITE} + {' '.join(BASE_PACKAGES)}"},
            {"created_by": f"pip install kcheckpoint-{version} into {VENV}"},
        ],
    }


def write_layout(out: Path, layers: list[Path], version: str) -> dict[str, Any]:
    """An OCI image-layout tar with these uncompressed layers; returns the manifest."""
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as layout:
        descriptors = []
        for layer in layers:
            digest = _sha256(layer)
            layout.add(str(layer), arcname=f"blobs/sha256/{digest}")
            descriptors.append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{digest}",
                    "size": layer.stat().st_size,
                }
            )
        config = image_config(version, [d["digest"] for d in descriptors])
        config_desc = _add_bytes(layout, "blob", json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": descriptors,
            "annotations": labels(version),
        }
        manifest_desc = _add_bytes(layout, "blob", json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **manifest_desc,
                    "platform": {"architecture": config["architecture"], "os": "linux"},
                    "annotations": {"org.opencontainers.image.ref.name": version},
                }
            ],
        }
        _add_bytes(layout, "index.json", json.dumps(index).encode())
        _add_bytes(layout, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    tmp.rename(out)
    return manifest


# --- main ---------------------------------------------------------------------------------------
def _version() -> str:
    namespace: dict[str, Any] = {}
    exec((ROOT / "src/kcheckpoint/__init__.py").read_text(), namespace)
    return str(namespace["__version__"])


def build(output: Path, *, rebuild_base: bool = False, measure: bool = True,
          runtime_socket: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the image; returns the figures it printed."""
    started = time.monotonic()
    version = _version()
    base = build_base(rebuild=rebuild_base)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kcp-image-", dir=CACHE) as temp:
        work = Path(temp)
        wheel = build_wheel(work / "wheel")
        upper, app_layer, freeze = build_app_layer(base, work / "app", wheel)
        manifest = write_layout(output, [base.layer, app_layer], version)
        built = time.monotonic() - started
        figures: dict[str, Any] = {
            "image": str(output),
            "version": version,
            "build_seconds": round(built, 1),
            "layers": [layer["size"] for layer in manifest["layers"]],
            "size": sum(layer["size"] for layer in manifest["layers"]),
            "packages": freeze,
        }
        if measure:
            socket_path = runtime_socket or harness_socket()
            figures["startup"] = measure_startup(base.runtime, upper, work, socket_path)
    _report(figures)
    return figures


def _report(figures: dict[str, Any]) -> None:
    mib = 1024 * 1024
    base, app = figures["layers"]
    print(f"image {figures['image']} (kcheckpoint {figures['version']}), built in "
          f"{figures['build_seconds']} s")  # fmt: skip
    print(f"size, uncompressed: {figures['size'] / mib:.1f} MiB (target <= 150 MB = "
          f"{150e6 / mib:.1f} MiB): base {base / mib:.1f} MiB, "
          f"venv {app / mib:.1f} MiB")  # fmt: skip
    startup = figures.get("startup")
    if startup:
        what = "healthy /healthz (200)" if startup["healthy"] else (
            "first /healthz answer (503: no CRI runtime given, so not healthy)")  # fmt: skip
        print(f"start-up to {what}: {startup['seconds']:.2f} s median of {startup['runs']} "
              f"(target <= 2 s); python3 -c pass in the same root: "
              f"{startup['python_start_seconds']:.2f} s, ratio "
              f"{startup['seconds'] / startup['python_start_seconds']:.1f}x")  # fmt: skip
    print("python packages: " + " ".join(figures["packages"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "kcheckpoint-oci.tar")
    parser.add_argument("--rebuild-base", action="store_true", help="rebuild the cached base")
    parser.add_argument("--no-measure", action="store_true", help="skip the start-up timing")
    parser.add_argument("--runtime-socket", type=Path, help="a CRI socket for the timing")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (debootstrap, chroot, mounts)")
    build(
        args.output.absolute(),
        rebuild_base=args.rebuild_base,
        measure=not args.no_measure,
        runtime_socket=args.runtime_socket,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
