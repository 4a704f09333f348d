"""What the Debian roots of scripts/cri_harness.py and scripts/build_image.py have in common."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path


def installed_versions(root: Path, packages: Iterable[str]) -> dict[str, str]:
    """The version of each of ``packages`` installed in the Debian root ``root`` ("?": absent)."""
    out = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f=${Package} ${Version}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {name: installed.get(name, "?") for name in packages}
