"""Build a capture app against the fake runtime, with tokens, and open it with TestClient."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from kcheckpoint.capture.app import create_app
from kcheckpoint.capture.settings import Settings

from .fake_cri import FakeCri, running_fake_cri

with warnings.catch_warnings():
    # Starlette 1.x suggests its httpx fork for TestClient; httpx (a dependency) works as is.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

# Fake credentials, but treated as real: the tests check they never reach a log.
ALICE = "alice-token-7f3c9a1d0e5b42c8"
OPS = "ops-token-0b9e8d7c6a5f4e3d"
BOB = "bob-token-11aa22bb33cc44dd"
TOKENS = f"""# token,user,uid,namespaces
{ALICE},alice,1001,"default,team-a"
{OPS},ops,1002,*
{BOB}, bob, 1003, other
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ServiceFiles:
    """What a capture service under test has written, by its ``settings``."""

    settings: Settings

    @property
    def directory(self) -> Path:
        return self.settings.checkpoint_dir

    def files(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir())


@dataclass
class Capture(ServiceFiles):
    """A running app and its fake runtime."""

    client: TestClient
    cri: FakeCri
    settings: Settings

    def archives(self) -> list[str]:
        return [n for n in self.files() if n.startswith("checkpoint-")]

    def post(self, target: str, token: str = OPS, query: str = "") -> object:
        return self.client.post(f"/checkpoint/{target}{query}", headers=bearer(token))


def service_settings(
    root: Path, runtime_endpoint: str, timeout: float, work: Path | None = None, **overrides: object
) -> Settings:
    """The service's settings: archives below ``root``, TOKENS in ``work/tokens.csv`` and the
    audit log in ``work/audit.jsonl`` (``work``: ``root`` itself unless given); ``overrides``
    change any of them."""
    work = work or root
    tokens = work / "tokens.csv"
    tokens.write_text(TOKENS)
    settings = Settings(
        root_dir=root,
        runtime_endpoint=runtime_endpoint,
        runtime_request_timeout=timeout,
        token_auth_file=tokens,
        audit_log=work / "audit.jsonl",
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@contextlib.contextmanager
def running_capture(tmp_path: Path, **overrides: object) -> Iterator[Capture]:
    """The app on a fresh root dir with the fake runtime; ``overrides`` change Settings."""
    with running_fake_cri(tmp_path) as cri:
        settings = service_settings(tmp_path / "root", cri.endpoint, 5.0, tmp_path, **overrides)
        with TestClient(create_app(settings)) as client:
            yield Capture(client, cri, settings)
