"""A fleet sweep with real parts on loopback: two capture services (`kcheckpoint serve --demo`
with token auth), moto's standalone S3 server, a local file, and a real Dask cluster with
process workers. Failures: a node that is down, a wrong token, a digest mismatch, a worker
killed in the middle of the run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._fleet import (
    ROOT,
    Node,
    base_env,
    capture_service,
    free_port,
    kcheckpoint,
    moto_s3,
    rows,
)


def _need(module: str, why: str) -> None:
    """Skip without the fleet extra, except under CI (KCHECKPOINT_REQUIRE_FLEET=1)."""
    if os.environ.get("KCHECKPOINT_REQUIRE_FLEET"):
        __import__(module)
    else:
        pytest.importorskip(module, reason=why)


_need("distributed", "the fleet extra (kcheckpoint[fleet]) runs Dask")
_need("s3fs", "the fleet extra (kcheckpoint[fleet]) reads s3://")
_need("moto.server", "moto[server] (the dev extra) serves S3 on loopback")

TOKEN = "fleet-token-7d1e0c5b9a"
SAMPLE = ROOT / "samples" / "webapp-t3.tar.zst"


class Fleet:
    def __init__(self, a: Node, b: Node, env: dict[str, str], tmp: Path) -> None:
        self.a, self.b, self.env, self.tmp = a, b, env, tmp
        self.token_file = tmp / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.s3_names = [
            "s3://evidence/week48/a-plain.tar",
            "s3://evidence/week48/b-sample.tar.zst",
        ]
        self.local = str(SAMPLE)
        self.aws: dict[str, str] = {}
        self.plain_sha256 = ""

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return kcheckpoint(*args, env={**self.env, **extra})


class SecretsRun:
    """`kcheckpoint secrets @URLS -o jsonl` on a Dask scheduler, watched while it runs. stderr
    drains on a thread; stdout is read through the same buffered reader throughout
    (communicate() after a readline() would read the pipe past that reader's buffer)."""

    def __init__(self, fleet: Fleet, urls: Path, scheduler: str) -> None:
        args = ["secrets", f"@{urls}", "-o", "jsonl", "--scheduler", scheduler]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kcheckpoint", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**fleet.env, "KCHECKPOINT_TOKEN": TOKEN},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._stdout, stderr = self.proc.stdout, self.proc.stderr
        self._errors: list[str] = []
        self._drain = threading.Thread(
            target=lambda: self._errors.append(stderr.read()), daemon=True
        )
        self._drain.start()

    def readline(self) -> str:
        return self._stdout.readline()

    def finish(self, timeout: float) -> tuple[str, str]:
        """The rest of stdout and all of stderr, once the command has exited."""
        rest = self._stdout.read()
        self.proc.wait(timeout=timeout)
        self._drain.join(30)
        return rest, "".join(self._errors)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with (
        capture_service(tmp / "a", TOKEN, archives=2) as a,
        capture_service(tmp / "b", TOKEN, archives=2) as b,
        moto_s3(tmp) as aws,
    ):
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="evidence")
        plain = Path(a.listing()[0]["path"]).read_bytes()
        # one object with a full-object SHA-256 checksum (checked while streaming), one without
        s3.put_object(
            Bucket="evidence", Key="week48/a-plain.tar", Body=plain, ChecksumAlgorithm="SHA256"
        )
        s3.put_object(Bucket="evidence", Key="week48/b-sample.tar.zst", Body=SAMPLE.read_bytes())
        env = base_env(**aws, XDG_CONFIG_HOME=str(tmp / "config"))
        fleet = Fleet(a, b, env, tmp)
        fleet.aws = aws
        fleet.plain_sha256 = hashlib.sha256(plain).hexdigest()
        yield fleet


def mixed_inputs(fleet: Fleet) -> tuple[list[str], list[str]]:
    """Arguments of every kind, and the archives they stand for, in order."""
    urls = fleet.tmp / "urls.txt"
    one_of_b = fleet.b.urls()[0]
    urls.write_text(f"# one archive of node b again\n\n{one_of_b}\n")
    arguments = [
        f"{fleet.a.url}/checkpoints",
        f"{fleet.b.url}/checkpoints/",
        "s3://evidence/week48/",
        fleet.local,
        f"@{urls}",
    ]
    expected = [*fleet.a.urls(), *fleet.b.urls(), *fleet.s3_names, fleet.local, one_of_b]
    return arguments, expected


