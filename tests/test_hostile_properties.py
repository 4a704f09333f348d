"""Property tests: random hostile variants of the real idle checkpoint, every command on each.

Whatever the damage, each command ends with an exit code from its documented set, never a
traceback; an error exit says ``error:`` on stderr; text output carries no raw control
character; and when the archive's members really differ from the original (read by the
stdlib alone), ``diff`` and ``verify`` do not say they match. About a minute in all; the longer
campaign is ``scripts/fuzz``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import random
import shutil
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.cli import main

from . import _fuzzcases as F
from .conftest import IDLE

#: Exit codes each command may end with (README, "Exit codes"): 1 only where it means a
#: negative result.
ALLOWED = {
    "summary": {0, 3, 4},
    "list": {0, 3, 4},
    "inspect": {0, 3, 4},
    "memory": {0, 3, 4},
    "search": {0, 1, 3, 4},
    "secrets": {0, 1, 3, 4},
    "diff": {0, 1, 3, 4},
    "manifest": {0, 3, 4},
    "verify": {0, 1, 3, 4},
    "extract": {0, 3, 4},
}
_RAW_CONTROLS = {chr(c) for c in range(0x20) if chr(c) not in "\n\t"} | {"\x7f", "\x9b"}


def command_lines(case: Path, base: Path, manifest: Path, out: Path) -> dict[str, list[str]]:
    """Every command, as the campaign runs them too."""
    c, b = str(case), str(base)
    return {
        "summary": ["summary", c],
        "list": ["list", c, "--format", "text"],
        "inspect": ["inspect", "--all", c],
        "memory": ["memory", c],
        "search": ["search", c, "zq-not-there-7"],
        "secrets": ["secrets", c, "--format", "text"],
        "diff": ["diff", b, c],
        "manifest": ["manifest", c],
        "verify": ["verify", c, str(manifest)],
        "extract": ["extract", c, "-d", str(out)],
    }


def violations(name: str, code: int, stdout: str, stderr: str, changed: bool | None) -> list[str]:
    """What breaks the contract in one run (the same checks as scripts/fuzz)."""
    found = []
    if code == 70 or "Traceback" in stderr:
        found.append(f"{name}: internal error: {stderr.strip()[-300:]}")
    elif code not in ALLOWED[name]:
        found.append(f"{name}: exit {code} is not documented")
    if code not in (0, 1) and not any(line.startswith("error: ") for line in stderr.splitlines()):
        found.append(f"{name}: exit {code} without an error line")
    raw = _RAW_CONTROLS.intersection(stdout) if name != "manifest" else set()
    if raw:
        found.append(f"{name}: raw control characters {sorted(raw)!r} in text output")
    if changed and name in ("diff", "verify") and code == 0:
        found.append(f"{name}: missed a change (exit 0)")
    return found


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@functools.cache
def world() -> tuple[F.Base, Path, Path, dict[str, tuple[str, str]]]:
    """The original archive (plain), its manifest and its contents, made once."""
    root = Path(tempfile.mkdtemp(prefix="kcheckpoint-hostile-"))
    base_path = root / "base.tar"
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(IDLE.read_bytes())
    base_path.write_bytes(raw)
    manifest = root / "base.manifest.json"  # JSON: it lists links and directories too
    code, text, _ = run(["manifest", str(base_path), "--format", "json"])
    assert code == 0
    manifest.write_text(text)
    truth = F.contents(raw)
    assert truth is not None
    return F.Base.of(raw), base_path, manifest, truth


def check_case(family: str, seed: int) -> None:
    base, base_path, manifest, truth = world()
    data = F.MUTATORS[family](base, random.Random(seed))
    work = Path(tempfile.mkdtemp(prefix="case-", dir=base_path.parent))
    try:
        case = work / "case.tar"
        case.write_bytes(data)
        got = F.contents(data)
        changed = None if got is None else got != truth
        problems = []
        for name, argv in command_lines(case, base_path, manifest, work / "out").items():
            code, stdout, stderr = run(argv)
            problems += violations(name, code, stdout, stderr, changed)
        outside = sorted(p.name for p in work.iterdir() if p.name not in ("case.tar", "out"))
        assert not outside, f"written outside the output directory: {outside}"
        assert not problems, f"{family} seed {seed}: " + "; ".join(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(family=st.sampled_from(sorted(F.MUTATORS)), seed=st.integers(0, 2**32 - 1))
def test_every_command_keeps_its_contract(family: str, seed: int) -> None:
    check_case(family, seed)


@pytest.mark.parametrize("family", sorted(F.MUTATORS))
def test_each_family_once(family: str) -> None:
    """Every family runs at least once in CI, whatever hypothesis draws."""
    check_case(family, 12345)
