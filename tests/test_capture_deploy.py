"""deploy/: the DaemonSet manifest and the systemd unit parse, and every flag they pass exists."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest

from kcheckpoint.cli.app import load_command

yaml = pytest.importorskip("yaml", reason="pyyaml (the dev extra) parses the manifest")

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def serve_options() -> set[str]:
    command: Any = load_command("serve")
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


def test_manifests_and_a_rendering_validate_against_the_kubernetes_schemas(tmp_path: Path) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (dev extra)")
    from .capture.kubelet import NodeValues, render

    text = (DEPLOY / "daemonset.yaml").read_text()
    values = NodeValues("registry.example/kcheckpoint:1", tmp_path, tmp_path / "s", tmp_path, 1)
    for docs in ([d for d in yaml.safe_load_all(text) if d], render(text, values)):
        for doc in docs:
            validate.validate(doc, validate.latest_version(), strict=True)
    broken = daemonset()
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRoot"] = True
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, validate.latest_version(), strict=True)


def test_render_replaces_every_default_and_refuses_a_manifest_without_one(tmp_path: Path) -> None:
    from .capture.kubelet import DEFAULTS, NodeValues, render

    text = (DEPLOY / "daemonset.yaml").read_text()
    values = NodeValues("registry.example/kcheckpoint:1", tmp_path / "k", tmp_path / "c.sock",
                        tmp_path / "a", 4321)  # fmt: skip
    rendered = yaml.safe_dump_all(render(text, values))
    assert not [d for d in DEFAULTS.values() if d in rendered]
    with pytest.raises(ValueError, match="no longer names"):
        render(text.replace("/var/log/kcheckpoint", "/var/log/elsewhere"), values)


def _containerfile() -> list[tuple[str, str]]:
    text = (DEPLOY.parent / "Containerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0], line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_containerfile_and_the_registry_free_image_agree() -> None:
    """The Containerfile and scripts/build-image describe one image: entrypoint, command, user,
    environment, port and labels."""
    import json
    import sys

    sys.path.insert(0, str(DEPLOY.parent / "scripts"))
    try:
        import build_image  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    from kcheckpoint import __version__

    config = build_image.image_config(__version__, [])["config"]
    final = _containerfile()
    final = final[max(i for i, (op, _) in enumerate(final) if op == "FROM") :]
    by_op: dict[str, list[str]] = {}
    for op, rest in final:
        by_op.setdefault(op, []).append(rest)
    assert json.loads(by_op["ENTRYPOINT"][0]) == config["Entrypoint"]
    assert json.loads(by_op["CMD"][0]) == config["Cmd"]
    assert by_op["USER"] == [config["User"]]
    assert by_op["EXPOSE"] == [next(iter(config["ExposedPorts"])).split("/")[0]]
    env = dict(pair.split("=", 1) for pair in by_op["ENV"][0].split())
    assert {f"{k}={v}" for k, v in env.items()} <= set(config["Env"])
    assert f"VERSION={__version__}" in by_op["ARG"]
    labels = shlex.split(by_op["LABEL"][0])
    keys = {label.split("=", 1)[0] for label in labels}
    assert set(config["Labels"]) <= keys
    assert {"org.opencontainers.image.source", "org.opencontainers.image.version",
            "org.opencontainers.image.licenses"} <= keys  # fmt: skip
    assert "HEALTHCHECK" in by_op and config["Healthcheck"]["Test"][1] in by_op["HEALTHCHECK"][0]
    # the DaemonSet's args start with the image's command
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == config["Cmd"][0] == "serve"
    assert "command" not in container  # the image's entrypoint runs
