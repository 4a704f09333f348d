"""deploy/: the DaemonSet manifest and the systemd unit parse, and every flag they pass exists."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from kcheckpoint.cli.app import app

yaml = pytest.importorskip("yaml", reason="pyyaml (the dev extra) parses the manifest")

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def serve_options() -> set[str]:
    group: Any = typer.main.get_command(app)
    command = group.commands["serve"]
    return {opt for param in command.params for opt in param.opts + param.secondary_opts}


def flags(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def daemonset() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "daemonset.yaml").read_text()) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return ds


def test_daemonset_flags_exist() -> None:
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "serve"
    used = flags(container["args"])
    assert used and set(used) <= serve_options()


def test_daemonset_mounts_socket_and_checkpoints_at_host_paths() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    args = dict(a.split("=", 1) for a in container["args"][1:])
    # the runtime writes on the host at the path the service names: same path on both sides
    checkpoints = volumes["checkpoints"]["hostPath"]["path"]
    assert mounts["checkpoints"]["mountPath"] == checkpoints
    assert checkpoints == args["--root-dir"] + "/checkpoints"
    socket = volumes["cri-socket"]["hostPath"]
    assert socket["type"] == "Socket"
    assert args["--runtime-endpoint"] == "unix://" + mounts["cri-socket"]["mountPath"]
    for name in ("tokens", "tls", "client-ca"):
        assert mounts[name]["readOnly"] is True


def test_daemonset_is_least_privilege() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["privileged"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"] and "add" not in ctx["capabilities"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not spec.get("hostNetwork") and not spec.get("hostPID")


def test_systemd_unit_parses_and_its_flags_exist() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "kcheckpoint.service").read_text().replace("\\\n", " "))
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[0].endswith("/kcheckpoint") and argv[1] == "serve"
    used = flags(argv[2:])
    assert used and set(used) <= serve_options()
    assert parser["Service"]["NoNewPrivileges"] == "yes"
    assert parser["Service"]["CapabilityBoundingSet"] == ""
    root = argv[argv.index("--root-dir") + 1]
    assert parser["Service"]["ReadWritePaths"] == root + "/checkpoints"
