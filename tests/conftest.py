"""Shared test fixtures: the real archives and helpers to run the CLI."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .capture.app_fixtures import Capture

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FIXTURES = ROOT.parent / "shared" / "fixtures"

PODMAN_T1 = FIXTURES / "podman" / "webapp-t1.tar"
PODMAN_T2 = FIXTURES / "podman" / "webapp-t2.tar.gz"
PODMAN_T3 = FIXTURES / "podman" / "webapp-t3.tar.zst"
IDLE = FIXTURES / "podman" / "idle.tar.zst"
CRIO = next(iter(sorted((FIXTURES / "crio").glob("*.tar"))), FIXTURES / "crio" / "missing.tar")
CONTAINERD = next(
    iter(sorted((FIXTURES / "containerd").glob("*.tar"))), FIXTURES / "containerd" / "missing.tar"
)
WEBAPPS = [PODMAN_T1, PODMAN_T2, PODMAN_T3, CRIO, CONTAINERD]
ALL_FIXTURES = [IDLE, *WEBAPPS]


def fixture_id(value: object) -> str | None:
    """Short test ids for fixture paths; other parameters keep pytest's default."""
    if isinstance(value, Path):
        return value.parent.name + "/" + value.name.split("_")[0][:40]
    return None


@pytest.fixture(autouse=True, scope="session")
def _private_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the per-user fingerprint key of `secrets` out of the real home directory."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))


@pytest.fixture(autouse=True, scope="session")
def _fixtures_present() -> None:
    if not PODMAN_T1.exists():
        pytest.exit(f"the shared fixtures are missing: {FIXTURES}", returncode=3)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``kcheckpoint ARGS`` in process; ``stdin`` bytes feed '-'."""
    from kcheckpoint.cli import main

    def run(*args: str, stdin: bytes | None = None) -> CliResult:
        if stdin is not None:
            fake = io.TextIOWrapper(io.BytesIO(stdin))
            monkeypatch.setattr(sys, "stdin", fake)
        capsysbinary.readouterr()
        code = main([str(a) for a in args])
        captured = capsysbinary.readouterr()
        return CliResult(code, captured.out.decode(), captured.err.decode())

    return run


def needs_containerd(missing: str) -> list[pytest.MarkDecorator]:
    """The marks of a module that runs on the harness's containerd 2.x: skipped without one.
    ``missing`` says what for: "no containerd 2.x {missing}"."""
    return [
        pytest.mark.containerd,
        pytest.mark.skipif(
            not os.environ.get("KCHECKPOINT_TEST_CRI"),
            reason=f"KCHECKPOINT_TEST_CRI is not set: no containerd 2.x {missing} "
            "(.ci/run starts one; by hand: python3 scripts/cri_harness.py start DIR)",
        ),
    ]


def container_of(summary: dict[str, Any]) -> tuple[str, str, str, str]:
    """The container of a summary (JSON) as (engine, namespace, pod, name)."""
    container = summary["container"]
    return (container["engine"], container["namespace"], container["pod"], container["name"])


@pytest.fixture
def cap(tmp_path: Path) -> Iterator[Capture]:
    """The capture service's app against the fake runtime, on a fresh root dir."""
    from .capture.app_fixtures import running_capture

    with running_capture(tmp_path) as capture:
        yield capture


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI (KCHECKPOINT_REQUIRE_CRI=1) the real-runtime tests must run, never skip."""
    if os.environ.get("KCHECKPOINT_REQUIRE_CRI") and not os.environ.get("KCHECKPOINT_TEST_CRI"):
        raise pytest.UsageError(
            "KCHECKPOINT_REQUIRE_CRI is set but KCHECKPOINT_TEST_CRI is not: "
            "start the runtime with scripts/cri_harness.py start DIR"
        )
