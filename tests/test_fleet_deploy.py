"""deploy/fleet-sweep.yaml: the manifests parse, the sweep passes only options that exist,
reads its token from the Secret's file, and its API access is read-only."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from kcheckpoint.cli.app import load_command

yaml = pytest.importorskip("yaml", reason="pyyaml (the dev extra) parses the manifests")

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "fleet-sweep.yaml"


def docs() -> dict[str, dict[str, Any]]:
    found = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in found}


def secrets_options() -> set[str]:
    command: Any = load_command("secrets")
    return {o for p in command.params for o in p.opts + p.secondary_opts}


def sweep_argv() -> list[str]:
    source = docs()["ConfigMap/kcheckpoint-sweep"]["data"]["sweep.py"]
    tree = ast.parse(source)  # it is valid Python
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "argv":
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("no argv in sweep.py")


def test_every_part_is_there() -> None:
    assert set(docs()) >= {
        "Secret/kcheckpoint-sweep-token",
        "Service/kcheckpoint-nodes",
        "ServiceAccount/kcheckpoint-sweep",
        "Role/kcheckpoint-sweep",
        "RoleBinding/kcheckpoint-sweep",
        "Deployment/kcheckpoint-dask-scheduler",
        "Service/kcheckpoint-dask-scheduler",
        "Deployment/kcheckpoint-dask-worker",
        "ConfigMap/kcheckpoint-sweep",
        "CronJob/kcheckpoint-secrets-sweep",
    }


def test_the_sweep_runs_secrets_on_the_scheduler_with_options_that_exist() -> None:
    argv = sweep_argv()
    assert argv[:3] == ["kcheckpoint", "secrets", "@/tmp/nodes.txt"]
    flags = [a for a in argv if a.startswith("--")]
    assert set(flags) <= secrets_options()
    scheduler = argv[argv.index("--scheduler") + 1]
    assert scheduler == "tcp://kcheckpoint-dask-scheduler:8786"
    service = docs()["Service/kcheckpoint-dask-scheduler"]
    assert 8786 in [p["port"] for p in service["spec"]["ports"]]
    worker = docs()["Deployment/kcheckpoint-dask-worker"]["spec"]["template"]["spec"]
    assert scheduler in worker["containers"][0]["command"]


def test_the_token_comes_from_the_secret_as_a_file_never_an_argument() -> None:
    argv = sweep_argv()
    token_file = argv[argv.index("--token-file") + 1]
    job = docs()["CronJob/kcheckpoint-secrets-sweep"]["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["token"]["secret"]
    assert secret["secretName"] == "kcheckpoint-sweep-token"
    (item,) = secret["items"]
    assert token_file == f"{mounts['token']}/{item['path']}"
    assert "token" in docs()["Secret/kcheckpoint-sweep-token"]["stringData"]
    text = " ".join(map(str, container.get("args", []) + container["command"]))
    assert "REPLACE-WITH" not in text


def test_the_sweep_may_only_read_endpoint_slices() -> None:
    (rule,) = docs()["Role/kcheckpoint-sweep"]["rules"]
    assert rule["resources"] == ["endpointslices"]
    assert set(rule["verbs"]) <= {"get", "list", "watch"}
    binding = docs()["RoleBinding/kcheckpoint-sweep"]
    assert binding["subjects"][0]["name"] == "kcheckpoint-sweep"
    job = docs()["CronJob/kcheckpoint-secrets-sweep"]["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["serviceAccountName"] == "kcheckpoint-sweep"


def test_the_headless_service_selects_the_capture_daemonset() -> None:
    nodes = docs()["Service/kcheckpoint-nodes"]["spec"]
    assert nodes["clusterIP"] == "None"
    daemonset = next(
        d
        for d in yaml.safe_load_all((MANIFEST.parent / "daemonset.yaml").read_text())
        if d and d["kind"] == "DaemonSet"
    )
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert nodes["selector"].items() <= labels.items()
    assert "/endpointslices" in docs()["ConfigMap/kcheckpoint-sweep"]["data"]["sweep.py"]


def test_the_manifests_validate_against_the_kubernetes_schemas() -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (dev extra)")
    for doc in docs().values():
        validate.validate(doc, validate.latest_version(), strict=True)
