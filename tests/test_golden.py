"""The JSON output of every command on every fixture, compared byte for byte with stored goldens.

The goldens under ``tests/golden/`` were written before the package was rearranged, so a move of
code that changes any output shows here. Every run works in a temporary directory where ``fx``
links to the shared fixtures and ``samples`` to the bundled ones, so the command lines in the
provenance headers do not depend on where the repository is. The provenance's ``version`` is the
one field replaced (by ``<version>``): a release does not change what the tool reads.

An output over ``INLINE_LIMIT`` bytes is stored as its SHA-256 and size (``NAME.sha256``).

Regenerate, only when an output is meant to change: ``KCHECKPOINT_UPDATE_GOLDEN=1 pytest
tests/test_golden.py``, and review the diff.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from kcheckpoint import __version__

from .conftest import FIXTURES, SAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden"
INLINE_LIMIT = 256 * 1024
UPDATE = os.environ.get("KCHECKPOINT_UPDATE_GOLDEN") == "1"
KEY = "golden-fingerprint-key"

T1 = "fx/podman/webapp-t1.tar"
T2 = "fx/podman/webapp-t2.tar.gz"
T3 = "fx/podman/webapp-t3.tar.zst"
IDLE = "fx/podman/idle.tar.zst"
CRIO = "fx/crio/checkpoint-webapp-7d9f8c6b5-x2kq4_shop-webapp-2026-11-25T17:46:48Z.tar"
CONTAINERD = "fx/containerd/checkpoint-webapp-7d9f8c6b5-x2kq4_shop-webapp-2026-11-25T17:46:55Z.tar"
ARCHIVES = {
    "t1": T1,
    "t2": T2,
    "t3": T3,
    "idle": IDLE,
    "crio": CRIO,
    "containerd": CONTAINERD,
}
#: The bundled samples are copies of two fixtures: the cheap commands are enough for them.
BUNDLED = {"sample-t3": "samples/webapp-t3.tar.zst", "sample-idle": "samples/idle.tar.zst"}
WEBAPPS = ("t1", "t2", "t3", "crio", "containerd")


def _cases() -> dict[str, list[str]]:
    cases: dict[str, list[str]] = {}
    for name, path in ARCHIVES.items():
        cases[f"summary-{name}"] = ["summary", path]
        cases[f"list-{name}"] = ["list", path]
        cases[f"inspect-{name}"] = ["inspect", path, "--all"]
        cases[f"inspect-secrets-{name}"] = ["inspect", path, "--all", "--show-secrets"]
        cases[f"memory-{name}"] = ["memory", path]
        cases[f"memory-pid1-{name}"] = ["memory", path, "--pid", "1"]
        cases[f"manifest-{name}"] = ["manifest", path]
        cases[f"secrets-{name}"] = ["secrets", path, "--fingerprint-key", KEY]
        cases[f"secrets-memory-{name}"] = [
            "secrets",
            path,
            "--fingerprint-key",
            KEY,
            "--memory-only",
            "--show-secrets",
        ]
        cases[f"search-sk-{name}"] = ["search", path, "sk_live_", "--everywhere", "-C", "16"]
        cases[f"search-regex-{name}"] = [
            "search",
            path,
            "-E",
            r"hunter[0-9]-[a-z]+",
            "-i",
            "--utf16",
        ]
        cases[f"search-none-{name}"] = ["search", path, "no such string anywhere"]
    for name, path in BUNDLED.items():
        cases[f"summary-{name}"] = ["summary", path]
        cases[f"list-{name}"] = ["list", path]
        cases[f"inspect-{name}"] = ["inspect", path, "--all"]
    for name in WEBAPPS:
        path = ARCHIVES[name]
        cases[f"inspect-pid2-{name}"] = ["inspect", path, "--env", "--pid", "2"]
        cases[f"search-pid-{name}"] = ["search", path, "CHECKPOINT-FIXTURE-MARKER", "-p", "1"]
        cases[f"secrets-pid2-{name}"] = [
            "secrets",
            path,
            "--fingerprint-key",
            KEY,
            "--memory-only",
            "-p",
            "2",
        ]
    cases["summary-dirs"] = ["summary", "fx/crio", "fx/containerd", "samples"]
    for name in ("t1", "t3"):
        cases[f"memory-hexdump-{name}"] = [
            "memory",
            ARCHIVES[name],
            "--pid",
            "1",
            "--address",
            "0x10668000",
            "--length",
            "4096",
        ]
    cases["memory-hole-t1"] = ["memory", T1, "--pid", "1", "--address", "0x400000"]
    cases["memory-mapping-idle"] = ["memory", IDLE, "--pid", "1", "--mapping", "0x5ef000"]
    cases["memory-mapping-stack-idle"] = [
        "memory",
        IDLE,
        "--pid",
        "1",
        "--mapping",
        "0x7ffe53d05000",
    ]
    pairs = {
        "t1-t2": (T1, T2),
        "t2-t3": (T2, T3),
        "t3-t1": (T3, T1),
        "t1-t1": (T1, T1),
        "t1-crio": (T1, CRIO),
        "t2-containerd": (T2, CONTAINERD),
        "crio-containerd": (CRIO, CONTAINERD),
        "idle-t1": (IDLE, T1),
    }
    for name, (a, b) in pairs.items():
        cases[f"diff-{name}"] = ["diff", a, b]
    cases["diff-content-t1-t2"] = ["diff", T1, T2, "--content", "--show-secrets"]
    cases["diff-ignore-time-t2-containerd"] = ["diff", T2, CONTAINERD, "--ignore-time"]
    cases["extract-memory-t1"] = ["extract", T1, "--memory", "1", "-d", "out"]
    cases["extract-members-idle"] = ["extract", IDLE, "-d", "out"]
    return {
        name: ["--no-times", *argv[:1], *argv[1:], "--format", "json"]
        for name, argv in cases.items()
    }


CASES = _cases()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("golden")
    (work / "fx").symlink_to(FIXTURES)
    (work / "samples").symlink_to(SAMPLES)
    return work


def _run(argv: list[str], work: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> bytes:
    from kcheckpoint.cli import main

    here = Path.cwd()
    os.chdir(work)
    try:
        capsysbinary.readouterr()
        code = main(argv)
        out = capsysbinary.readouterr().out
    finally:
        os.chdir(here)
        shutil.rmtree(work / "out", ignore_errors=True)  # what extract wrote
    stamp = f'"version": "{__version__}"'.encode()
    return f"exit {code}\n".encode() + out.replace(stamp, b'"version": "<version>"')


def _stored(name: str) -> tuple[Path, bytes] | None:
    for path in (GOLDEN / f"{name}.json", GOLDEN / f"{name}.sha256"):
        if path.exists():
            return path, path.read_bytes()
    return None


def _digest(data: bytes) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {len(data)} bytes\n".encode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_output_is_unchanged(
    name: str,
    workdir: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    got = _run(CASES[name], workdir, capsysbinary)
    if UPDATE:
        for old in GOLDEN.glob(f"{name}.*"):
            old.unlink()
        GOLDEN.mkdir(exist_ok=True)
        if len(got) > INLINE_LIMIT:
            (GOLDEN / f"{name}.sha256").write_bytes(_digest(got))
        else:
            (GOLDEN / f"{name}.json").write_bytes(got)
        return
    stored = _stored(name)
    assert stored is not None, f"no golden for {name}: run with KCHECKPOINT_UPDATE_GOLDEN=1"
    path, want = stored
    if path.suffix == ".sha256":
        assert _digest(got) == want, f"{name}: output differs from {path.name}"
    else:
        assert got == want, f"{name}: output differs from {path.name}"


def test_every_golden_has_a_case() -> None:
    names = {p.name.rsplit(".", 1)[0] for p in GOLDEN.glob("*.*")}
    assert names <= set(CASES), sorted(names - set(CASES))