def test_mixed_sources_in_one_run(fleet: Fleet) -> None:
    arguments, expected = mixed_inputs(fleet)
    done = fleet.run("summary", *arguments, "-o", "jsonl", "--token-file", str(fleet.token_file))
    assert done.returncode == 0, done.stderr
    got = rows(done.stdout)
    assert [r["path"] for r in got] == expected
    assert all(r["error"] is None for r in got)
    digests = {
        f"{node.url}/checkpoints/{i['name']}": i["sha256"]
        for node in (fleet.a, fleet.b)
        for i in node.listing()
    }
    for row in got:
        if row["path"] in digests:
            assert row["summary"]["input"]["sha256"] == digests[row["path"]]
            assert row["summary"]["input"]["read_mode"] == "stream"
    assert got[-3]["summary"]["input"]["compression"] == "zstd"  # the S3 copy of the sample
    sample_sha = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert got[-3]["summary"]["input"]["sha256"] == sample_sha
    assert TOKEN not in done.stdout + done.stderr


def test_mixed_sources_on_dask_process_workers(fleet: Fleet) -> None:
    arguments, expected = mixed_inputs(fleet)
    done = fleet.run(
        "secrets", *arguments, "--workers", "2", "-o", "jsonl", KCHECKPOINT_TOKEN=TOKEN
    )
    assert done.returncode == 1, done.stderr  # secrets found
    got = rows(done.stdout)
    assert [r["path"] for r in got] == expected
    assert all(r["error"] is None and r["secrets"]["findings"] for r in got)
    # the same archive gives the same findings, whichever worker read it, from wherever
    local = fleet.run("secrets", fleet.local, "-o", "json")
    want = sorted((f["rule"], f["fingerprint"]) for f in json.loads(local.stdout)["findings"])
    assert sorted((f["rule"], f["fingerprint"]) for f in got[-2]["secrets"]["findings"]) == want
    assert TOKEN not in done.stdout + done.stderr


def test_a_node_that_is_down_is_an_error_row_and_the_rest_complete(fleet: Fleet) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    arguments = [
        f"{fleet.a.url}/checkpoints",
        f"{down}/checkpoints",
        f"{down}/checkpoints/checkpoint-web_demo-web-2026-11-30T00:00:00Z.tar",
        "s3://evidence/week48/a-plain.tar",
    ]
    done = fleet.run(
        "summary", *arguments, "--workers", "1", "-o", "jsonl", KCHECKPOINT_TOKEN=TOKEN
    )
    assert done.returncode == 3, done.stderr
    got = rows(done.stdout)
    assert [r["path"] for r in got] == [*fleet.a.urls(), *arguments[1:]]
    errors = [r["error"] for r in got]
    assert errors[0] is None and errors[1] is None and errors[-1] is None
    for err in errors[2:4]:
        assert err["type"] == "RemoteInputError" and err["exit_code"] == 3
        assert "cannot connect (connection refused)" in err["message"]
    assert done.stderr.count("error: ") == 2


def test_a_wrong_token_is_an_error_row(fleet: Fleet) -> None:
    urls = fleet.tmp / "with-s3.txt"
    urls.write_text("\n".join([*fleet.a.urls(), "s3://evidence/week48/a-plain.tar"]) + "\n")
    wrong = fleet.tmp / "wrong-token"
    wrong.write_text("not-the-token\n")
    done = fleet.run("secrets", f"@{urls}", "--token-file", str(wrong), "-o", "jsonl")
    assert done.returncode == 3, done.stderr
    got = rows(done.stdout)
    assert len(got) == 3
    for row in got[:2]:
        assert row["secrets"] is None
        assert row["error"]["type"] == "RemoteInputError"
        assert "401" in row["error"]["message"]
    assert got[2]["error"] is None and got[2]["secrets"]["findings"]
    assert "hint: give the service's token with --token-file" in done.stderr
    assert "not-the-token" not in done.stdout + done.stderr


def test_an_s3_objects_checksum_is_what_is_checked(fleet: Fleet) -> None:
    import fsspec

    from kcheckpoint.remote.inputs import _s3_checksum

    fs = fsspec.filesystem(
        "s3",
        endpoint_url=fleet.aws["AWS_ENDPOINT_URL"],
        key=fleet.aws["AWS_ACCESS_KEY_ID"],
        secret=fleet.aws["AWS_SECRET_ACCESS_KEY"],
        skip_instance_cache=True,
    )
    expected = _s3_checksum(fs, "evidence/week48/a-plain.tar")
    assert expected is not None and expected.hexdigest == fleet.plain_sha256
    assert _s3_checksum(fs, "evidence/week48/b-sample.tar.zst") is None  # uploaded without


