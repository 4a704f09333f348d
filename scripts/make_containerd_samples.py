#!/usr/bin/env python3
"""Make the real containerd sample archives in samples/ (needs root, like the harness).

    python3 scripts/make_containerd_samples.py [OUTDIR]

Runs a busybox container in the real runtime of scripts/cri_harness.py (or the one named by
KCHECKPOINT_TEST_CRI): it writes two files, deletes /etc/group, listens on TCP 17777 and counts
in a shell variable, with a fixture password in its environment. Then:

- ``containerd-webapp.tar``: CheckpointContainer of that container;
- ``containerd-restored.tar``: the first archive restored into a new pod, then checkpointed
  again (containerd names the container ``containerd`` in such an archive's spec.dump).

The versions of containerd, runc and CRIU are printed, and recorded in samples/README.md by hand.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from capture.real_cri import call, harness_from_env, pods, remove_pod, run_pod  # noqa: E402

from kcheckpoint._proto.cri import api_pb2  # noqa: E402

#: a fixture secret, planted on purpose (samples/README.md lists it)
PASSWORD = "hunter2-sample-pw"
WORKLOAD = (
    "echo state > /tmp/state; mkdir -p /root/x && echo y > /root/x/y; rm -f /etc/group; "
    "nc -l -p 17777 & "
    "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done"
)


def checkpoint(channel: grpc.Channel, container_id: str, location: Path) -> None:
    request = api_pb2.CheckpointContainerRequest(container_id=container_id, location=str(location))
    call(channel, "CheckpointContainer", request, api_pb2.CheckpointContainerResponse)
    os.chmod(location, 0o644)  # samples are public; a real archive is 0600


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "samples"
    with harness_from_env("kcp-samples-") as h:
        work = Path(tempfile.mkdtemp(prefix="samples-", dir=h.share))
        logs = work / "logs"
        spec = h.pod("kcp-sample", "webapp", "app", ["/bin/sh", "-c", WORKLOAD], {
            "DB_PASSWORD": PASSWORD
        })  # fmt: skip
        try:
            with grpc.insecure_channel(h.endpoint) as channel:
                with pods(h.endpoint, logs, spec) as (pod,):
                    time.sleep(2)
                    first = work / "containerd-webapp.tar"
                    checkpoint(channel, pod.container_id, first)
                # the original is gone (its port with it), as on the node it came from
                again = h.pod("kcp-sample", "webapp-restored", "app")
                restored = run_pod(channel, again, logs, str(first))
                try:
                    time.sleep(1)
                    checkpoint(channel, restored.container_id, work / "containerd-restored.tar")
                finally:
                    remove_pod(channel, restored.sandbox_id)
            for name in ("containerd-webapp.tar", "containerd-restored.tar"):
                shutil.copyfile(work / name, out / name)
                print(out / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(", ".join(f"{k} {h.versions[k]}" for k in ("containerd", "runc", "criu")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
