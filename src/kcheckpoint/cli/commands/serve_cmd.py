"""kcheckpoint serve: run the capture service with uvicorn (or against the demo runtime)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import shutil
import signal
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from kcheckpoint.errors import InputError

from ..output import warn

DEFAULT_ROOT = Path("/var/lib/kubelet")


def _size(value: str | None) -> int | None:
    from kcheckpoint.capture.settings import parse_size

    try:
        return None if value is None else parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _duration(value: str | None) -> float | None:
    from kcheckpoint.capture.settings import parse_duration

    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _feature_gates(value: str) -> bool:
    """``ContainerCheckpoint=true|false`` (other gates are refused, not ignored)."""
    enabled = True
    for item in filter(None, (v.strip() for v in value.split(","))):
        key, _, flag = item.partition("=")
        if key != "ContainerCheckpoint" or flag.lower() not in ("true", "false"):
            raise typer.BadParameter(f"unknown feature gate setting {item!r}")
        enabled = flag.lower() == "true"
    return enabled


@dataclass(frozen=True)
class TlsOptions:
    cert: Path | None
    key: Path | None
    client_ca: Path | None

    def uvicorn_kwargs(self) -> dict[str, Any]:
        if self.cert is None and self.key is None:
            if self.client_ca is not None:
                raise typer.BadParameter(
                    "--client-ca needs --tls-cert-file and --tls-private-key-file"
                )
            return {}
        if self.cert is None or self.key is None:
            raise typer.BadParameter("--tls-cert-file and --tls-private-key-file go together")
        kwargs: dict[str, Any] = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.client_ca is not None:
            kwargs["ssl_ca_certs"] = str(self.client_ca)
            kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return kwargs


def _env(name: str) -> str:
    return f"KCHECKPOINT_{name}"


def serve(
    host: Annotated[str, typer.Option(envvar=_env("HOST"), help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar=_env("PORT"), help="Port to listen on.")] = 10270,
    root_dir: Annotated[
        Path | None,
        typer.Option(
            envvar=_env("ROOT_DIR"),
            help="Like the kubelet's --root-dir: archives go to ROOT/checkpoints. "
            "[default: /var/lib/kubelet; with --demo, a new temporary directory]",
            show_default=False,
        ),
    ] = None,
    runtime_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar=[_env("RUNTIME_ENDPOINT"), "CONTAINER_RUNTIME_ENDPOINT"],
            help="CRI socket, as crictl names it (unix:///run/containerd/containerd.sock). "
            "Default: the first of the usual containerd and CRI-O sockets that exists.",
        ),
    ] = None,
    runtime_request_timeout: Annotated[
        str,
        typer.Option(
            envvar=_env("RUNTIME_REQUEST_TIMEOUT"),
            help="Default CRI deadline for a checkpoint (the kubelet's default is 2m); a "
            "?timeout= only ever lengthens it.",
        ),
    ] = "2m",
    feature_gates: Annotated[
        str,
        typer.Option(
            envvar=_env("FEATURE_GATES"),
            help="ContainerCheckpoint=true|false; false answers POST /checkpoint with 404.",
        ),
    ] = "ContainerCheckpoint=true",
    token_auth_file: Annotated[
        Path | None,
        typer.Option(
            envvar=_env("TOKEN_AUTH_FILE"),
            help="CSV lines token,user,uid,namespaces (namespaces: a quoted comma list or *).",
        ),
    ] = None,
    allow_anonymous: Annotated[
        bool,
        typer.Option(
            envvar=_env("ALLOW_ANONYMOUS"),
            help="Let requests without a token act on every namespace (off by default).",
        ),
    ] = False,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(envvar=_env("TLS_CERT_FILE"), help="Serve HTTPS with this certificate."),
    ] = None,
    tls_private_key_file: Annotated[
        Path | None, typer.Option(envvar=_env("TLS_PRIVATE_KEY_FILE"), help="Its private key.")
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            "--client-ca",
            "--client-ca-file",
            envvar=_env("CLIENT_CA"),
            help="Require client certificates signed by this CA bundle (needs TLS).",
        ),
    ] = None,
    max_concurrent: Annotated[
        int,
        typer.Option(
            envvar=_env("MAX_CONCURRENT"),
            min=1,
            help="Checkpoints running or queued at once; more get 429.",
        ),
    ] = 4,
    retry_after: Annotated[
        int, typer.Option(envvar=_env("RETRY_AFTER"), min=0, help="Retry-After seconds of a 429.")
    ] = 5,
    max_per_container: Annotated[
        int | None,
        typer.Option(
            envvar=_env("MAX_PER_CONTAINER"), min=1, help="Retention: archives kept per container."
        ),
    ] = None,
    max_total_size: Annotated[
        str | None,
        typer.Option(
            envvar=_env("MAX_TOTAL_SIZE"), help="Retention: total bytes kept (500M, 10Gi...)."
        ),
    ] = None,
    max_age: Annotated[
        str | None,
        typer.Option(envvar=_env("MAX_AGE"), help="Retention: maximum age (3600, 12h, 7d...)."),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            envvar=_env("AUDIT_LOG"), help="Append JSON-lines audit records here (default: stderr)."
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(envvar=_env("LOG_LEVEL"), help="debug, info, warning or error.")
    ] = "info",
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Run against an in-process DEMO CRI runtime: pod demo/webapp, container webapp, "
            "whose checkpoint is a copy of a bundled sample. Anonymous access unless "
            "--token-auth-file is given.",
        ),
    ] = False,
    demo_archive: Annotated[
        Path | None,
        typer.Option(help="The archive the demo runtime copies (default: the bundled sample)."),
    ] = None,
) -> int:
    """Run the capture service: the kubelet's Checkpoint API over CRI, plus download and retention.

    POST /checkpoint/NAMESPACE/POD/CONTAINER checkpoints a running container; GET /checkpoints
    lists archives, GET/DELETE /checkpoints/NAME downloads or deletes one; /healthz, /metrics,
    and the OpenAPI documentation at /docs.
    """
    import uvicorn

    from kcheckpoint.capture.accesslog import log_config
    from kcheckpoint.capture.app import create_app
    from kcheckpoint.capture.settings import RetentionPolicy, Settings

    tls = TlsOptions(tls_cert_file, tls_private_key_file, client_ca)
    ssl_kwargs = tls.uvicorn_kwargs()
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"unknown log level {log_level!r}")
    if demo and runtime_endpoint:
        raise typer.BadParameter("--demo runs its own runtime; drop --runtime-endpoint")
    if token_auth_file is None and not allow_anonymous and not demo:
        raise typer.BadParameter(
            "give --token-auth-file, or --allow-anonymous to accept requests without a token"
        )
    retention = RetentionPolicy(max_per_container, _size(max_total_size), _duration(max_age))
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # audit records go to stderr when there is no --audit-log, whatever the log level
    logging.getLogger("kcheckpoint.audit").setLevel(logging.INFO)
    with contextlib.ExitStack() as stack:
        if demo:
            runtime_endpoint, default_root = stack.enter_context(_demo_runtime(demo_archive))
            root_dir = root_dir or default_root
            allow_anonymous = allow_anonymous or token_auth_file is None
            _demo_banner(host, port, root_dir, ssl_kwargs, allow_anonymous)
        settings = Settings(
            root_dir=(root_dir or DEFAULT_ROOT).absolute(),
            runtime_endpoint=runtime_endpoint,
            runtime_request_timeout=_duration(runtime_request_timeout) or 120.0,
            checkpoint_enabled=_feature_gates(feature_gates),
            token_auth_file=token_auth_file,
            allow_anonymous=allow_anonymous,
            max_concurrent=max_concurrent,
            retry_after_seconds=retry_after,
            retention=retention,
            audit_log=audit_log,
            demo=demo,
        )
        if allow_anonymous and not _is_loopback(host):
            warn(f"anonymous access is allowed and the service listens on {host}")
        app = create_app(settings)
        # uvicorn shuts down on SIGTERM, then re-raises it; with this handler the re-raised
        # signal unwinds through the ExitStack, so the demo runtime is stopped and cleaned up
        stack.enter_context(_sigterm_exits())
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level.lower(),
            log_config=log_config(log_level),
            **ssl_kwargs,
        )
    return 0


class _Terminated(SystemExit):
    """SIGTERM, turned into a clean exit (status 0) once the server has stopped."""


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    def terminate(signum: int, frame: object) -> None:
        raise _Terminated(0)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@contextlib.contextmanager
def _demo_runtime(archive: Path | None) -> Iterator[tuple[str, Path]]:
    """Start the demo CRI runtime on a private socket; yield (endpoint, default root dir)."""
    from kcheckpoint.capture.demo import (
        SAMPLE,
        FakeRuntimeService,
        demo_pods,
        sample_writer,
        start_runtime_server,
    )

    sample = archive or SAMPLE
    if not sample.is_file():
        raise InputError(
            f"the demo archive {sample} is missing",
            hint="pass --demo-archive PATH (any checkpoint archive, compressed or not)",
        )
    workdir = Path(tempfile.mkdtemp(prefix="kcheckpoint-demo-"))
    socket = workdir / "demo-cri.sock"
    try:
        server = start_runtime_server(
            FakeRuntimeService(demo_pods(), sample_writer(sample)), socket
        )
        try:
            yield f"unix://{socket}", workdir / "root"
        finally:
            server.stop(0)
    finally:
        # everything the demo made, its archives included (--root-dir puts them elsewhere)
        shutil.rmtree(workdir, ignore_errors=True)


def _removed_note(root: Path) -> str:
    if root.name == "root" and root.parent.name.startswith("kcheckpoint-demo-"):
        return " and are removed when the demo stops (--root-dir keeps them)"
    return ""


def _demo_banner(
    host: str, port: int, root: Path, ssl_kwargs: dict[str, Any], anonymous: bool
) -> None:
    scheme = "https" if ssl_kwargs else "http"
    auth = "" if anonymous else ' -H "Authorization: Bearer $TOKEN"'
    warn(
        "DEMO MODE: the CRI runtime is a demo that checkpoints nothing; its pod demo/webapp "
        f"returns a copy of a sample archive. Archives go to {root.absolute()}/checkpoints"
        f"{_removed_note(root)}.",
        f"try: curl{auth} -X POST {scheme}://{host}:{port}/checkpoint/demo/webapp/webapp",
    )
