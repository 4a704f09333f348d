"""`serve --demo` from the package alone: its archive is package data, and Ctrl-C removes what
it made."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kcheckpoint.capture.demo import SAMPLE

from .conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))


def test_the_demo_archive_is_package_data() -> None:
    package = ROOT / "src" / "kcheckpoint"
    assert SAMPLE.is_file() and package in SAMPLE.parents
    assert (ROOT / "samples" / "webapp-t3.tar.zst").resolve() == SAMPLE.resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ctrl_c_removes_the_demo_root(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcheckpoint", "serve", "--demo", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(ENV, TMPDIR=str(tmp_path)),
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        request = urllib.request.Request(base + "/checkpoint/demo/webapp/webapp", method="POST")
        [archive] = json.load(urllib.request.urlopen(request, timeout=60))["items"]
        assert Path(archive).is_file()
        made = [p for p in tmp_path.iterdir() if p.name.startswith("kcheckpoint-demo-")]
        assert made
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err.decode()
    assert b"Traceback" not in err
    assert not Path(archive).exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith("kcheckpoint-demo-")] == []