def test_a_digest_mismatch_is_exit_4(fleet: Fleet) -> None:
    """An archive changed on the node after the service hashed it: the service still
    advertises the old SHA-256, and the bytes that arrive do not match it."""
    fleet.b.capture()
    item = fleet.b.listing()[-1]
    path = Path(item["path"])
    url = f"{fleet.b.url}/checkpoints/{item['name']}"
    st = path.stat()
    try:
        with path.open("r+b") as fh:  # one byte in the middle of the memory pages
            fh.seek(st.st_size // 2)
            byte = fh.read(1)
            fh.seek(st.st_size // 2)
            fh.write(bytes([byte[0] ^ 0xFF]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

        one = fleet.run("summary", url, "--token-file", str(fleet.token_file))
        assert one.returncode == 4
        assert one.stdout.count("error:") == 1
        assert f"does not match the server's X-Checkpoint-Sha256 {item['sha256']}" in one.stderr
        assert "Traceback" not in one.stderr

        many = fleet.run(
            "manifest", url, fleet.local, "-o", "jsonl", "--workers", "1", KCHECKPOINT_TOKEN=TOKEN
        )
        assert many.returncode == 4
        got = rows(many.stdout)
        assert got[0]["error"]["type"] == "DigestMismatch" and got[0]["error"]["exit_code"] == 4
        assert got[1]["error"] is None and got[1]["manifest"]["entries"]
    finally:
        fleet.b.request("DELETE", f"/checkpoints/{item['name']}")


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_complete(fleet: Fleet) -> None:
    from distributed import Client, LocalCluster

    names = (fleet.a.urls() + fleet.b.urls()) * 3
    urls = fleet.tmp / "twelve.txt"
    urls.write_text("\n".join(names) + "\n")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        before = client.run(os.getpid)
        run = SecretsRun(fleet, urls, cluster.scheduler_address)
        first = run.readline()  # one result is back: the run is under way
        victim = next(iter(before.values()))
        os.kill(victim, signal.SIGKILL)
        rest, stderr = run.finish(timeout=240)
        got = rows(first + rest)
        assert run.proc.returncode == 1, stderr
        assert [r["path"] for r in got] == names
        assert all(r["error"] is None and r["secrets"]["findings"] for r in got)
        deadline = time.monotonic() + 30
        while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        after = client.run(os.getpid)
        assert victim not in after.values()  # the nanny started a new worker in its place


def test_a_remote_archive_opens_in_every_reading_command(fleet: Fleet) -> None:
    url = fleet.a.urls()[0]
    done = fleet.run("list", url, "-o", "json", KCHECKPOINT_TOKEN=TOKEN)
    assert done.returncode == 0, done.stderr
    assert '"name": "checkpoint/inventory.img"' in done.stdout or "inventory.img" in done.stdout
    missing = fleet.run("inspect", url + "-gone.tar", KCHECKPOINT_TOKEN=TOKEN)
    assert missing.returncode == 3
    assert missing.stdout == ""
    assert missing.stderr.startswith("error: ")


def test_fleet_usage_errors(fleet: Fleet) -> None:
    both = fleet.run("summary", fleet.local, "--workers", "1", "--scheduler", "tcp://x:1")
    assert both.returncode == 2
    assert "not both" in both.stderr
    stdin = fleet.run("secrets", "-", "--workers", "1")
    assert stdin.returncode == 2
    no_file = fleet.run("summary", "@/nonexistent/urls.txt", "-o", "jsonl")
    assert no_file.returncode == 3
    assert rows(no_file.stdout)[0]["error"]["type"] == "InputError"


def test_without_a_cluster_option_nothing_of_dask_or_fsspec_is_imported(fleet: Fleet) -> None:
    code = (
        "import sys; from kcheckpoint.cli import main;"
        f"rc = main(['summary', {fleet.local!r}, '-o', 'json']);"
        "names = ('dask', 'distributed', 'fsspec', 's3fs', 'aiohttp');"
        "bad = [m for m in names if m in sys.modules];"
        "sys.stderr.write('IMPORTED:' + ','.join(bad) + chr(10)); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=fleet.env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "IMPORTED:\n" in done.stderr


def _tasks_on(dask_scheduler: object) -> int:
    return len(dask_scheduler.tasks)  # type: ignore[attr-defined]


def test_an_interrupt_cancels_what_is_pending_on_the_scheduler(fleet: Fleet) -> None:
    from distributed import Client, LocalCluster

    urls = fleet.tmp / "many.txt"
    urls.write_text("\n".join(fleet.a.urls() * 10) + "\n")
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        run = SecretsRun(fleet, urls, cluster.scheduler_address)
        run.readline()
        assert client.run_on_scheduler(_tasks_on) > 0
        run.proc.send_signal(signal.SIGINT)
        rest, stderr = run.finish(timeout=120)
        assert run.proc.returncode == 130
        assert len(rows(rest)) < 19
        assert "Traceback" not in stderr
        deadline = time.monotonic() + 30
        while client.run_on_scheduler(_tasks_on) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.run_on_scheduler(_tasks_on) == 0  # nothing left queued for that client
